"""The driver side of a ``prove`` run: start what the plan chose, record provenance, run, write results.

Called by the CLI (which owns progress display and has the one, final ``RunConfig`` built by
``plan.plan_run``: the generator, servers, workers, budgets and time policy are decided in it); usable
from Python::

    with start_generator(run_config) as resolved:
        execute(run_config, resolved, theorems, run_dir, on_result=print)

Nothing here changes the run config: the workers and ``config.json`` get the very object the CLI built.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as _dt
import importlib.metadata
import logging
import platform
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import ProverConfig, RunConfig, ServerConfig
from ..core.errors import GeneratorUnavailable
from ..core.records import TheoremRecord
from ..core.types import Theorem
from ..results.rundir import RunDir
from .cluster import ray_shutdown
from .job import JobResult, ProveContext, ProveJob, ProveSpec, start_backend
from .plan import gpu_count
from .pool import open_pool

log = logging.getLogger(__name__)

#: config.json["time_budget_covers"]: the per-theorem budget bounds the search only
TIME_BUDGET_COVERS = (
    "the search of one theorem: starting it on a warm prover, generator calls and tactics (an overrun "
    "is bounded by one tactic or one generator call); not a retried prover start or restart, not the "
    "final re-check (prover.check_timeout), not a retry of the theorem on a fresh worker"
)

#: distributions whose versions go into config.json
PACKAGES: tuple[str, ...] = (
    "llemma-prover", "torch", "transformers", "ray", "networkx", "pexpect", "rich", "lean-dojo", "pyyaml",
)


@dataclass
class ResolvedGenerator:
    """The started generator of a run (``start_generator``): model servers, or for ``workers=0`` the
    built backend and generator, and what they say about themselves. It only reads the run config."""

    name: str
    note: str
    describe: dict[str, Any] = field(default_factory=dict)
    #: for ``workers=0``: the already-built backend + generator, reused for the run
    local_context: ProveContext | None = None
    #: the running model servers (``ModelServerPool``) when the workers use them, else None
    servers: Any = None
    #: whether ``start_generator`` started (or joined) Ray for the servers: ``close()`` then shuts it down
    started_ray: bool = False

    @property
    def model_server(self) -> dict[str, Any] | None:
        """``ModelServerPool.describe()`` while servers run, else None (recorded in config.json)."""
        return self.servers.describe() if self.servers is not None else None

    def spec(self, run_config: RunConfig) -> ProveSpec:
        """A worker's recipe: with model servers, each call hands out a new server-backed generator for
        the model part of the run's generator."""
        given = self.servers.generator() if self.servers is not None else None
        return ProveSpec(run_config.backend, run_config.prover, run_config.generator, given)

    def close(self) -> None:
        context, self.local_context = self.local_context, None
        servers, self.servers = self.servers, None
        try:
            if context is not None:
                context.close()
            if servers is not None:
                servers.close()
        finally:
            started, self.started_ray = self.started_ray, False
            ray_shutdown(started)

    def __enter__(self) -> ResolvedGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def preflight(run_config: RunConfig) -> None:
    """Cheap checks that the prover can be found, before any worker, model or Ray starts (raises
    ``ProverUnavailable`` saying how to install it): the backend's own ``preflight``."""
    from ..backends.base import prover_setup

    prover_setup(run_config.backend).preflight(run_config.prover)


def start_generator(run_config: RunConfig) -> ResolvedGenerator:
    """Start what ``run_config`` planned: the model servers (``run_config.serving``; Ray is started
    for them), else the generator built here once to learn what runs (kept, with a started backend,
    for ``workers=0``). Raises ``GeneratorError`` when the generator cannot load or the servers cannot
    start (the CLI then plans bank instead under ``--generator auto``)."""
    if run_config.serving is not None:
        return _start_servers(run_config, run_config.serving)
    return _start_local(run_config)


def _start_servers(run_config: RunConfig, server: ServerConfig) -> ResolvedGenerator:
    import math

    from ..generators.registry import check_model_reachable
    from ..serving.server import start_model_servers
    from .cluster import ray_init

    gen_cfg = run_config.generator
    check_model_reachable(gen_cfg)  # before Ray starts
    count = server.num_servers or max(1, gpu_count(gen_cfg.device))
    started = ray_init(run_config.ray_address,
                       num_cpus=max(1, run_config.workers) + math.ceil(count * server.num_cpus))
    try:
        pool = start_model_servers(gen_cfg, run_config.backend, server)
    except GeneratorUnavailable as exc:
        ray_shutdown(started)
        # raised in the server actor, it arrives as Ray's RayTaskError(GeneratorUnavailable), whose text
        # is the remote traceback: keep the original one-line error
        cause = getattr(exc, "cause", None)
        exc = cause if isinstance(cause, GeneratorUnavailable) else exc
        raise exc from None
    except BaseException:
        ray_shutdown(started)
        raise
    desc = pool.describe()
    engine = desc.get("engine", server.engine)
    note = f"{gen_cfg.name} ({gen_cfg.model} on {len(pool.handles)} model server(s), engine {engine})"
    return ResolvedGenerator(gen_cfg.name, note, desc, None, servers=pool, started_ray=started)


def _start_local(run_config: RunConfig) -> ResolvedGenerator:
    from ..generators.registry import make_generator

    generator, note = make_generator(run_config.generator, run_config.backend)
    describe = dict(generator.describe())
    if run_config.workers == 0:
        try:
            backend = start_backend(run_config.backend, run_config.prover)
        except BaseException:
            generator.close()
            raise
        return ResolvedGenerator(generator.name, note, describe, ProveContext(backend, generator))
    generator.close()
    return ResolvedGenerator(generator.name, note, describe)


def package_versions() -> dict[str, str]:
    out = {}
    for dist in PACKAGES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    out["python"] = platform.python_version()
    return out


def git_commit(repo: Path | None = None) -> str:
    """HEAD of the checkout this package runs from (+ "-dirty"), or "unknown"."""
    root = repo or Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def provenance(backend: str, prover: ProverConfig, data_files: Sequence[str], data_hash: str,
               argv: Sequence[str]) -> dict[str, Any]:
    """The part of config.json that every run command shares (``prove``, ``autoformalize``): the data,
    the code, the prover's protection and process policy, the command, when and where."""
    from ..backends.base import prover_setup

    return {
        "data_hash": data_hash,
        "data_files": list(data_files),
        "packages": package_versions(),
        "git_commit": git_commit(),
        # which protection the prover processes run under (rlimits, scrubbed env, network isolation)
        "sandbox": prover_setup(backend).sandbox_description(prover),
        # the process policy the backend runs with (derived from "prover", value for value)
        "prover_settings": prover_setup(backend).effective_settings(prover),
        "command": list(argv),
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
    }


def run_metadata(run_config: RunConfig, resolved: ResolvedGenerator, data_files: Sequence[str],
                 data_hash: str, argv: Sequence[str], note: str | None = None) -> dict[str, Any]:
    """The content of config.json (docs/FORMATS.md): ``run_config.to_dict()`` as it is, plus provenance
    (``note``: why this generator runs; default ``resolved.note``)."""
    return {
        **run_config.to_dict(),
        # what actually ran: the GeneratorConfig (auto resolved) + describe() + why
        "generator": {**dataclasses.asdict(run_config.generator), "describe": resolved.describe,
                      "note": resolved.note if note is None else note, "model_server": resolved.model_server},
        # which automation libraries/solvers the generator found installed (bank on Coq), else None
        "automation": resolved.describe.get("automation"),
        # what search.time_budget (per theorem) covers, and what each record's time.total leaves out
        "time_budget_covers": TIME_BUDGET_COVERS,
        **provenance(run_config.backend, run_config.prover, data_files, data_hash, argv),
    }


def search_order(theorems: Sequence[Theorem]) -> list[Theorem]:
    """The order the workers take theorems in. Theorems with the same header run back to back, so that
    a prover loads each header about once per worker (miniF2F-valid on Coq: 102 distinct headers, 191
    header changes in file order) and the checker's per-header batches fill. Longest statement first,
    among the groups (by their longest) and within each (file order among equals): the statement's
    length is the one thing known before the search that goes with its time (miniF2F-valid, bank, 1
    worker: correlation 0.57), and a run whose last theorems are short ends with its workers busy
    together instead of one of them finishing a long search alone (longest-processing-time first)."""
    groups: dict[str, list[Theorem]] = {}
    for t in theorems:
        groups.setdefault(t.header, []).append(t)
    ordered = [sorted(g, key=lambda t: -len(t.statement)) for g in groups.values()]
    ordered.sort(key=lambda g: -len(g[0].statement))
    return [t for g in ordered for t in g]


def execute(run_config: RunConfig, resolved: ResolvedGenerator, theorems: Sequence[Theorem], run_dir: RunDir,
            on_result: Callable[[TheoremRecord], None] | None = None) -> list[TheoremRecord]:
    """Prove every theorem of ``theorems`` that has no record in ``run_dir`` yet.

    Each result is written (trace, proof file, then the fsynced record) as soon as it is final;
    ``on_result`` is called after that. Returns the new records. On a backend whose ``check_many`` is
    cheaper than one check per proof (``batched_check``), found proofs are checked here, in batches per
    header, by a ``BatchChecker`` while the workers search on (``workers/checker.py``); a record is
    final (and written) only once its proof's check has returned.
    """
    from ..backends.base import backend_class, make_backend
    from .checker import BatchChecker, Pending
    from .job import complete_check

    todo = search_order([t for t in theorems if not run_dir.done(t.name)])
    new: list[TheoremRecord] = []
    theorem_by_name = {t.name: t for t in todo}
    if not todo:
        return new
    backend_cls = backend_class(run_config.backend)
    deferred = backend_cls.batched_check
    #: searches not yet finished per header (a header's batch is checked once its count reaches 0)
    searching = collections.Counter(t.header for t in todo)
    lock = threading.Lock()  # the run dir, ``new`` and ``on_result`` are shared with the checker thread

    def write(res: JobResult) -> None:
        with lock:
            rec = run_dir.record_result(res.record, res.trace, res.proof_text, res.proof_ext)
            new.append(rec)
            if rec.theorem not in theorem_by_name:
                log.warning("a worker returned a record for an unexpected theorem %r", rec.theorem)
            if on_result is not None:
                on_result(rec)

    def checked(pending: Pending, verdict: Any, size: int) -> None:
        res = complete_check(pending.theorem, pending.payload, verdict, backend_cls)
        extra = {**res.record.extra, "check_batch": size, "check_batch_no": pending.batch}
        write(dataclasses.replace(res, record=dataclasses.replace(res.record, extra=extra)))

    jobs = [ProveJob(t, run_config, defer_check=deferred) for t in todo]
    with contextlib.ExitStack() as stack:
        checker: BatchChecker | None = None
        if deferred:
            check_backend = make_backend(run_config.backend, run_config.prover)
            stack.callback(check_backend.close)
            check_backend.start()
            def helper() -> Any:  # the second checker at the end of the run (``BatchChecker``)
                extra = make_backend(run_config.backend, run_config.prover)
                extra.start()
                return extra

            checker = stack.enter_context(BatchChecker(check_backend, checked, helper=helper))

        def handle(job: ProveJob, res: JobResult) -> None:
            header = job.theorem.header
            searching[header] -= 1
            if res.unchecked is not None and checker is not None:
                checker.submit(Pending(job.theorem, res.unchecked, res))
            elif res.unchecked is not None:
                raise RuntimeError(f"{job.key}: a deferred check without a checker")
            else:
                write(res)
            if checker is None:
                return
            if searching[header] == 0:
                checker.header_done(header)
            left = sum(searching.values())
            if left == 0:  # the last search: the rest is checked on two threads
                checker.searches_done()
            elif left < run_config.workers:  # a worker has nothing left to search: check at once
                checker.core_idle()

        with open_pool(lambda: resolved.spec(run_config), run_config.workers, run_config.ray_address,
                       retries=run_config.worker_retries, gpus_per_worker=run_config.gpus_per_worker,
                       context=resolved.local_context) as pool:
            pool.run(jobs, handle)
    return new
