"""Streaming readers for the corpus side: text files, JSONL (optionally gzipped), saved ``datasets``.

Each reader yields ``Piece(location, text, new_doc, nbytes)`` in bounded pieces (``chunk_bytes``), so the
scanner holds one piece at a time whatever the corpus size. ``new_doc`` marks the first piece of a
document: n-grams never span two documents, but do span the pieces of one document (the scanner
carries the last ``n - 1`` tokens over).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core.errors import DataError

log = logging.getLogger(__name__)

DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")


@dataclass(frozen=True)
class Piece:
    #: "path", "path:line" (first line of the piece) or "path#row"
    source: str
    line: int
    text: str
    new_doc: bool
    #: bytes of input consumed for this piece (for progress / MB/s)
    nbytes: int
    #: True when ``line`` is a line of a text file (a match's line is counted inside the piece);
    #: False for a JSONL record / dataset row (``line`` is the record's line / row index)
    text_lines: bool = True


def is_dataset_dir(p: Path) -> bool:
    return p.is_dir() and any((p / m).exists() for m in DATASET_MARKERS)


def corpus_size(paths: list[Path]) -> int:
    """Bytes on disk of everything the readers will read (for a progress total)."""
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            for root, _dirs, files in os.walk(p):
                for f in files:
                    with contextlib.suppress(OSError):
                        total += (Path(root) / f).stat().st_size
    return total


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _looks_binary(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except OSError:
        return True
    if path.suffix == ".gz":
        return False
    return b"\0" in head


def read_text_file(path: Path, chunk_bytes: int) -> Iterator[Piece]:
    """Blocks of about ``chunk_bytes`` cut after a newline (so no token is split), decoded as UTF-8."""
    opener = gzip.open if path.suffix == ".gz" else open
    first = True
    line = 1
    with opener(path, "rb") as fh:
        while True:
            block = fh.read(chunk_bytes)
            if block and not block.endswith(b"\n"):
                block += fh.readline()
            if not block:
                if first:
                    yield Piece(str(path), 1, "", True, 0)
                return
            yield Piece(str(path), line, block.decode("utf-8", "replace"), first, len(block))
            first = False
            line += block.count(b"\n")


def read_jsonl(path: Path, field: str) -> Iterator[Piece]:
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON ({exc.msg})", str(path), lineno) from None
            text = obj.get(field) if isinstance(obj, dict) else None
            if text is None:
                continue
            if not isinstance(text, str):
                raise DataError(f"field {field!r} is not a string", str(path), lineno)
            yield Piece(str(path), lineno, text, True, len(line), text_lines=False)


def read_dataset_dir(path: Path, field: str, split: str | None) -> Iterator[Piece]:
    try:
        import datasets  # optional: only for saved datasets directories
    except ImportError as exc:
        raise DataError("reading a saved datasets directory needs `pip install datasets`", str(path)) from exc
    ds: Any = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        names = [split] if split else list(ds.keys())
        parts = [(n, ds[n]) for n in names]
    else:
        parts = [(split or "", ds)]
    for name, part in parts:
        if field not in part.column_names:
            raise DataError(f"no column {field!r} (columns: {', '.join(part.column_names)})", str(path))
        col = part.select_columns([field])
        for i, row in enumerate(col.iter(batch_size=256)):
            for j, text in enumerate(row[field]):
                if isinstance(text, str):
                    src = f"{path}[{name}]" if name else str(path)
                    yield Piece(
                        src, i * 256 + j, text, True, len(text.encode("utf-8", "replace")), text_lines=False
                    )


def read_corpus(
    paths: list[Path],
    *,
    text_field: str = "text",
    chunk_bytes: int = 1 << 20,
    dataset_split: str | None = None,
    suffixes: tuple[str, ...] = (),
) -> Iterator[Piece]:
    """Every piece of every corpus path, in a stable order (sorted directory walks)."""
    for p in paths:
        if not p.exists():
            raise DataError("corpus path not found", str(p))
        if is_dataset_dir(p):
            yield from read_dataset_dir(p, text_field, dataset_split)
        elif p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    fp = Path(root) / f
                    yield from _read_file(fp, text_field, chunk_bytes, suffixes, explicit=False)
        else:
            yield from _read_file(p, text_field, chunk_bytes, suffixes, explicit=True)


def _read_file(
    fp: Path, field: str, chunk_bytes: int, suffixes: tuple[str, ...], explicit: bool
) -> Iterator[Piece]:
    name = fp.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        yield from read_jsonl(fp, field)
        return
    if not explicit and suffixes and not name.endswith(suffixes):
        return
    if _looks_binary(fp):
        if explicit:
            raise DataError("not a text file", str(fp))
        log.info("skipping binary file %s", fp)
        return
    yield from read_text_file(fp, chunk_bytes)
