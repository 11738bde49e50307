"""Reports over run directories: rate tables (markdown/CSV), pass@k, run comparison, plots."""
