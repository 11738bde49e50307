"""The driver side of ``prove --library``: find the lemmas, draw the sample, run the file jobs.

Called by the CLI (which owns the progress display)::

    plan = plan_library(library_config, prover_config, workers=2)   # scans (cached), selects
    ... build the RunConfig with plan.selected ids (config.json records them) ...
    execute_library(run_config, resolved, plan, run_dir, on_result=print)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.config import LibraryConfig, ProverConfig, RunConfig
from ..core.errors import ConfigError, DataError
from ..core.records import TheoremRecord
from ..extract.sources import Source
from ..library.lemmas import FileScan, Lemma, coq_version, scan_cache_dir, scan_files, select
from ..library.plan import (
    automation_for,
    build_root,
    chunks,
    file_jobs,
    hidden_paths,
    installed_automation,
    library_file,
    resolve_source,
)
from ..results.rundir import RunDir
from .library_job import LibraryJob, LibraryJobResult, LibrarySpec
from .pool import open_pool

log = logging.getLogger(__name__)

__all__ = ["LibraryPlan", "check_retrieval_data", "execute_library", "plan_library"]


@dataclass(frozen=True)
class LibraryPlan:
    """The scanned files of a library run and the lemmas it attempts."""

    source: Source
    root: str
    scans: tuple[FileScan, ...]
    selected: tuple[Lemma, ...]
    #: automation modules per file (relative path)
    automation: dict[str, tuple[str, ...]]

    @property
    def files(self) -> list[str]:
        return [s.job.rel for s in self.scans]

    @property
    def data_hash(self) -> str:
        h = hashlib.sha256()
        for s in self.scans:
            h.update(f"{s.job.library}/{s.job.rel}:{s.sha256}\n".encode())
        return h.hexdigest()

    def without_automation(self) -> int:
        """Selected lemmas whose file runs without part of the automation candidates."""
        full = set(installed_automation())
        return sum(1 for lem in self.selected if not full <= set(self.automation.get(lem.rel, ())))


def plan_library(cfg: LibraryConfig, prover: ProverConfig, *, workers: int = 1, theorems: Sequence[str] = (),
                 limit: int | None = None, on_file: Callable[[FileScan], None] | None = None) -> LibraryPlan:
    """Resolve the source, compile it if it is not installed, walk (or read from the cache) each file
    of the split and draw the sample: all before any search runs."""
    from ..backends.coq.ide import ide_executable_for
    from ..backends.sandbox import sandbox_for

    source = resolve_source(cfg)
    root = build_root(source, memory_limit_mb=prover.memory_limit_mb)
    jobs = file_jobs(source, root, cfg)
    scans = scan_files(jobs, workers=max(1, workers), on_file=on_file,
                       coqidetop=ide_executable_for(prover.executable or "coqtop"),
                       sandbox=sandbox_for(prover), memory_limit_mb=prover.memory_limit_mb,
                       timeout=cfg.replay_timeout, version=coq_version(), cache=scan_cache_dir())
    for s in scans:
        if s.failure:
            log.warning("%s: the walk stopped (%s): %s; its %d lemmas before that point are kept",
                        s.job.key, s.failure, s.message[:200], len(s.lemmas))
    selected = select(scans, theorems=theorems, sample=cfg.sample, seed=cfg.seed, limit=limit)
    if not selected:
        raise DataError(f"no lemma of {source.library} ({cfg.split}) matches the selection")
    candidates = cfg.automation if cfg.automation else installed_automation()
    automation = {s.job.rel: automation_for(source, s.job.rel, candidates) for s in scans}
    return LibraryPlan(source, root, tuple(scans), tuple(selected), automation)


def check_retrieval_data(data_dir: str | None, plan: LibraryPlan) -> int:
    """The retrieval data must hold no step of a file the run attempts (the split is by file): raises
    ``DataError`` naming the first such file; returns the number of steps read."""
    if not data_dir:
        return 0
    from ..data.steps import iter_steps

    ours = {(plan.source.library, rel) for rel in plan.files}
    n = 0
    for rec in iter_steps(data_dir, None):
        n += 1
        key = (str(rec.get("library", "")), str(rec.get("file", "")))
        if key in ours and rec.get("split", "train") == "train":
            raise DataError(f"--retrieval-data {data_dir} holds steps of {key[0]}/{key[1]}, a file this run "
                            "attempts: retrieval would answer its lemmas from their own proofs")
    return n


def execute_library(run_config: RunConfig, resolved: Any, plan: LibraryPlan, run_dir: RunDir,
                    on_result: Callable[[TheoremRecord], None] | None = None) -> list[TheoremRecord]:
    """Attempt every selected lemma that has no record in ``run_dir`` yet (one job per file chunk).
    Each record (trace, proof file, then the fsynced record) is written as its job returns."""
    lib = run_config.library
    if lib is None:
        raise ConfigError("execute_library needs a RunConfig with a library section")
    wanted = set(lib.lemmas) if lib.lemmas else {lem.key for lem in plan.selected}
    todo_by_file: dict[str, list[Lemma]] = {}
    for lem in plan.selected:
        if lem.key in wanted and not run_dir.done(lem.key):
            todo_by_file.setdefault(lem.rel, []).append(lem)
    jobs: list[LibraryJob] = []
    for scan in plan.scans:
        todo = todo_by_file.get(scan.job.rel)
        if not todo:
            continue
        file = library_file(plan.source, scan.job, plan.automation.get(scan.job.rel, ()),
                            hidden_paths(plan.source, plan.root, scan.job.rel))
        for chunk in chunks(file, scan.lemmas, todo, lib.lemmas_per_job):
            steps = ({lem.key: scan.steps.get(lem.key, []) for lem in chunk.lemmas}
                     if lib.online_learning else {})
            jobs.append(LibraryJob(chunk, run_config, steps))
    # the biggest jobs first: the last job of a run should be a short one
    jobs.sort(key=lambda j: -j.chunk.lemmas[-1].end)
    new: list[TheoremRecord] = []

    def handle(_job: LibraryJob, res: LibraryJobResult) -> None:
        for one in res.results:
            rec = run_dir.record_result(one.record, one.trace, one.proof_text, one.proof_ext)
            new.append(rec)
            if on_result is not None:
                on_result(rec)

    if not jobs:
        return new

    def spec() -> LibrarySpec:
        given = resolved.servers.generator() if getattr(resolved, "servers", None) is not None else None
        return LibrarySpec(run_config.backend, run_config.prover, run_config.generator, given)

    context = None
    if resolved.local_context is not None:
        from .library_job import LibraryContext

        context = LibraryContext(resolved.local_context.generator)
    with open_pool(spec, run_config.workers, run_config.ray_address, retries=run_config.worker_retries,
                   gpus_per_worker=run_config.gpus_per_worker, context=context) as pool:
        pool.run(jobs, handle)
    return new


def write_lemma_list(run_dir: RunDir, plan: LibraryPlan) -> Path:
    """``lemmas.jsonl`` in the run directory: every selected lemma with its file, line and automation."""
    from ..results.rundir import atomic_write

    path = run_dir.path / "lemmas.jsonl"
    lines = [json.dumps({"id": lem.key, "library": lem.library, "file": lem.rel, "line": lem.line,
                         "name": lem.name, "closed_by": lem.closed_by,
                         "automation": list(plan.automation.get(lem.rel, ()))}) for lem in plan.selected]
    atomic_write(path, "\n".join(lines) + "\n")
    return path
