"""The names inside a run directory (docs/FORMATS.md), defined once for its writer (``rundir.py``) and
its readers (``traces/run.py``, reports, the HTML viewer)."""

from __future__ import annotations

import re

CONFIG = "config.json"
RESULTS = "results.jsonl"
SUMMARY = "summary.md"
RUN_LOG = "run.log"
TRACES = "traces"
PROOFS = "proofs"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.'-]")


def safe_name(theorem: str) -> str:
    """A theorem name usable as a file name (miniF2F names already are; ``'`` is kept)."""
    name = _UNSAFE.sub("_", theorem)
    return name if name not in ("", ".", "..") else "_" + name


def trace_relpath(theorem: str) -> str:
    """``traces/<theorem>.json``, relative to the run directory."""
    return f"{TRACES}/{safe_name(theorem)}.json"


def proof_relpath(theorem: str, ext: str) -> str:
    """``proofs/<theorem>.<ext>``, relative to the run directory."""
    return f"{PROOFS}/{safe_name(theorem)}.{ext.lstrip('.')}"
