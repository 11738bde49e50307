"""Importers that turn published proof-search results into our run-directory format."""
