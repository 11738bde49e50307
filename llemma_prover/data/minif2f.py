"""Loader for the miniF2F benchmark layout ``<data_dir>/<system>/<split>.jsonl`` (or ``.jsonl.gz``).

The package ships the six miniF2F files (``data/benchmarks/minif2f``, gzip-compressed, with their
licences and ``PROVENANCE.md``); they are the default data folder (``shipped_data_dir``).

Everything is validated up front: a malformed record raises ``DataError`` naming the file and the
line before any theorem runs, so a bad file can never stop a run half-way.
"""

from __future__ import annotations

import difflib
import gzip
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
_OPTIONAL = ("informal_statement", "informal_proof", "source", "footer")

#: the split name of theorems read from a ``--dataset`` file (a record may name its own)
DATASET_SPLIT = "dataset"


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


def shipped_data_dir() -> Path:
    """The miniF2F copy shipped inside the package (built by ``scripts/build_minif2f_data.py``)."""
    return Path(__file__).resolve().parent / "benchmarks" / "minif2f"


def default_data_dir(repo_root: Path | None = None) -> Path | None:
    """The default benchmark folder: the shipped copy (``repo_root`` is accepted for older callers and
    ignored: the data no longer depend on where the checkout lies)."""
    del repo_root
    found = shipped_data_dir()
    return found if (found / "coq").is_dir() else None


def resolve_data_dir(flag: str | None, env: str | None, repo_root: Path | None = None) -> Path:
    """The benchmark directory: ``--data-dir`` beats ``$LLEMMA_PROVER_DATA`` beats the shipped copy."""
    for value, origin in ((flag, "--data-dir"), (env, f"${DATA_ENV}")):
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise DataError(f"{origin} {value!r} is not a directory")
            return path
    found = default_data_dir(repo_root)
    if found is None:
        raise DataError(
            "no benchmark data found (the package's shipped copy is missing): pass --data-dir DIR or set "
            f"{DATA_ENV} to the miniF2F folder (the one holding coq/, lean4/, isabelle/)"
        )
    return found


def data_file(data_dir: str | os.PathLike[str], system: str, split: str) -> Path:
    """``<data_dir>/<system>/<split>.jsonl``, else its ``.jsonl.gz`` (the shipped form), else the plain
    name (which does not exist: the caller reports it)."""
    plain = Path(data_dir) / system / f"{split}.jsonl"
    packed = plain.with_name(plain.name + ".gz")
    return packed if not plain.is_file() and packed.is_file() else plain


def read_data_bytes(path: Path) -> bytes:
    """The bytes of a data file, decompressed when it is ``.gz``."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as fh:
            return fh.read()
    return path.read_bytes()


def sha256_files(paths: Sequence[Path]) -> str:
    """sha256 of the files' contents in order (a ``.gz`` file counts as its decompressed bytes, so the
    shipped copy hashes like the plain folder it was built from)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(read_data_bytes(Path(p)))
    return h.hexdigest()


def _parse_record(line: str, path: Path, lineno: int, split: str | None, system: str) -> Theorem:
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
    if split is None:  # a --dataset file: any split name the record gives
        split = obj.get("split") or DATASET_SPLIT
        if not isinstance(split, str):
            raise DataError("field 'split' is not a string", str(path), lineno)
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
        footer=obj.get("footer") or "",
    )


def load_split(data_dir: str | os.PathLike[str], system: str, split: str) -> Dataset:
    """Read and validate ``<data_dir>/<system>/<split>.jsonl``; raise ``DataError`` on any problem."""
    path = data_file(data_dir, system, split)
    if not path.is_file():
        raise DataError(f"data file not found (expected {system}/{split}.jsonl in {data_dir})", str(path))
    return _read(path, system, split)


def load_dataset_file(path: str | os.PathLike[str], system: str) -> Dataset:
    """Read and validate a ``--dataset`` file (JSON lines, plain or ``.gz``; docs/benchmarks.md): one
    theorem per line with ``name``, ``header``, ``statement`` and optional ``informal_statement``,
    ``informal_proof``, ``source``, ``split``, ``footer``. ``DataError`` (file and line) on any problem."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError("--dataset file not found", str(file))
    return _read(file.resolve(), system, None)


def _read(path: Path, system: str, split: str | None) -> Dataset:
    theorems: list[Theorem] = []
    seen: dict[str, int] = {}
    try:
        raw = read_data_bytes(path)
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason})", str(path)) from None
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", str(path)) from None
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
    return Dataset(system=system, split=split or DATASET_SPLIT, theorems=tuple(theorems), files=(str(path),),
                   sha256=hashlib.sha256(raw).hexdigest())


def load_theorems(dataset: str | None, data_dir: str | None, env: str | None, system: str, split: str,
                  repo_root: Path | None = None) -> tuple[Dataset, str]:
    """The theorems of a run and the data folder to record (``""`` for a ``--dataset`` file): the
    ``--dataset`` file when given, else ``split`` of ``resolve_data_dir(data_dir, env)``."""
    if dataset:
        if data_dir:
            raise DataError("--dataset and --data-dir exclude each other (a dataset file names its theorems)")
        return load_dataset_file(dataset, system), ""
    folder = resolve_data_dir(data_dir, env, repo_root)
    return load_split(folder, system, split), str(folder.resolve())


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
