"""Trace inspection: read run directories and search traces; terminal, path-export and HTML viewers."""
