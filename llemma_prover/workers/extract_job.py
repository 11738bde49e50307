"""``extract``'s jobs on the generic worker pool (``workers/pool.py``, as for ``prove`` and
``autoformalize``): one job per source file, replayed by ``extract.coq_replay.replay_file`` and stored
in an ``extract.run.ExtractDir`` as it arrives.

``workers == 0`` replays in this process; ``workers >= 1`` runs the files on that many Ray worker
actors on a loopback-only local cluster (``workers.cluster``; or ``--ray-address``). A file whose
worker died is retried once on a fresh worker, then recorded as a ``crash`` failure; the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.sandbox import Sandbox
from ..extract.coq_replay import FileJob, FileResult, replay_file
from ..extract.run import ExtractDir, ReplayOptions
from .pool import open_pool


@dataclass(frozen=True)
class ReplaySpec:
    """Worker recipe for ``extract``: nothing shared between files (each replay starts its own
    coqidetop), so the context is the replay settings themselves."""

    options: ReplayOptions
    sandbox: Sandbox | None

    def setup(self) -> ReplaySpec:
        return self

    def teardown(self, context: object) -> None:
        return None


@dataclass(frozen=True)
class ReplayJob:
    """One file to replay, as a job of the generic worker pool (``workers/pool.py``)."""

    file: FileJob

    @property
    def key(self) -> str:
        return self.file.key

    def run(self, context: ReplaySpec, attempt: int) -> FileResult:
        o = context.options
        return replay_file(self.file, coqidetop=o.coqidetop, sandbox=context.sandbox,
                           memory_limit_mb=o.memory_limit_mb, file_timeout=o.file_timeout)

    def failed(self, attempt: int, error: str) -> FileResult:
        """The worker died on every attempt (or the replay raised): a crash of this file, not of the run."""
        j = self.file
        return FileResult(key=j.key, library=j.library, file=j.rel, split=j.split, failure="crash",
                          message=" ".join(error.split())[:500])


def run_jobs(jobs: Sequence[FileJob], out: ExtractDir, options: ReplayOptions, sandbox: Sandbox | None, *,
             workers: int, ray_address: str | None = None,
             on_result: Callable[[FileResult | dict[str, Any]], None] | None = None) -> None:
    """Replay every job of ``jobs`` that is not done in ``out``; store each result as it arrives.

    On the generic worker pool: in this process for ``workers == 0``, else ``workers`` Ray actors
    (started on loopback or joined at ``ray_address``); a file whose worker died is retried once on a
    fresh worker, then recorded as a ``crash``; what a dead worker left running is killed."""
    todo = [ReplayJob(j) for j in jobs if not out.done(j.key)]
    if not todo:
        return

    def handle(_job: ReplayJob, res: FileResult) -> None:
        out.store(res)
        if on_result is not None:
            on_result(res)

    spec = ReplaySpec(options, sandbox)
    with open_pool(lambda: spec, workers, ray_address, retries=1) as pool:
        pool.run(todo, handle)
