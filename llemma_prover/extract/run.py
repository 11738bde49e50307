"""An ``extract`` run: replay files in parallel, keep per-file results (resume), write steps.jsonl + card.

Output folder (docs/FORMATS.md, "Proof-step data")::

    DIR/files/<key>.jsonl   the steps of one file's complete proofs (written first)
    DIR/files/<key>.json    that file's summary (written last, atomically: a file with a summary is done)
    DIR/steps.jsonl         every file's steps, files in sorted order (rebuilt at the end of each run)
    DIR/card.json           the data card (``card.py``)

A rerun with the same folder skips every file that has a summary, so an interrupted run resumes where
it stopped; ``files/`` is the source of truth and ``steps.jsonl`` is rebuilt from it.

Parallelism: ``workers == 0`` replays in this process; ``workers >= 1`` runs each file as a Ray task
on a loopback-only local cluster (``workers.cluster.ray_init``; or ``--ray-address``), at most
``workers`` at a time. A task whose worker died is retried once by Ray, then recorded as a
``crash`` failure; the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..backends.sandbox import Sandbox
from ..core.errors import UserError
from .coq_replay import FileJob, FileResult, replay_file

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


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class RayStartError(UserError):
    """The local Ray cluster did not come up (one line on the command line, exit 2)."""


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
        _atomic_write(self.steps_path(result.key), text)
        _atomic_write(self.summary_path(result.key), json.dumps(result.summary(), indent=1) + "\n")

    def assemble(self, keys: Iterable[str]) -> tuple[str, int]:
        """Write steps.jsonl from the per-file steps of ``keys`` (sorted); returns (sha256, lines)."""
        h = hashlib.sha256()
        n = 0
        out = self.path / STEPS
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".steps.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                for key in sorted(keys):
                    p = self.steps_path(key)
                    if not p.is_file():
                        continue
                    with p.open("rb") as src:
                        for line in src:
                            fh.write(line)
                            h.update(line)
                            n += 1
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, out)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return h.hexdigest(), n


def _replay_in_worker(job: FileJob, options: ReplayOptions, sandbox: Sandbox | None) -> FileResult:
    return replay_file(job, coqidetop=options.coqidetop, sandbox=sandbox,
                       memory_limit_mb=options.memory_limit_mb, file_timeout=options.file_timeout)


def run_jobs(jobs: Sequence[FileJob], out: ExtractDir, options: ReplayOptions, sandbox: Sandbox | None, *,
             workers: int, ray_address: str | None = None,
             on_result: Callable[[FileResult | dict[str, Any]], None] | None = None) -> None:
    """Replay every job of ``jobs`` that is not done in ``out``; store each result as it arrives."""
    todo = [j for j in jobs if not out.done(j.key)]
    if not todo:
        return

    def handle(res: FileResult) -> None:
        out.store(res)
        if on_result is not None:
            on_result(res)

    if workers == 0:
        for job in todo:
            handle(_replay_in_worker(job, options, sandbox))
        return
    _run_on_ray(todo, options, sandbox, workers, ray_address, handle)


def _run_on_ray(todo: Sequence[FileJob], options: ReplayOptions, sandbox: Sandbox | None, workers: int,
                ray_address: str | None, handle: Callable[[FileResult], None]) -> None:
    from ..workers.cluster import ray_init

    started = ray_init(ray_address, num_cpus=workers)
    import ray

    try:
        task = ray.remote(num_cpus=1, max_retries=1)(_replay_in_worker)
        pending: dict[Any, FileJob] = {}
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < workers:
                job = queue.pop(0)
                pending[task.remote(job, options, sandbox)] = job
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except Exception as exc:  # the worker died twice: a crash of this file, not of the run
                    res = FileResult(key=job.key, library=job.library, file=job.rel, split=job.split,
                                     failure="crash", message=" ".join(str(exc).split())[:500])
                handle(res)
    finally:
        if started and ray.is_initialized():
            ray.shutdown()


def options_dict(options: ReplayOptions) -> dict[str, Any]:
    return asdict(options)
