"""The driver side of a ``prove`` run: resolve the generator, record provenance, run, write results.

Called by the CLI (which owns progress display); usable from Python as well::

    resolved = resolve_generator(run_config)
    with resolved:
        execute(run_config, resolved, theorems, run_dir, on_result=print)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import logging
import platform
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import (
    BANK_SEARCH,
    LLEMMA_SEARCH,
    GeneratorConfig,
    RunConfig,
    SearchConfig,
    generator_parts,
)
from ..core.errors import ConfigError
from ..core.records import TheoremRecord
from ..core.types import Theorem
from ..results.rundir import RunDir
from .cluster import ray_shutdown
from .job import JobResult, ProveContext, ProveJob, ProveSpec
from .pool import open_pool

log = logging.getLogger(__name__)

#: distributions whose versions go into config.json
PACKAGES: tuple[str, ...] = (
    "llemma-prover", "torch", "transformers", "ray", "networkx", "pexpect", "rich", "lean-dojo", "pyyaml",
)


def effective_search(generator: str, candidates: int | None, max_expansions: int | None,
                     time_budget: float | None, base: SearchConfig | None = None) -> SearchConfig:
    """Budgets: each value not given explicitly comes from ``BANK_SEARCH`` for the bank generator (and
    its mixtures with ``retrieval``: generators without a model), from the Llemma evaluation's defaults
    otherwise."""
    modelless = set(generator_parts(generator)) <= {"bank", "retrieval"}
    defaults = base or (BANK_SEARCH if modelless else LLEMMA_SEARCH)
    return dataclasses.replace(
        defaults,
        candidates=defaults.candidates if candidates is None else candidates,
        max_expansions=defaults.max_expansions if max_expansions is None else max_expansions,
        time_budget=defaults.time_budget if time_budget is None else time_budget,
    )


@dataclass
class ResolvedGenerator:
    """The generator the run uses, resolved once in the driver (``auto`` -> llemma or bank)."""

    config: GeneratorConfig
    name: str
    note: str
    describe: dict[str, Any] = field(default_factory=dict)
    #: for ``workers=0``: the already-built backend + generator, reused for the run
    local_context: ProveContext | None = None
    #: GPUs each Ray worker reserves (1 for a language model on CUDA, else 0), and GPUs seen here
    gpus_per_worker: float = 0.0
    gpu_count: int = 0
    #: the running model servers (``ModelServerPool``) when the workers use them, else None
    servers: Any = None
    #: whether ``resolve_generator`` started (or joined) Ray for the servers: ``close()`` then shuts it down
    started_ray: bool = False

    @property
    def model_server(self) -> dict[str, Any] | None:
        """``ModelServerPool.describe()`` while servers run, else None (recorded in config.json)."""
        return self.servers.describe() if self.servers is not None else None

    def spec(self, run_config: RunConfig) -> ProveSpec:
        """A worker's recipe: with model servers, each call hands out a new server-backed generator."""
        given = self.servers.generator() if self.servers is not None else None
        return ProveSpec(run_config.backend, run_config.prover, self.config, given)

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
    from ..backends.base import backend_class

    backend_class(run_config.backend).preflight(run_config.prover)


def _gpu_count(gen: GeneratorConfig) -> int:
    """CUDA devices a language model could use here (0 when the generator is pinned to the CPU)."""
    if gen.device == "cpu":
        return 0
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_generator(run_config: RunConfig, model_server: str = "off",
                      server_config: Any = None) -> ResolvedGenerator:
    """Decide what generates tactics (raises ``GeneratorUnavailable`` for an explicit generator that
    cannot load).

    ``model_server`` is ``--model-server`` (auto|on|off, see ``serving.use_model_server``). When the
    servers are used they are started here (one per GPU, one on a CPU-only machine; Ray is started
    for them) and every worker gets a ``ServerGenerator``; ``--generator auto`` falls back to bank when
    they cannot start. Otherwise the generator is built once here to learn what runs and why, and
    with ``workers=0`` the built generator is kept.
    """
    gen = run_config.generator
    if model_server != "off" and gen.name in ("llemma", "auto"):
        from ..serving import use_model_server

        gpus = _gpu_count(gen)
        target = "llemma" if (gen.name == "llemma" or gpus) else "bank"
        if use_model_server(model_server, generator=target, gpus=gpus):
            if run_config.workers == 0:
                if model_server == "on":
                    raise ConfigError("--model-server on needs --workers >= 1 (the servers and workers run "
                                      "on Ray); use --model-server off for an in-process run")
            else:
                return _resolve_with_servers(run_config, server_config, gpus)
    elif model_server == "on":
        from ..serving import use_model_server

        use_model_server(model_server, generator=gen.name, gpus=0)  # raises: servers are for llemma
    return _resolve_local(run_config)


def _resolve_with_servers(run_config: RunConfig, server_config: Any, gpus: int) -> ResolvedGenerator:
    import math

    from ..core.errors import GeneratorUnavailable
    from ..generators.registry import check_model_reachable
    from ..serving import ServerConfig, select_engine, vllm_installed
    from ..serving.server import start_model_servers
    from .cluster import ray_init

    server = server_config or ServerConfig()
    server.validate()
    gen_cfg = dataclasses.replace(run_config.generator, name="llemma")
    fallback = run_config.generator.name == "auto"
    try:
        check_model_reachable(gen_cfg)
        select_engine(server.engine, gpu=gpus > 0, vllm_available=vllm_installed())  # before Ray starts
    except GeneratorUnavailable as exc:
        if not fallback:
            raise
        return _resolve_local(run_config, bank_because=f"llemma could not load ({exc})")
    count = server.num_servers or max(1, gpus)
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
        if not fallback:
            raise exc from None
        log.warning("auto: the llemma model server could not start, using bank: %s", exc)
        because = f"the llemma model server could not start ({exc})"
        return _resolve_local(run_config, bank_because=because)
    except BaseException:
        ray_shutdown(started)
        raise
    desc = pool.describe()
    engine = desc.get("engine", server.engine)
    note = (f"{'auto: GPU found, using ' if fallback else ''}llemma ({gen_cfg.model}) on "
            f"{len(pool.handles)} model server(s), engine {engine}")
    return ResolvedGenerator(gen_cfg, "llemma", note, desc, None, 0.0, gpus, servers=pool,
                             started_ray=started)


def _resolve_local(run_config: RunConfig, bank_because: str | None = None) -> ResolvedGenerator:
    """Build the generator here (``bank_because``: use bank instead of ``auto``, saying why)."""
    from ..backends.base import make_backend
    from ..generators.registry import make_generator

    if bank_because is not None:
        bank = dataclasses.replace(run_config.generator, name="bank")
        run_config = dataclasses.replace(run_config, generator=bank)
        generator, _ = make_generator(bank, run_config.backend)
        note = f"auto: {bank_because}, using bank"
    else:
        generator, note = make_generator(run_config.generator, run_config.backend)
    name = generator.name
    gen_cfg = effective_generator_config(run_config.generator, name)
    describe = dict(generator.describe())
    gpus = 0
    if name == "llemma" and run_config.generator.device != "cpu":
        import torch  # loaded already: the llemma generator needs it

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if run_config.workers == 0:
        backend = None
        try:
            backend = make_backend(run_config.backend, run_config.prover)
            backend.start()
        except BaseException:
            if backend is not None:
                backend.close()
            generator.close()
            raise
        context = ProveContext(backend, generator)
        return ResolvedGenerator(gen_cfg, name, note, describe, context, 1.0 if gpus else 0.0, gpus)
    generator.close()
    return ResolvedGenerator(gen_cfg, name, note, describe, None, 1.0 if gpus else 0.0, gpus)


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


def run_metadata(run_config: RunConfig, resolved: ResolvedGenerator, data_files: Sequence[str],
                 data_hash: str, argv: Sequence[str]) -> dict[str, Any]:
    """The content of config.json (docs/FORMATS.md)."""
    from ..backends.base import backend_class, describe_sandbox

    return {
        **run_config.to_dict(),
        "data_hash": data_hash,
        "data_files": list(data_files),
        "packages": package_versions(),
        "git_commit": git_commit(),
        # what actually ran: the effective GeneratorConfig (auto resolved) + describe() + why
        "generator": {**dataclasses.asdict(resolved.config), "describe": resolved.describe,
                      "note": resolved.note, "model_server": resolved.model_server},
        # which automation libraries/solvers the generator found installed (bank on Coq), else None
        "automation": resolved.describe.get("automation"),
        # which protection the prover processes run under (rlimits, scrubbed env, network isolation)
        "sandbox": describe_sandbox(run_config.backend, run_config.prover),
        # the process policy the backend runs with (derived from "prover"; Lean 4 raises some limits)
        "prover_settings": backend_class(run_config.backend).effective_settings(run_config.prover),
        "command": list(argv),
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
    }


def execute(run_config: RunConfig, resolved: ResolvedGenerator, theorems: Sequence[Theorem], run_dir: RunDir,
            on_result: Callable[[TheoremRecord], None] | None = None) -> list[TheoremRecord]:
    """Prove every theorem of ``theorems`` that has no record in ``run_dir`` yet.

    Each result is written (trace, proof file, then the fsynced record) as soon as it arrives;
    ``on_result`` is called after that. Returns the new records.
    """
    # theorems with the same header run back to back (stable: file order within a header), so that a
    # prover that keeps its process per header loads each header about once per worker (miniF2F-valid
    # on Coq: 102 distinct headers, 191 header changes in file order)
    todo = sorted((t for t in theorems if not run_dir.done(t.name)), key=lambda t: t.header)
    new: list[TheoremRecord] = []
    theorem_by_name = {t.name: t for t in todo}

    def handle(_job: ProveJob, res: JobResult) -> None:
        rec = res.record
        trace_rel = run_dir.write_trace(rec.theorem, res.trace)
        if res.proof_text is not None:
            run_dir.write_proof(rec.theorem, res.proof_text, res.proof_ext)
        rec = dataclasses.replace(rec, trace=trace_rel)
        run_dir.append(rec)
        new.append(rec)
        if rec.theorem not in theorem_by_name:
            log.warning("a worker returned a record for an unexpected theorem %r", rec.theorem)
        if on_result is not None:
            on_result(rec)

    if not todo:
        return new
    worker_cfg = dataclasses.replace(run_config, generator=resolved.config)
    jobs = [ProveJob(t, worker_cfg) for t in todo]
    with open_pool(lambda: resolved.spec(worker_cfg), worker_cfg.workers, worker_cfg.ray_address,
                   retries=worker_cfg.worker_retries, gpus_per_worker=resolved.gpus_per_worker,
                   context=resolved.local_context) as pool:
        pool.run(jobs, handle)
    return new


def effective_generator_config(cfg: GeneratorConfig, resolved_name: str) -> GeneratorConfig:
    """The config workers build: ``auto`` replaced by what the driver resolved."""
    return dataclasses.replace(cfg, name=resolved_name) if cfg.name == "auto" else cfg
