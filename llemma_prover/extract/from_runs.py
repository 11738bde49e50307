"""Proof-step data from the proofs a ``prove`` run found (``extract --from-run RUN``): expert iteration.

Each proved theorem whose proof passed the run's independent re-check gives the steps of its proof
path, read from its search trace: the goals Coq printed at each node of the path, the tactic the search
sent (exactly the text the generator proposed, ``timeout`` wrapper included) and the goals after it.
Nothing is re-run and nothing the model wrote is parsed: the goals are the prover's own output, split by
the backend (``DataHooks.goal_parts``), and the proof already counted only after the re-check.

Records have the shape of ``extract``'s (docs/FORMATS.md, "Proof-step data"), ``split`` ``train``:
these proofs are training or retrieval data, held out from nothing. So the rules that keep numbers
honest are enforced here, not left to the user:

* a run on **minif2f-test** is refused: test proofs never become data;
* the card's contamination check still runs (the proof files of the theorems kept, against
  miniF2F) and lists the overlap it finds; the overlap with the run's own problems is *expected*
  (``contamination.expected``, which the trainer and the retrieval generator accept), any other is not;
* evaluating on the same valid problems is then not held out: ``scripts``/``experiments`` use folds
  (``--match``) so that a valid problem is never answered from its own proof.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, RunDirError

__all__ = ["HELD_OUT_SPLITS", "RunSteps", "expected_overlap", "goal_records", "steps_from_run"]

#: benchmark splits whose proofs must never become data
HELD_OUT_SPLITS = frozenset({"minif2f-test", "test"})


@dataclass
class RunSteps:
    """What one run gave: step records, and what the card says about the run."""

    run: str
    split: str
    backend: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    theorems: list[str] = field(default_factory=list)
    #: proved theorems left out, with why (no trace, re-check not passed, not matched, ...)
    skipped: dict[str, str] = field(default_factory=dict)
    #: the checked proof files of ``theorems`` (what the contamination check scans)
    files: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"run": self.run, "split": self.split, "backend": self.backend, "proofs": len(self.theorems),
                "steps": len(self.steps), "skipped": dict(sorted(self.skipped.items()))}


def goal_records(kind: Any, goal_text: str) -> list[dict[str, Any]]:
    """A node's goal text as step-record goals: the first with its hypotheses (the backend splits it),
    the others (shown as conclusions only) with none; the inverse of ``DataHooks.step_goal_text``."""
    text = goal_text.strip()
    if not text:
        return []
    first, *rest = re.split(r"\n\s*\n", text)
    hyps, concl = kind.goal_parts(first)
    return [{"hyps": list(hyps), "concl": concl}] + [{"hyps": [], "concl": " ".join(r.split())} for r in rest]


def steps_from_run(path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None,
                   match: re.Pattern[str] | None = None) -> RunSteps:
    """The proof steps of every re-checked proof of the run at ``path`` (see the module doc).

    ``match``: keep only theorems whose ``library/theorem`` key it matches (``extract --match``).
    Raises ``ConfigError`` for a test-split run or a backend whose goals cannot be split.
    """
    from ..backends.base import data_hooks, proof_dialect
    from ..traces.export import find_theorem
    from ..traces.run import load_run

    run = load_run(path)
    split = run.split
    if split in HELD_OUT_SPLITS:
        raise ConfigError(f"{path}: a run on {split}; proofs found on the test split are the held-out "
                          "measurement and never become training or retrieval data (use a minif2f-valid run)")
    backend = run.backend or "coq"
    kind, dialect = data_hooks(backend), proof_dialect(backend)
    if not kind.splits_goals:
        raise ConfigError(f"{path}: proof-step data needs goals split into hypotheses; backend {backend!r} "
                          "does not split its goal text")
    library = f"run-{Path(path).resolve().name}"
    out = RunSteps(run=str(Path(path).resolve()), split=split, backend=backend)
    for rec in sorted(run.records, key=lambda r: r.theorem):
        if not rec.proved:
            continue
        key = f"{library}/{rec.theorem}"
        if match is not None and not match.search(key):
            out.skipped[rec.theorem] = "not matched"
            continue
        if rec.check is None or not rec.check.ok:
            out.skipped[rec.theorem] = "the proof did not pass the independent re-check"
            continue
        try:
            trace = run.trace(rec)
        except RunDirError as exc:
            out.skipped[rec.theorem] = f"unreadable trace: {exc}"
            continue
        edges = trace.proof_edges() if trace is not None else []
        # the record holds the proof as checked (``artifact_proof``: no wall-clock wrappers), the trace the
        # tactics as the search ran them; the data takes the checked text
        tactics = dialect.artifact_proof([e.tactic for e in edges])
        if trace is None or not edges or tactics != list(rec.proof or ()):
            out.skipped[rec.theorem] = "no trace of the proof path"
            continue
        thm = find_theorem(rec, backend, rec.split or split, data_dir)
        statement = thm.statement if thm is not None else ""
        for i, e in enumerate(edges):
            before = goal_records(kind, trace.nodes[e.source].goals)
            if not before:
                break
            out.steps.append({
                "library": library, "file": f"{rec.theorem}.{dialect.proof_ext}", "theorem": rec.theorem,
                "statement": statement, "step": i, "goals_before": before, "tactic": tactics[i],
                "goals_after": goal_records(kind, trace.nodes[e.target].goals), "split": "train",
                "source_split": rec.split or split,
            })
        out.theorems.append(rec.theorem)
        pf = run.proof_file(rec)
        if pf is not None:
            out.files.append(str(pf))
    return out


def expected_overlap(runs: Iterable[RunSteps]) -> list[str]:
    """The miniF2F problems the data is expected to overlap: those whose proofs it holds."""
    return sorted({t for r in runs for t in r.theorems})
