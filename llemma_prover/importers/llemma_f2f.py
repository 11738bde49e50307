"""Import the result files published by the Llemma formal-to-formal evaluation (miniF2F, Lean 4).

Source: github.com/wellecks/llemma_formal2formal ``output/<setting>/results__<model>__<shard>.json``,
each ``{"results": [{"success", "example": {...}, "attempt_results": [...]}], "args": {...}}``.
Their ``proofsearch.py`` defines the fields we map:

* ``elapsed`` = ``start - time.time()`` (negated seconds from the start of the search to the proof);
* ``iteration`` = 0-based index of the expansion during which the proof was found;
* ``score`` = the proof's summed negative mean token log-prob (our priority is its negation);
* ``trace`` = ``[{"tactic", "state_before"}]`` along the proof only (the rest of the tree was not kept);
* ``failure_reason``: ``SearchEnded`` (queue empty *or* 100 expansions used: the files do not say
  which), or the LeanDojo exception that ended it (``DojoHardTimeoutError`` = the 600 s budget,
  ``DojoCrashError``, ``DojoInitError``, ``CalledProcessError``).

Each theorem becomes one ``TheoremRecord`` (the original example and attempts are kept in ``extra``);
a proof's trace becomes a path graph in our trace format. Theorems that are not benchmark problems
are excluded and listed in ``config.json`` under ``excluded``: the shards contain ``sum_pairs``, a
helper lemma that sits in ``MiniF2F/Test.lean`` of the evaluated repository (so its ``split`` says
"test") but is not one of the 244 miniF2F test problems; it is found by comparing the names with the
benchmark's statement list. (The authors' ``compute_metrics.py`` skips it by name.)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import DataError, RunDirError
from ..core.records import TheoremRecord
from ..core.types import Reason, Status, TimeSplit, family_of

FORMAT_VERSION = 1
SOURCE = "llemma-f2f"
#: search settings of the published evaluation (their README and scripts)
PUBLISHED_SEARCH = {
    "candidates": 32,
    "max_expansions": 100,
    "time_budget": 600.0,
    "temperature": 0.0,
    "decoding": "beam",
}

#: LeanDojo exception / search end -> (status, reason)
FAILURE_MAP: dict[str, tuple[Status, Reason]] = {
    "SearchEnded": (Status.FAILED, Reason.SEARCH_EXHAUSTED),
    "DojoHardTimeoutError": (Status.FAILED, Reason.TIME_BUDGET),
    "DojoCrashError": (Status.ERROR, Reason.PROVER_CRASH),
    "DojoInitError": (Status.ERROR, Reason.START_FAILED),
    "CalledProcessError": (Status.ERROR, Reason.START_FAILED),
}

_FILE_RE = re.compile(r"results__(?P<model>.+)__(?P<shard>\d+)\.json$")


@dataclass(frozen=True)
class Excluded:
    theorem: str
    file: str
    reason: str


@dataclass(frozen=True)
class ImportResult:
    out: Path
    records: int
    proved: int
    excluded: tuple[Excluded, ...]
    model: str
    files: tuple[str, ...]
    duplicates: tuple[str, ...] = field(default_factory=tuple)


def model_of(path: str | os.PathLike[str]) -> str:
    m = _FILE_RE.search(Path(path).name)
    return m.group("model") if m else Path(path).stem


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_benchmark_names(path: str | os.PathLike[str], split: str | None = None) -> set[str]:
    """Theorem names of a statement list: our data files (``name``) or the published one (``full_name``
    with ``split``). ``split`` ("test"/"valid") filters records that carry a split."""
    p = Path(path)
    names: set[str] = set()
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", str(p)) from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON ({exc.msg})", str(p), i) from None
        name = obj.get("full_name", obj.get("name")) if isinstance(obj, dict) else None
        if not isinstance(name, str):
            raise DataError("record has no 'name'/'full_name'", str(p), i)
        if split is not None and obj.get("split", split) != split:
            continue
        names.add(name)
    if not names:
        raise DataError(f"no theorem names{' for split ' + split if split else ''}", str(p))
    return names


def _load_shard(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("file not found", str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"not a readable JSON file ({exc})", str(path)) from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise DataError(
            "expected an object with a 'results' list (a llemma_formal2formal result file)", str(path)
        )
    for i, r in enumerate(results):
        ok = (
            isinstance(r, dict)
            and isinstance(r.get("example"), dict)
            and isinstance(r["example"].get("full_name"), str)
            and isinstance(r.get("attempt_results"), list)
        )
        if not ok:
            raise DataError(f"results[{i}] lacks example.full_name or attempt_results", str(path))
    return results


def path_trace(name: str, attempt: dict[str, Any], model: str) -> dict[str, Any]:
    """The proof of a successful attempt as a path graph in node-link form (docs/FORMATS.md)."""
    steps = attempt.get("trace") or []
    proof = list(attempt.get("proof") or [s.get("tactic", "") for s in steps])
    n = len(steps)
    total = -float(attempt["score"]) if attempt.get("score") is not None else None
    nodes = []
    for i, st in enumerate(steps):
        nodes.append(
            {
                "id": i,
                "goals": str(st.get("state_before", "")),
                "status": "proved",
                "depth": i,
                "priority": 0.0 if i == 0 else None,
                "expanded_at": None,
                "terminal": False,
            }
        )
    nodes.append(
        {
            "id": n,
            "goals": "",
            "status": "proved",
            "depth": n,
            "priority": total,
            "expanded_at": None,
            "terminal": True,
        }
    )
    edges = [
        {
            "source": i,
            "target": i + 1,
            "tactic": str(st.get("tactic", "")),
            "score": None,
            "outcome": "proved" if i == n - 1 else "advanced",
            "elapsed": 0.0,
            "order": i,
        }
        for i, st in enumerate(steps)
    ]
    elapsed = -float(attempt.get("elapsed", 0.0) or 0.0)
    return {
        "directed": True,
        "multigraph": False,
        "graph": {
            "theorem": name,
            "backend": "leandojo",
            "generator": model,
            "reason": "proved",
            "proved": True,
            "proof": proof,
            "proof_nodes": list(range(n + 1)),
            "expansions": int(attempt.get("iteration", 0)) + 1,
            "time": {"total": elapsed, "model": None, "prover": None},
            "config": {k: PUBLISHED_SEARCH[k] for k in ("candidates", "max_expansions", "time_budget")},
            "imported": SOURCE,
            "partial": "only the proof path was published; the rest of the tree was not",
        },
        "nodes": nodes,
        "edges": edges,
    }


def convert_result(
    result: dict[str, Any], model: str, source: str
) -> tuple[TheoremRecord, dict[str, Any] | None]:
    """One published result -> (our record, trace or None)."""
    ex = result["example"]
    name = ex["full_name"]
    attempts = result["attempt_results"]
    split = ex.get("split", "test")
    split_name = split if split.startswith("minif2f-") else f"minif2f-{split}"
    winner = next((a for a in attempts if a.get("success")), None)
    extra = {
        "imported": SOURCE,
        "source_file": source,
        "example": ex,
        "attempt_results": attempts,
        "statement": ex.get("statement", ""),
        "rechecked": False,
    }
    base = dict(theorem=name, split=split_name, family=family_of(name), backend="leandojo", generator=model)
    if winner is not None and bool(result.get("success", True)):
        elapsed = -float(winner.get("elapsed", 0.0) or 0.0)
        rec = TheoremRecord(
            **base,
            status=Status.PROVED,
            reason=Reason.PROVED,
            proof=tuple(winner.get("proof") or ()),
            expansions=int(winner.get("iteration", 0)) + 1,
            nodes=len(winner.get("trace") or []) + 1,
            time=TimeSplit(total=elapsed),
            trace=f"traces/{_safe(name)}.json",
            extra=extra,
        )
        return rec, path_trace(name, winner, model)
    reason_s = str(attempts[0].get("failure_reason", "")) if attempts else ""
    status, reason = FAILURE_MAP.get(reason_s, (Status.FAILED, Reason.SEARCH_EXHAUSTED))
    rec = TheoremRecord(
        **base,
        status=status,
        reason=reason,
        proof=None,
        error=reason_s if status is Status.ERROR else "",
        extra=extra,
    )
    return rec, None


def _safe(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.'-]", "_", name)
    return s if s not in ("", ".", "..") else "_" + s


def import_llemma_f2f(
    files: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    benchmark_names: Iterable[str] | None = None,
    label: str | None = None,
    command: Sequence[str] = (),
) -> ImportResult:
    """Convert published shards into a run directory at ``out`` (which must not hold a run yet).

    ``benchmark_names``: the problems of the split; results for other names are excluded (and listed).
    None keeps everything.
    """
    if not files:
        raise DataError("no result files given")
    paths = [Path(f) for f in files]
    shards = [(p, _load_shard(p)) for p in paths]
    models = sorted({model_of(p) for p in paths})
    if len(models) > 1:
        raise DataError(f"files of several models given ({', '.join(models)}); import one model per run")
    model = models[0]
    outp = Path(out)
    if (outp / "results.jsonl").exists() or (outp / "config.json").exists():
        raise RunDirError(f"{outp} already holds a run; choose another --out")
    wanted = {n.lower() for n in benchmark_names} if benchmark_names is not None else None

    records: dict[str, TheoremRecord] = {}
    traces: dict[str, dict[str, Any]] = {}
    excluded: list[Excluded] = []
    duplicates: list[str] = []
    for p, results in shards:
        for r in results:
            name = r["example"]["full_name"]
            if wanted is not None and name.lower() not in wanted:
                excluded.append(
                    Excluded(
                        name,
                        p.name,
                        "not a problem of the benchmark split (helper lemma "
                        f"in {r['example'].get('file_path', '?')})",
                    )
                )
                continue
            rec, tr = convert_result(r, model, p.name)
            if name in records:
                duplicates.append(name)
                if records[name].proved or not rec.proved:
                    continue  # keep a proof if any shard found one
            records[name] = rec
            if tr is not None:
                traces[name] = tr

    outp.mkdir(parents=True, exist_ok=True)
    (outp / "traces").mkdir(exist_ok=True)
    splits = sorted({r.split for r in records.values()})
    config = {
        "format_version": FORMAT_VERSION,
        "imported_from": SOURCE,
        "label": label or model,
        "split": splits[0] if len(splits) == 1 else ",".join(splits),
        "backend": "leandojo",
        "generator": {"name": model, "model": model, "describe": {"source": "published results"}},
        "search": dict(PUBLISHED_SEARCH),
        "files": [{"path": str(p.resolve()), "sha256": _sha256(p)} for p in paths],
        "data_hash": hashlib.sha256("".join(_sha256(p) for p in paths).encode()).hexdigest(),
        "excluded": [e.__dict__ for e in excluded],
        "duplicates": duplicates,
        "command": list(command),
        "notes": "proved = success in the published file (not re-checked here: no Lean on this machine); "
        "SearchEnded maps to search_exhausted although it also covers the 100-expansion limit; "
        "times are seconds from search start to the proof (failed theorems: unknown, 0).",
    }
    (outp / "config.json").write_text(
        json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    for name, tr in traces.items():
        (outp / records[name].trace).write_text(json.dumps(tr, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(outp / "results.jsonl", "w", encoding="utf-8") as fh:
        for rec in sorted(records.values(), key=lambda r: r.theorem):
            fh.write(rec.to_json() + "\n")
    return ImportResult(
        out=outp,
        records=len(records),
        proved=sum(r.proved for r in records.values()),
        excluded=tuple(excluded),
        model=model,
        files=tuple(str(p) for p in paths),
        duplicates=tuple(duplicates),
    )
