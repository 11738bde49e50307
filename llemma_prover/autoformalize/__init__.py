"""Draft, Sketch, Prove: informal proof -> formal sketch with holes -> automation fills holes -> check.

Layers: ``sketch`` (formats and parsing of untrusted sketches), ``fill`` (the hole-filling loop; each
backend's ranked hole tactics are its own ``hole_candidates``), ``drafter`` (who writes sketches),
``prompts`` (few-shot files under experiments/prompts/), ``pipeline`` (per theorem and per split,
records, pass@k).
"""
