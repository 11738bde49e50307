"""The plan of a run: what a run decides, decided here, once, before anything starts.

The CLI turns its flags and ``--config`` file into a request (``RunRequest``: what was asked, with
``auto`` and every default still open) and probes the machine once (``probe_machine``); ``plan_run``
decides the rest into the one frozen ``RunConfig``:

* the generator: ``--generator auto`` resolved (``resolve_auto``, the one place that does), and its
  fallback when a model that ``auto`` chose cannot start (``Machine.llemma_failed``);
* model servers and their engine, workers and GPUs per worker (``plan_generator``);
* the budgets that go with the planned generator (``core.config.effective_search``);
* the backend's time policy with the flags applied (``backend_policy``, ``ProverConfig.with_flags``:
  the same values for ``prove`` and ``autoformalize``);
* the run directory.

``autoformalize`` plans with the same pieces (``plan_autoformalize``: ``probe_machine``, ``resolve_auto``
with its ``none`` drafter, ``backend_policy``). The drivers execute a plan and decide nothing.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.config import (
    AUTO_WITH_MODEL,
    AUTO_WITHOUT_MODEL,
    DATASET_SPLIT,
    NO_DRAFTS,
    AutoformalizeConfig,
    DrafterConfig,
    GeneratorConfig,
    HolePolicy,
    LibraryConfig,
    ProverConfig,
    RunConfig,
    ServerConfig,
    effective_search,
    is_auto,
    may_use_model,
    uses_model,
)
from ..core.errors import ConfigError, GeneratorUnavailable


@dataclass(frozen=True)
class Machine:
    """What the plan looks at besides the flags (probed once by ``probe_machine``)."""

    #: CUDA devices a language model could use here
    gpus: int = 0
    #: whether the optional vllm package is installed
    vllm: bool = False
    #: CPU cores (the default worker count)
    cpus: int = 1
    #: why llemma cannot run (a start under ``--generator auto`` failed): auto then plans without it
    llemma_failed: str | None = None


def probe_machine(generator: str, device: str = "auto") -> Machine:
    """GPUs (only looked for when ``generator`` may run a model, as torch is imported for them, and not
    for a model pinned to the CPU by ``device``), vllm, CPU count."""
    from ..serving import vllm_installed

    gpus = gpu_count(device) if may_use_model(generator) else 0
    return Machine(gpus=gpus, vllm=vllm_installed(), cpus=os.cpu_count() or 1)


def gpu_count(device: str = "auto") -> int:
    """CUDA devices a language model could use here (0 when it is pinned to the CPU or torch is missing)."""
    if device == "cpu":
        return 0
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_auto(requested: str, *, gpus: int, model_failed: str | None = None,
                 without_model: str = AUTO_WITHOUT_MODEL) -> tuple[str, str | None]:
    """``(generator, why)``: ``--generator auto`` resolved on a machine with ``gpus`` GPUs, where a model
    chosen by auto already failed to start when ``model_failed`` says why; any other name as it is,
    with no reason (``why`` is None exactly when nothing was resolved). ``without_model``: what auto
    means without a model (``prove``: the bank; ``autoformalize``: its ``none`` drafter)."""
    if not is_auto(requested):
        return requested, None
    if model_failed:
        return without_model, f"auto: {model_failed}"
    if gpus == 0:
        return without_model, "auto: no GPU found"
    return AUTO_WITH_MODEL, "auto: GPU found"


@dataclass(frozen=True)
class GeneratorPlan:
    """What generates tactics and where (plain data)."""

    #: the generator the workers build (``auto`` resolved)
    name: str
    #: model servers for the model part of the generator (engine resolved), or None
    serving: ServerConfig | None
    #: GPUs each Ray worker reserves
    gpus_per_worker: float
    #: the worker count (the flag's, else the default for this plan)
    workers: int
    #: why ``auto`` chose what it chose (None for an explicit generator)
    why: str | None = None


def plan_generator(requested: str, model_server: str, server: ServerConfig, workers: int | None,
                   machine: Machine) -> GeneratorPlan:
    """Resolve ``--generator auto``, ``--model-server`` and ``--engine`` against ``machine`` (pure).

    Model servers (``serving.use_model_server``) start for any generator that runs a model, a mixture
    such as ``llemma+bank`` included, and need Ray workers; ``--model-server on`` with ``--workers 0``
    or without a model is a ``ConfigError``, an engine that cannot run a ``GeneratorUnavailable``
    (under auto: the generator without a model instead). Without servers, a model on GPUs takes one GPU
    per worker and one worker per GPU.
    """
    from ..serving import select_engine, use_model_server

    name, why = resolve_auto(requested, gpus=machine.gpus, model_failed=machine.llemma_failed)
    serving = None
    if use_model_server(model_server, model=uses_model(name), gpus=machine.gpus):
        if workers == 0:
            if model_server == "on":
                raise ConfigError("--model-server on needs --workers >= 1 (the servers and workers run "
                                  "on Ray); use --model-server off for an in-process run")
        else:
            try:
                serving = dataclasses.replace(server, engine=select_engine(
                    server.engine, gpu=machine.gpus > 0, vllm_available=machine.vllm))
            except GeneratorUnavailable as exc:
                if not is_auto(requested):
                    raise
                name, why = resolve_auto(requested, gpus=machine.gpus,
                                         model_failed=f"llemma could not load ({exc})")
    gpus_per_worker = 1.0 if uses_model(name) and serving is None and machine.gpus else 0.0
    default_workers = max(1, machine.gpus) if gpus_per_worker else machine.cpus
    return GeneratorPlan(name, serving, gpus_per_worker, default_workers if workers is None else workers, why)


def backend_policy(backend: str, *, executable: str | None = None, hammer: str = "off"
                   ) -> tuple[ProverConfig, bool]:
    """What the plan takes from the backend, asked once: its own process and time policy (its
    ``default_config``: the same for ``prove`` and ``autoformalize``; the flags are applied with
    ``ProverConfig.with_flags``) and whether hole filling adds its hammer (``--hammer`` auto/on/off:
    on when asked, or for auto when installed; False for a backend without one)."""
    from ..backends.base import prover_setup

    kind = prover_setup(backend)
    if executable is not None and kind.executable_flag is None:
        raise ConfigError(f"--backend {backend} runs no executable of your choice "
                          "(--lean-repl is for --backend lean4)")
    installed = kind.hammer_installed() if hammer != "off" else None
    if hammer == "on" and installed is False:
        raise ConfigError("--hammer on needs CoqHammer's tactics library: "
                          "apt-get install libcoq-hammer (or use --hammer off)")
    return kind.default_config(), bool(installed)


@dataclass(frozen=True)
class RunRequest:
    """What a ``prove`` command asks for, before the plan: the flags and the ``--config`` file as values
    (paths absolute), with ``auto`` and the defaults the plan chooses still open (None)."""

    backend: str
    #: ``generator.name`` may be ``auto``
    generator: GeneratorConfig
    split: str
    dataset: str = ""
    data_dir: str = ""
    #: the run directory (None: ``runs/<split or dataset>-<backend>-<generator>``)
    out: str | None = None
    theorems: tuple[str, ...] = ()
    limit: int | None = None
    workers: int | None = None
    ray_address: str | None = None
    model_server: str = "auto"
    engine: str = "auto"
    candidates: int | None = None
    max_expansions: int | None = None
    time_budget: float | None = None
    tactic_timeout: float | None = None
    sandbox: str | None = None
    executable: str | None = None
    library: LibraryConfig | None = None


def plan_run(request: RunRequest, machine: Machine) -> RunConfig:
    """The one, final ``RunConfig`` of a ``prove`` run (validated; nothing changes it afterwards)."""
    plan = plan_generator(request.generator.name, request.model_server, ServerConfig(engine=request.engine),
                          request.workers, machine)
    out = _out_dir(request.out, f"{_data_tag(request.dataset, request.split)}-{request.backend}-{plan.name}")
    policy, _ = backend_policy(request.backend, executable=request.executable)
    prover = policy.with_flags(tactic_timeout=request.tactic_timeout, sandbox=request.sandbox,
                               executable=request.executable)
    # the bank's budgets scale with the backend's own tactic timeout, not the flag's
    search = effective_search(plan.name, request.candidates, request.max_expansions, request.time_budget,
                              tactic_timeout=policy.tactic_timeout)
    cfg = RunConfig(
        split=request.split,
        dataset=request.dataset,
        backend=request.backend,
        data_dir=request.data_dir,
        out_dir=str(out.resolve()),
        theorems=request.theorems,
        limit=request.limit,
        workers=plan.workers,
        ray_address=request.ray_address,
        search=search,
        prover=prover,
        generator=dataclasses.replace(request.generator, name=plan.name),
        serving=plan.serving,
        gpus_per_worker=plan.gpus_per_worker,
        library=request.library,
        generator_choice=plan.why,
    )
    cfg.validate()
    return cfg


@dataclass(frozen=True)
class AutoformalizeRequest:
    """What an ``autoformalize`` command asks for, before the plan (paths absolute): the drafter's name
    may be ``auto``; the tactic timeout None (the backend's); ``hammer`` auto/on/off."""

    backend: str
    split: str
    drafter: DrafterConfig
    holes: HolePolicy
    hammer: str = "auto"
    tactic_timeout: float | None = None
    dataset: str = ""
    data_dir: str = ""
    #: the run directory (None: ``runs/dsp-<split or dataset>-<backend>-<drafter>``)
    out: str | None = None
    theorems: tuple[str, ...] = ()
    limit: int | None = None
    workers: int = 0
    ray_address: str | None = None


def plan_autoformalize(request: AutoformalizeRequest, machine: Machine) -> tuple[AutoformalizeConfig, str]:
    """The one, final ``AutoformalizeConfig`` of a run and why its drafter was chosen: ``auto`` resolved
    as ``prove`` resolves it (a model on a GPU machine, else the ``none`` drafter: one hole per problem),
    the backend's time policy (``backend_policy``, as ``prove``'s), CoqHammer's tactics when installed."""
    name, why = resolve_auto(request.drafter.name, gpus=machine.gpus, model_failed=machine.llemma_failed,
                             without_model=NO_DRAFTS)
    out = _out_dir(request.out, f"dsp-{_data_tag(request.dataset, request.split)}-{request.backend}-{name}")
    if request.ray_address and request.workers == 0:
        raise ConfigError("--ray-address needs --workers >= 1")
    policy, hammer = backend_policy(request.backend, hammer=request.hammer)
    prover = policy.with_flags(tactic_timeout=request.tactic_timeout)
    cfg = AutoformalizeConfig(
        split=DATASET_SPLIT if request.dataset else request.split,
        dataset=request.dataset,
        backend=request.backend,
        data_dir=request.data_dir,
        out_dir=str(out.resolve()),
        theorems=request.theorems,
        limit=request.limit,
        workers=request.workers,
        ray_address=request.ray_address,
        drafter=dataclasses.replace(request.drafter, name=name),
        holes=dataclasses.replace(request.holes, use_hammer=hammer),
        prover=prover,
    )
    cfg.validate()
    return cfg, why or "requested"


def _data_tag(dataset: str | None, split: str) -> str:
    """What a default run folder is named after: the ``--dataset`` file's stem, else the split."""
    return Path(dataset).stem.removesuffix(".jsonl") if dataset else split


def _out_dir(out: str | None, default_name: str) -> Path:
    """``--out`` when given, else ``runs/<default_name>``."""
    return Path(out) if out else Path("runs") / default_name
