"""Run directories: config.json, results.jsonl, traces, proofs, summary (see docs/FORMATS.md)."""
