"""Which checks run, in what order, within what budget."""

from __future__ import annotations

import importlib
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..backends.base import backend_class
from ..core.config import BACKENDS as PROVER_BACKENDS
from ..core.errors import ConfigError
from .checks import Checklist, Report

__all__ = ["BACKENDS", "DoctorOptions", "backend_checks", "run_doctor"]

#: ``--backend none`` runs only the model/GPU checks (a GPU machine without provers)
NO_BACKEND = "none"
#: ``--backend`` choices
BACKENDS: tuple[str, ...] = (*PROVER_BACKENDS, NO_BACKEND)


@dataclass(frozen=True)
class DoctorOptions:
    backend: str = "coq"
    #: ``hf``/``vllm``: run the model checks with that engine; None: only when ``model`` is given (hf)
    engine: str | None = None
    #: a model id/folder, or ``random:tiny`` / ``random:llemma-7b`` (random weights, offline tokenizer)
    model: str | None = None
    lean_repl: str | None = None
    #: the ``isabelle`` executable (default: on PATH)
    isabelle: str | None = None
    #: seconds for everything (checks still running at the deadline finish; later ones are not run)
    budget_s: float = 120.0
    #: candidates the model checks ask for
    k: int = 4
    device: str = "auto"
    dtype: str = "auto"
    #: skip the bf16 matmul-rate measurement
    gpu: bool = True

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.engine not in (None, "hf", "vllm"):
            raise ConfigError(f"unknown engine {self.engine!r}; choose hf or vllm")
        if self.budget_s <= 0:
            raise ConfigError("--budget must be > 0 seconds")
        if self.k < 2:
            raise ConfigError("--k must be >= 2 (the checks need distinct candidates)")


#: a check function: ``fn(checklist, options)``, adding its checks to the checklist
DoctorCheck = Callable[[Checklist, "DoctorOptions"], None]


def backend_checks(backend: str) -> Sequence[DoctorCheck]:
    """The checks of a prover backend: ``check_backend`` of the doctor module named like it
    (``doctor/coq.py`` for ``coq``); none for a backend without one. The doctor imports backends,
    never the reverse."""
    name = f"{__package__}.{backend_class(backend).name}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return ()
    return (module.check_backend,)


def run_doctor(opts: DoctorOptions) -> Report:
    """Run the checks ``opts`` asks for; never raises for a broken component (that is a failed check)."""
    opts.validate()
    t0 = time.monotonic()
    deadline = t0 + opts.budget_s
    report = Report(
        environment={
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "options": {k: v for k, v in opts.__dict__.items()},
        }
    )
    lists: list[Checklist] = []
    if opts.backend != NO_BACKEND:
        cl = Checklist(backend_class(opts.backend).name, deadline)
        for check in backend_checks(opts.backend):
            check(cl, opts)
        lists.append(cl)
    if opts.engine is not None or opts.model is not None:
        from .gpu import run_gpu_checks
        from .model import run_model_checks

        cl = Checklist("gpu", deadline)
        run_gpu_checks(cl, required=opts.engine == "vllm" or opts.device.startswith("cuda"), measure=opts.gpu)
        lists.append(cl)
        cl = Checklist("model", deadline)
        run_model_checks(cl, opts)
        lists.append(cl)
    for cl in lists:
        report.checks.extend(cl.checks)
    report.elapsed = time.monotonic() - t0
    return report
