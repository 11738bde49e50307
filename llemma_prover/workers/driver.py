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

from ..core.config import BANK_SEARCH, LLEMMA_SEARCH, GeneratorConfig, RunConfig, SearchConfig
from ..core.records import TheoremRecord
from ..core.types import Theorem
from ..runs.rundir import RunDir
from .job import JobResult
from .pool import Worker, effective_generator_config, worker_pool

log = logging.getLogger(__name__)

#: distributions whose versions go into config.json
PACKAGES: tuple[str, ...] = (
    "llemma-prover", "torch", "transformers", "ray", "networkx", "pexpect", "rich", "lean-dojo", "pyyaml",
)


def effective_search(generator: str, candidates: int | None, max_expansions: int | None,
                     time_budget: float | None, base: SearchConfig | None = None) -> SearchConfig:
    """Budgets: each value not given explicitly comes from ``BANK_SEARCH`` for the bank generator,
    from the Llemma evaluation's defaults otherwise."""
    defaults = base or (BANK_SEARCH if generator == "bank" else LLEMMA_SEARCH)
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
    #: for ``workers=0``: the already-built worker (backend + generator), reused for the run
    local_worker: Worker | None = None
    #: GPUs each Ray worker reserves (1 for a language model on CUDA, else 0), and GPUs seen here
    gpus_per_worker: float = 0.0
    gpu_count: int = 0

    def close(self) -> None:
        if self.local_worker is not None:
            self.local_worker.close()
            self.local_worker = None

    def __enter__(self) -> ResolvedGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resolve_generator(run_config: RunConfig) -> ResolvedGenerator:
    """Build the generator once here to learn what runs and why (raises ``GeneratorUnavailable``
    for an explicit generator that cannot load). With ``workers=0`` the built generator is kept."""
    from ..backends.base import make_backend
    from ..generators.registry import make_generator

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
        worker = Worker(dataclasses.replace(run_config, generator=gen_cfg), gen_cfg)
        worker.backend, worker.generator = backend, generator
        return ResolvedGenerator(gen_cfg, name, note, describe, worker, 1.0 if gpus else 0.0, gpus)
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
    return {
        **run_config.to_dict(),
        "data_hash": data_hash,
        "data_files": list(data_files),
        "packages": package_versions(),
        "git_commit": git_commit(),
        # what actually ran: the effective GeneratorConfig (auto resolved) + describe() + why
        "generator": {**dataclasses.asdict(resolved.config), "describe": resolved.describe,
                      "note": resolved.note},
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
    todo = [t for t in theorems if not run_dir.done(t.name)]
    new: list[TheoremRecord] = []
    theorem_by_name = {t.name: t for t in todo}

    def handle(res: JobResult) -> None:
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
    with worker_pool(worker_cfg, resolved.config, local_worker=resolved.local_worker,
                     gpus_per_worker=resolved.gpus_per_worker) as run:
        run(todo, handle)
    return new
