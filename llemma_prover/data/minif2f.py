"""Loader for the miniF2F benchmark layout ``<data_dir>/<system>/<split>.jsonl``.

Everything is validated up front: a malformed record raises ``DataError`` naming the file and the
line before any theorem runs, so a bad file can never stop a run half-way.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import DataError
from ..core.types import Theorem

#: environment variable naming the benchmark directory (read by the CLI, never by library code)
DATA_ENV = "LLEMMA_PROVER_DATA"

_REQUIRED = ("name", "header", "statement")
_OPTIONAL = ("informal_statement", "informal_proof", "source")


@dataclass(frozen=True)
class Dataset:
    """The theorems of one split for one formal system, with where they came from."""

    system: str
    split: str
    theorems: tuple[Theorem, ...]
    files: tuple[str, ...]
    #: sha256 of the data file(s) read, in ``files`` order
    sha256: str

    def names(self) -> list[str]:
        return [t.name for t in self.theorems]


def default_data_dir(repo_root: Path | None = None) -> Path | None:
    """``../shared/benchmarks/minif2f`` beside the repository, if it exists."""
    root = repo_root if repo_root is not None else Path(__file__).resolve().parents[2]
    cand = root.parent / "shared" / "benchmarks" / "minif2f"
    return cand if cand.is_dir() else None


def resolve_data_dir(flag: str | None, env: str | None, repo_root: Path | None = None) -> Path:
    """The benchmark directory: ``--data-dir`` beats ``$LLEMMA_PROVER_DATA`` beats the default."""
    for value, origin in ((flag, "--data-dir"), (env, f"${DATA_ENV}")):
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise DataError(f"{origin} {value!r} is not a directory")
            return path
    found = default_data_dir(repo_root)
    if found is None:
        raise DataError(
            "no benchmark data found: pass --data-dir DIR or set "
            f"{DATA_ENV} to the miniF2F folder (the one holding coq/, lean4/, isabelle/)"
        )
    return found


def sha256_files(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _parse_record(line: str, path: Path, lineno: int, split: str, system: str) -> Theorem:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", str(path), lineno) from None
    if not isinstance(obj, dict):
        raise DataError(f"expected a JSON object, got {type(obj).__name__}", str(path), lineno)
    for key in _REQUIRED:
        val = obj.get(key)
        if not isinstance(val, str):
            raise DataError(f"field {key!r} missing or not a string", str(path), lineno)
    if not obj["name"].strip() or not obj["statement"].strip():
        raise DataError("empty 'name' or 'statement'", str(path), lineno)
    for key in _OPTIONAL:
        if key in obj and obj[key] is not None and not isinstance(obj[key], str):
            raise DataError(f"field {key!r} is not a string", str(path), lineno)
    rec_split = obj.get("split", split)
    if rec_split != split:
        raise DataError(f"record says split {rec_split!r} but the file is {split!r}", str(path), lineno)
    return Theorem(
        name=obj["name"],
        split=split,
        system=system,
        header=obj["header"],
        statement=obj["statement"],
        informal_statement=obj.get("informal_statement") or "",
        informal_proof=obj.get("informal_proof") or "",
        source=obj.get("source") or "",
    )


def load_split(data_dir: str | os.PathLike[str], system: str, split: str) -> Dataset:
    """Read and validate ``<data_dir>/<system>/<split>.jsonl``; raise ``DataError`` on any problem."""
    path = Path(data_dir) / system / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"data file not found (expected {system}/{split}.jsonl in {data_dir})", str(path))
    theorems: list[Theorem] = []
    seen: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason})", str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", str(path)) from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        thm = _parse_record(line, path, lineno, split, system)
        if thm.name in seen:
            first = seen[thm.name]
            raise DataError(f"duplicate theorem {thm.name!r} (first on line {first})", str(path), lineno)
        seen[thm.name] = lineno
        theorems.append(thm)
    if not theorems:
        raise DataError("no records", str(path))
    return Dataset(system=system, split=split, theorems=tuple(theorems), files=(str(path),),
                   sha256=sha256_files([path]))


def select(theorems: Sequence[Theorem], names: Sequence[str] = (), limit: int | None = None) -> list[Theorem]:
    """Theorems named in ``names`` (in data order; all if empty), then the first ``limit`` of them.

    An unknown name raises ``DataError`` listing close matches.
    """
    chosen = list(theorems)
    if names:
        known = {t.name for t in theorems}
        unknown = [n for n in names if n not in known]
        if unknown:
            hints = []
            for n in unknown:
                close = difflib.get_close_matches(n, sorted(known), n=3, cutoff=0.6)
                hints.append(f"{n!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
            raise DataError(f"unknown theorem(s): {'; '.join(hints)}")
        wanted = set(names)
        chosen = [t for t in theorems if t.name in wanted]
    if limit is not None:
        chosen = chosen[:limit]
    return chosen
