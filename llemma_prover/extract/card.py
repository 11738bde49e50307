"""The data card of an ``extract`` output folder (``card.json``) and its decontamination check.

The card says what the data is and how far to trust it: the sources, the counts (files, proofs, steps,
per split), every failure with its kind and Coq's message, ``Admitted``/``Abort`` proofs skipped,
time, the sha256 of ``steps.jsonl``, and ``contamination``: the n-gram overlap of the extracted
sources with miniF2F (the project's ``contamination`` library, run before the data is used; the
trainer refuses a card without it). Any miniF2F problem with an overlap is listed by name.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CARD_VERSION = 1
#: n-gram length of the decontamination check (the Llemma paper's 30-gram overlap)
CONTAMINATION_N = 30


def coq_version(coqc: str = "coqc") -> str:
    try:
        out = subprocess.run([coqc, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return " ".join(out.stdout.split())


def build_card(summaries: Sequence[dict[str, Any]], *, sources: Sequence[dict[str, Any]],
               steps_sha256: str, steps_lines: int, options: dict[str, Any], wall_seconds: float,
               workers: int, command: Sequence[str], compile_errors: dict[str, str],
               contamination: dict[str, Any] | None, runs: Sequence[dict[str, Any]] = (),
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card from the per-file summaries (``FileResult.summary()``)."""
    by_split: dict[str, Counter[str]] = {}
    failures = []
    kinds: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for s in summaries:
        c = by_split.setdefault(s["split"], Counter())
        c["files"] += 1
        c["proofs"] += s["proofs"]
        c["steps"] += s["steps"]
        for k in ("sentences", "proofs", "steps", "admitted", "aborted", "interrupted"):
            totals[k] += s[k]
        totals["file_seconds"] += s["elapsed"]
        if s["failure"]:
            kinds[s["failure"]] += 1
            failures.append({"file": f"{s['library']}/{s['file']}", "kind": s["failure"], "line": s["line"],
                             "message": s["message"], "proofs_kept": s["proofs"]})
    files_ok = sum(1 for s in summaries if not s["failure"])
    all_runs = sum(r.get("wall_seconds", 0.0) for r in runs) if runs else wall_seconds
    return {
        "card_version": CARD_VERSION,
        "format": "llemma-prover proof steps (docs/FORMATS.md)",
        "backend": "coq",
        "prover": coq_version(),
        "sources": list(sources),
        "counts": {
            "files": len(summaries),
            "files_replayed_whole": files_ok,
            "files_failed": len(summaries) - files_ok,
            "sentences": totals["sentences"],
            "proofs": totals["proofs"],
            "steps": totals["steps"],
            "admitted_skipped": totals["admitted"],
            "aborted_skipped": totals["aborted"],
            "proofs_interrupted": totals["interrupted"],
            "by_split": {k: dict(v) for k, v in sorted(by_split.items())},
        },
        "failures_by_kind": dict(kinds),
        "failures": sorted(failures, key=lambda f: f["file"]),
        "compile_errors": compile_errors,
        "time": {"wall_seconds": round(wall_seconds, 1), "file_seconds": round(totals["file_seconds"], 1),
                 "workers": workers, "cpus": os.cpu_count(),
                 "wall_seconds_all_runs": round(all_runs, 1),
                 "runs": list(runs),
                 # all proofs over the time of all runs (a resumed run holds the proofs of earlier ones)
                 "proofs_per_minute": round(totals["proofs"] / (all_runs / 60), 1) if all_runs else None},
        "steps_sha256": steps_sha256,
        "steps_lines": steps_lines,
        "split_rule": "by file: sha256('library/path') % 1000 < 50 test, < 100 valid, else train",
        "replay": options,
        "contamination": contamination,
        "command": list(command),
        "host": platform.node(),
        "written_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }


def check_contamination(corpus: Sequence[str | os.PathLike[str]], data_dir: str | os.PathLike[str],
                        n: int = CONTAMINATION_N, expected: Sequence[str] = ()) -> dict[str, Any]:
    """n-gram overlap of ``corpus`` (the extracted source files) with every miniF2F text (test and
    valid: formal statements of every system, informal statements and proofs), whitespace tokens.

    ``expected``: problems the data is meant to hold (``extract --from-run``: the valid problems whose
    proofs it is). ``clean`` is over every hit; ``unexpected`` lists the hits that are not expected, or
    that are on the test split (never expected): what ``data.steps.contamination_problems`` returns to
    a data user."""
    from ..contamination.ngrams import make_tokenizer
    from ..contamination.overlap import NgramIndex, benchmark_items, scan

    tokenizer = make_tokenizer("whitespace")
    items = benchmark_items(data_dir)
    index = NgramIndex(items, tokenizer, n)
    result = scan(index, [Path(p) for p in corpus], suffixes=(".v",))
    hits = result.contaminated()
    want = {e.lower() for e in expected}
    rows = [_hit_row(p) for p in hits]
    unexpected = [r for r in rows if r["problem"].lower() not in want or r["split"] == "test"]
    return {
        "checked": True,
        "clean": not hits,
        "expected": sorted(expected),
        "unexpected": unexpected,
        "n": n,
        "tokenizer": tokenizer.name,
        "benchmark": {"data_dir": str(Path(data_dir).resolve()), "splits": ["test", "valid"],
                      "texts": len(items), "ngrams": index.size},
        "corpus": [str(p) for p in corpus],
        "corpus_bytes": result.corpus_bytes,
        "seconds": round(result.seconds, 2),
        "contaminated": rows,
    }


def _hit_row(p: Any) -> dict[str, Any]:
    return {"problem": p.problem, "split": p.split, "hits": p.hits, "longest": p.longest,
            "where": [w.to_dict() for w in p.where[:3]]}


def build_run_card(runs: Sequence[Any], steps: bytes, *, contamination: dict[str, Any], wall_seconds: float,
                   command: Sequence[str]) -> dict[str, Any]:
    """The card of ``extract --from-run`` data (``from_runs.RunSteps`` per run)."""
    n_steps = sum(len(r.steps) for r in runs)
    proofs = sum(len(r.theorems) for r in runs)
    return {
        "card_version": CARD_VERSION,
        "format": "llemma-prover proof steps (docs/FORMATS.md)",
        "backend": runs[0].backend if runs else "coq",
        "prover": coq_version(),
        "sources": [{"library": f"run-{Path(r.run).name}", "run": r.run, "kind": "prove run"} for r in runs],
        "from_runs": [r.describe() for r in runs],
        "counts": {"files": proofs, "files_replayed_whole": proofs, "files_failed": 0, "proofs": proofs,
                   "steps": n_steps, "admitted_skipped": 0, "by_split": {"train": {"files": proofs,
                                                                                "proofs": proofs,
                                                                                "steps": n_steps}}},
        "failures_by_kind": {},
        "failures": [],
        "time": {"wall_seconds": round(wall_seconds, 1), "cpus": os.cpu_count()},
        "steps_sha256": hashlib.sha256(steps).hexdigest(),
        "steps_lines": n_steps,
        "split_rule": "every step train: proofs found by prove runs (expert iteration), test runs refused",
        "contamination": contamination,
        "command": list(command),
        "host": platform.node(),
        "written_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
