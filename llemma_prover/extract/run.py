"""An ``extract`` run's output folder: per-file results (resume), steps.jsonl + card.

Output folder (docs/FORMATS.md, "Proof-step data")::

    DIR/files/<key>.jsonl   the steps of one file's complete proofs (written first)
    DIR/files/<key>.json    that file's summary (written last, atomically: a file with a summary is done)
    DIR/steps.jsonl         every file's steps, files in sorted order (rebuilt at the end of each run)
    DIR/card.json           the data card (``card.py``)

A rerun with the same folder skips every file that has a summary, so an interrupted run resumes where
it stopped; ``files/`` is the source of truth and ``steps.jsonl`` is rebuilt from it.

The files are replayed in parallel by ``workers/extract_job.py`` (``run_jobs``) on the generic worker
pool, as for ``prove`` and ``autoformalize``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..results.rundir import atomic_file, atomic_write
from .coq_replay import FileResult

log = logging.getLogger(__name__)

FILES = "files"
STEPS = "steps.jsonl"

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class ReplayOptions:
    """How each file is replayed (recorded in the card)."""

    coqidetop: str = "coqidetop.opt"
    file_timeout: float = 900.0
    memory_limit_mb: int = 4096


def file_stem(key: str) -> str:
    """A file name for a job key (readable, and unique through a short hash)."""
    h = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"{_SAFE.sub('_', key)[-120:]}-{h}"


class ExtractDir:
    """The output folder: which files are done, storing one file's result, assembling steps.jsonl."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.files = self.path / FILES
        self.files.mkdir(parents=True, exist_ok=True)

    def summary_path(self, key: str) -> Path:
        return self.files / f"{file_stem(key)}.json"

    def steps_path(self, key: str) -> Path:
        return self.files / f"{file_stem(key)}.jsonl"

    def done(self, key: str) -> bool:
        return self.summary_path(key).is_file()

    def summary(self, key: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.summary_path(key).read_text(encoding="utf-8"))
        return data

    def store(self, result: FileResult) -> None:
        """Steps first, then the summary (its presence marks the file done)."""
        text = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in result.steps)
        atomic_write(self.steps_path(result.key), text)
        atomic_write(self.summary_path(result.key), json.dumps(result.summary(), indent=1) + "\n")

    def assemble(self, keys: Iterable[str]) -> tuple[str, int]:
        """Write steps.jsonl from the per-file steps of ``keys`` (sorted); returns (sha256, lines)."""
        h = hashlib.sha256()
        n = 0
        out = self.path / STEPS
        with atomic_file(out, "wb") as fh:
            for key in sorted(keys):
                p = self.steps_path(key)
                if not p.is_file():
                    continue
                with p.open("rb") as src:
                    for line in src:
                        fh.write(line)
                        h.update(line)
                        n += 1
        return h.hexdigest(), n


def options_dict(options: ReplayOptions) -> dict[str, Any]:
    return asdict(options)
