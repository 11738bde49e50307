"""Read-only access to a run directory (docs/FORMATS.md) for the viewers and reports.

Opening a run never writes to it: a run still in progress (or cut short by a crash) may end in a
truncated ``results.jsonl`` line, which is skipped with a warning instead of being repaired.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import RunDirError
from ..core.records import TheoremRecord
from ..results.layout import CONFIG, PROOFS, RESULTS, safe_name
from .model import Trace, load_trace

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class RunView:
    """A loaded run: its config and one record per theorem (a later line wins, as on resume)."""

    path: Path
    config: dict[str, Any]
    records: tuple[TheoremRecord, ...]
    #: lines of results.jsonl that could not be read (a truncated last line)
    skipped: int = 0

    @property
    def name(self) -> str:
        label = self.config.get("label")
        return str(label) if label else self.path.name

    @property
    def split(self) -> str:
        s = self.config.get("split")
        if isinstance(s, str) and s:
            return s
        counts = Counter(r.split for r in self.records)
        return counts.most_common(1)[0][0] if counts else ""

    @property
    def backend(self) -> str:
        b = self.config.get("backend")
        if isinstance(b, str) and b:
            return b
        counts = Counter(r.backend for r in self.records)
        return counts.most_common(1)[0][0] if counts else ""

    def by_name(self) -> dict[str, TheoremRecord]:
        return {r.theorem: r for r in self.records}

    def record(self, theorem: str) -> TheoremRecord:
        recs = self.by_name()
        if theorem in recs:
            return recs[theorem]
        lower = {k.lower(): v for k, v in recs.items()}
        if theorem.lower() in lower:
            return lower[theorem.lower()]
        close = difflib.get_close_matches(theorem, list(recs), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise RunDirError(f"no theorem {theorem!r} in run {self.path}{hint}")

    def trace_path(self, record: TheoremRecord) -> Path | None:
        if not record.trace:
            return None
        p = (self.path / record.trace).resolve()
        if self.path.resolve() not in p.parents:
            raise RunDirError(f"{record.theorem}: trace path {record.trace!r} points outside the run")
        return p

    def trace(self, theorem: str | TheoremRecord) -> Trace | None:
        """The theorem's search trace, or None when the run has none for it."""
        rec = theorem if isinstance(theorem, TheoremRecord) else self.record(theorem)
        p = self.trace_path(rec)
        if p is None or not p.exists():
            return None
        return load_trace(p)

    def trace_json(self, record: TheoremRecord) -> dict[str, Any] | None:
        p = self.trace_path(record)
        if p is None or not p.exists():
            return None
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{p}: unreadable trace ({exc})") from None
        return data if isinstance(data, dict) else None

    def proof_file(self, record: TheoremRecord) -> Path | None:
        """The checked proof file ``proofs/<theorem>.<ext>`` written by ``prove``, if any."""
        d = self.path / PROOFS
        if not d.is_dir():
            return None
        for p in sorted(d.glob(f"{glob_escape(safe_name(record.theorem))}.*")):
            if p.is_file() and not p.name.startswith("."):
                return p
        return None


def glob_escape(s: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in s)


def read_records(path: Path) -> tuple[list[TheoremRecord], int]:
    """Records of ``results.jsonl`` (a later line for the same theorem wins) and lines skipped."""
    if not path.exists():
        raise RunDirError(f"{path} not found (is this a run directory?)")
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    by_name: dict[str, TheoremRecord] = {}
    skipped = 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = TheoremRecord.from_json(line)
        except RunDirError as exc:
            last = not any(x.strip() for x in lines[i + 1 :])
            if not last:
                raise RunDirError(f"{path}:{i + 1}: {exc}") from None
            log.warning(
                "%s:%d: skipping an unreadable last line (a run in progress or cut short)", path, i + 1
            )
            skipped += 1
            continue
        by_name.pop(rec.theorem, None)
        by_name[rec.theorem] = rec
    return list(by_name.values()), skipped


def load_run(path: str | os.PathLike[str]) -> RunView:
    """Open the run directory at ``path`` read-only."""
    p = Path(path)
    if not p.is_dir():
        raise RunDirError(f"{p} is not a directory")
    config: dict[str, Any] = {}
    cfg = p / CONFIG
    if cfg.exists():
        try:
            loaded = json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{cfg}: unreadable ({exc})") from None
        if isinstance(loaded, dict):
            config = loaded
    records, skipped = read_records(p / RESULTS)
    return RunView(path=p, config=config, records=tuple(records), skipped=skipped)


def filter_records(
    records: Iterable[TheoremRecord],
    *,
    status: Sequence[str] = (),
    family: Sequence[str] = (),
    name: str | None = None,
    reason: Sequence[str] = (),
) -> list[TheoremRecord]:
    """Records matching every given filter (status/family/reason: any of; name: a glob)."""
    out = []
    for r in records:
        if status and r.status.value not in status:
            continue
        if family and r.family not in family:
            continue
        if reason and r.reason.value not in reason:
            continue
        if name and not fnmatch.fnmatchcase(r.theorem, name):
            continue
        out.append(r)
    return out


SORT_KEYS = ("theorem", "status", "reason", "time", "expansions", "nodes", "family")


def sort_records(records: Sequence[TheoremRecord], key: str = "theorem") -> list[TheoremRecord]:
    if key not in SORT_KEYS:
        raise RunDirError(f"unknown sort key {key!r}; choose one of {', '.join(SORT_KEYS)}")
    if key == "time":
        return sorted(records, key=lambda r: -r.time.total)
    if key in ("expansions", "nodes"):
        return sorted(records, key=lambda r: -int(getattr(r, key)))
    if key in ("status", "reason"):
        return sorted(records, key=lambda r: (getattr(r, key).value, r.theorem))
    return sorted(records, key=lambda r: (str(getattr(r, key)), r.theorem))
