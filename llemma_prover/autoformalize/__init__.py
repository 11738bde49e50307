"""Draft, Sketch, Prove: informal proof -> formal sketch with holes -> automation fills holes -> check.

Layers: ``sketch`` (formats and parsing of untrusted sketches), ``automation`` (ranked hole tactics per
backend), ``fill`` (the hole-filling loop), ``drafter`` (who writes sketches), ``prompts`` (few-shot
files under experiments/prompts/), ``pipeline`` (per theorem and per split, records, pass@k).
"""
