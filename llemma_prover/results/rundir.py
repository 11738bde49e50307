"""The run directory (docs/FORMATS.md): config.json, results.jsonl, traces/, proofs/, summary.md.

``RunDir.open`` creates a new run or resumes an existing one. Resuming checks the format version and
that the settings which decide *what* a record means (split, backend, generator) are the same; a
truncated last line of ``results.jsonl`` (a crash mid-write) is dropped with a warning and its theorem
runs again. Records are appended, flushed and fsynced one by one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ..core.config import uses_model
from ..core.errors import RunDirError
from ..core.records import TheoremRecord
from .layout import CONFIG, PROOFS, RESULTS, RUN_LOG, SUMMARY, TRACES, proof_relpath, safe_name, trace_relpath
from .summary import summarize, summary_markdown

__all__ = ["CONFIG", "RESULTS", "RunDir", "safe_name"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

#: config keys that must match for records of an existing run to be reused (dotted paths)
COMPAT_KEYS: tuple[str, ...] = ("split", "backend", "generator.name", "generator.replay_file",
                                 "generator.retrieval_data", "data_hash", "library.library",
                                 "library.lemmas", "library.online_learning", "library.automation")

def _get(d: dict[str, Any], dotted: str) -> Any:
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A file that appears at ``path`` complete or not at all: written to a temporary file beside it,
    flushed, fsynced and renamed over ``path`` when the block ends; removed if the block raises."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, text: str) -> None:
    """``text`` written to ``path`` atomically (``atomic_file``)."""
    with atomic_file(path) as fh:
        fh.write(text)


class RunDir:
    """An open run directory. Use ``RunDir.open(path, config)``; then ``append``/``write_*``."""

    def __init__(self, path: Path, config: dict[str, Any], records: dict[str, TheoremRecord],
                 repaired: int, resumed: bool, created: bool = False) -> None:
        self.path = path
        self.config = config
        self.records = records
        #: number of broken lines dropped from results.jsonl on open
        self.repaired = repaired
        self.resumed = resumed
        #: ``open`` created the folder itself (it did not exist before)
        self.created = created

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], config: dict[str, Any]) -> RunDir:
        """Create or resume the run directory at ``path``. ``config`` is the full config.json content
        (``format_version`` is added). Raises ``RunDirError`` (one line) when it cannot be used."""
        p = Path(path)
        config = {"format_version": FORMAT_VERSION, **config}
        created = not p.exists()
        if p.exists() and not p.is_dir():
            raise RunDirError(f"run directory {p} exists and is not a directory; use another --out")
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {p}: {exc.strerror or exc}") from None
        if not os.access(p, os.W_OK | os.X_OK):
            raise RunDirError(f"run directory {p} is not writable")
        cfg_path = p / CONFIG
        resumed = False
        if cfg_path.exists():
            try:
                old = json.loads(cfg_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise RunDirError(f"{cfg_path} is unreadable ({exc}); use another --out") from None
            if not isinstance(old, dict):
                raise RunDirError(f"{cfg_path} is not a JSON object; use another --out")
            check_compatible(old, config, p)
            resumed = True
            # keep the original start information; record each resumption
            config = {**config, "started_at": old.get("started_at", config.get("started_at")),
                      "resumed_at": [*old.get("resumed_at", []), config.get("started_at")]}
        elif (p / RESULTS).exists():
            raise RunDirError(f"{p} has {RESULTS} but no {CONFIG}; use another --out")
        records, repaired = read_results(p / RESULTS, repair=True)
        try:  # only now, so that a refused folder is left as it was
            (p / TRACES).mkdir(exist_ok=True)
            (p / PROOFS).mkdir(exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {p}: {exc.strerror or exc}") from None
        try:
            atomic_write(cfg_path, json.dumps(config, indent=2, sort_keys=False, default=str) + "\n")
        except OSError as exc:
            raise RunDirError(f"cannot write {cfg_path}: {exc.strerror or exc}") from None
        return cls(p, config, records, repaired, resumed, created)

    def discard_unused(self) -> bool:
        """Remove what ``open`` wrote for a *new* run that has no record yet (an error before any theorem
        ran: Ray or a prover could not start), so that no half-written run is left behind. A resumed run
        or one with records is kept. Returns True when it removed something."""
        if self.resumed or self.records or (self.path / RESULTS).exists():
            return False
        for name in (CONFIG, SUMMARY, RUN_LOG):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        for sub in (TRACES, PROOFS, ""):
            if sub == "" and not self.created:
                break
            with contextlib.suppress(OSError):  # only empty folders go
                (self.path / sub).rmdir() if sub else self.path.rmdir()
        return True

    # -- writing ---------------------------------------------------------------------------
    def done(self, theorem: str) -> bool:
        return theorem in self.records

    def trace_relpath(self, theorem: str) -> str:
        return trace_relpath(theorem)

    def write_trace(self, theorem: str, trace: dict[str, Any] | None) -> str:
        """Write ``traces/<theorem>.json``; returns its relative path ("" when there is no trace)."""
        if trace is None:
            return ""
        rel = self.trace_relpath(theorem)
        atomic_write(self.path / rel, json.dumps(trace, ensure_ascii=False, default=str) + "\n")
        return rel

    def write_proof(self, theorem: str, text: str, ext: str) -> str:
        rel = proof_relpath(theorem, ext)
        atomic_write(self.path / rel, text)
        return rel

    def append(self, record: TheoremRecord) -> None:
        """Append one record to results.jsonl, flushed and fsynced before returning."""
        line = record.to_json()
        if "\n" in line:  # json.dumps escapes newlines; this guards the one-line-per-record contract
            raise RunDirError("internal: a record serialised to more than one line")
        with open(self.path / RESULTS, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records[record.theorem] = record

    def record_result(self, record: TheoremRecord, trace: dict[str, Any] | None, proof_text: str | None,
                      proof_ext: str) -> TheoremRecord:
        """A finished theorem: its trace and (when proved) its proof file written first, then the record,
        pointing at the trace, appended last (a crash in between leaves no record: the theorem runs
        again). Returns the record as appended."""
        trace_rel = self.write_trace(record.theorem, trace)
        if proof_text is not None:
            self.write_proof(record.theorem, proof_text, proof_ext)
        record = dataclasses.replace(record, trace=trace_rel)
        self.append(record)
        return record

    def write_summary(self, theorems: Iterable[str] | None = None) -> str:
        """Rewrite summary.md over the records (restricted to ``theorems`` if given); returns it."""
        recs = list(self.records.values())
        if theorems is not None:
            wanted = set(theorems)
            recs = [r for r in recs if r.theorem in wanted]
        text = summary_markdown(summarize(recs), title=f"Run {self.path.name}")
        atomic_write(self.path / SUMMARY, text)
        return text


def check_compatible(old: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    version = old.get("format_version")
    if version != FORMAT_VERSION:
        raise RunDirError(
            f"{path} was written with run-directory format {version!r}, this version writes "
            f"{FORMAT_VERSION}; use another --out"
        )
    diffs = []
    for key in COMPAT_KEYS:
        # as config.json holds them (tuples of a new config are lists there)
        a, b = (json.loads(json.dumps(_get(d, key), default=str)) for d in (old, new))
        if a != b:
            diffs.append(f"{key}: {a!r} there vs {b!r} now")
    old_model, new_model = _get(old, "generator.model"), _get(new, "generator.model")
    if uses_model(str(_get(new, "generator.name"))) and old_model != new_model:  # only then it matters
        diffs.append(f"generator.model: {old_model!r} there vs {new_model!r} now")
    if diffs:
        raise RunDirError(f"{path} holds a run with other settings ({'; '.join(diffs)}); use another --out")


def read_results(path: Path, repair: bool = False) -> tuple[dict[str, TheoremRecord], int]:
    """Read results.jsonl into ``{theorem: record}`` (a later record wins).

    A last line without its newline or that does not parse is a write cut short by a crash: with
    ``repair`` it is dropped (and the file truncated to the last good line) with a warning, so its
    theorem runs again. A broken line that is not the last one is a corrupt file: ``RunDirError``.
    """
    records: dict[str, TheoremRecord] = {}
    if not path.exists():
        return records, 0
    data = path.read_bytes()
    lines = data.split(b"\n")
    # after a final "\n" split yields an empty last element
    good_end = 0
    dropped = 0
    offset = 0
    for idx, raw in enumerate(lines):
        is_last = idx == len(lines) - 1
        end = offset + len(raw) + (0 if is_last else 1)
        if not raw.strip():
            if not is_last:
                good_end = end
            offset = end
            continue
        complete = not is_last  # the final piece had no terminating newline
        try:
            rec = TheoremRecord.from_json(raw.decode("utf-8")) if complete else None
        except (RunDirError, UnicodeDecodeError) as exc:
            later = any(x.strip() for x in lines[idx + 1:])
            if later:
                msg = f"{path}:{idx + 1}: corrupt record ({exc}); fix or remove the line"
                raise RunDirError(msg) from None
            rec = None
        if rec is None:
            if not repair:
                raise RunDirError(f"{path}:{idx + 1}: truncated record")
            dropped += 1
            log.warning("%s:%d: dropping a truncated record (a crash cut its write short); "
                        "that theorem will run again", path, idx + 1)
            break
        records[rec.theorem] = rec
        good_end = end
        offset = end
    if dropped:
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return records, dropped
