"""Benchmark contamination check: n-gram overlap between benchmark text and a (large) corpus."""
