"""The prover session every backend implements, and the backend registry.

A backend owns its prover processes. Usage, one theorem at a time::

    with make_backend("coq", prover_config) as backend:
        root = backend.start_theorem(theorem)          # RootState
        step = backend.apply(root.state_id, "intros.")
        # step: Advanced | ProofFinished | TacticError | TacticTimeout
        ...
        check = backend.check(theorem, proof)          # CheckResult, independent full re-check

State ids are persistent for the current theorem: ``apply`` may extend any state returned earlier
(the search expands nodes in any order). A tactic failure is returned as a value; a prover process
that breaks raises ``ProverError`` -- after which the backend has already killed the process and
will transparently start a fresh one (restoring states by replay) on the next call.

What needs no running prover is a part of its own (``parts.py``), a class attribute of the session and
reachable by name without constructing one: ``proof_dialect(name)`` (proof files), ``sketch_dialect``
(sketches with holes), ``data_hooks`` (bank tactics, proof-step data), ``prover_setup`` (process
policy, preflight, what the run records). Callers never branch on a backend's name.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from ..core.config import ProverConfig
from ..core.errors import ConfigError
from ..core.types import CheckResult, RootState, StepResult, Theorem
from .parts import GOAL_SEPARATOR, AuditProbes, DataHooks, ProofDialect, ProverSetup, SketchDialect

if TYPE_CHECKING:
    from .sketch import Probe

__all__ = ["GOAL_SEPARATOR", "AuditProbes", "DataHooks", "ProofDialect", "ProverBackend", "ProverSetup",
           "SketchDialect", "backend_class", "data_hooks", "make_backend", "proof_dialect", "prover_setup",
           "register_backend", "sketch_dialect"]


class ProverBackend(abc.ABC):
    """A prover session: start, run tactics on states, check a whole proof, close. Subclasses register
    with ``@register_backend("name")`` and set their parts (``dialect``, ``sketches``, ``data``,
    ``setup``: ``parts.py``); the doctor's checks of a backend live in ``doctor/<name>.py`` (the doctor
    imports backends, never the reverse).
    """

    #: registry name, set by ``register_backend``
    name: str = ""
    #: proof files in this prover's language (required: ``check`` checks ``dialect.proof_text``)
    dialect: ClassVar[ProofDialect]
    #: sketches with holes; default: no dialect
    sketches: ClassVar[SketchDialect] = SketchDialect("")
    #: bank tactics and proof-step data; default: none
    data: ClassVar[DataHooks] = DataHooks("")
    #: process policy and preflight; default: ``ProverConfig()``, nothing to check
    setup: ClassVar[ProverSetup] = ProverSetup("")

    def __init__(self, config: ProverConfig) -> None:
        self.config = config

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:  # noqa: B027 - optional hook, lazy backends need nothing
        """Acquire expensive resources (start processes). Idempotent. Default: lazy, nothing."""

    @abc.abstractmethod
    def close(self) -> None:
        """Kill and reap every process this backend started. Idempotent; never raises."""

    def __enter__(self) -> ProverBackend:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- proving -----------------------------------------------------------------------------
    @abc.abstractmethod
    def start_theorem(self, theorem: Theorem) -> RootState:
        """Load ``theorem`` and return its root state. Forgets the states of the previous theorem.

        Raises ``ProverStartError`` when the header or the statement does not load.
        """

    @abc.abstractmethod
    def apply(self, state_id: int, tactic: str) -> StepResult:
        """Run one tactic on a state of the current theorem, within ``config.tactic_timeout``."""

    @abc.abstractmethod
    def check(self, theorem: Theorem, proof: Sequence[str]) -> CheckResult:
        """Independently re-check the whole proof from scratch (fresh process / compiler)."""

    def check_audited(self, theorem: Theorem, proof: Sequence[str], audit_header: str) -> CheckResult:
        """``check``, with the axioms judged against ``audit_header`` (raw, like ``theorem.header``)
        rather than ``theorem.header``: the problem's own header, when automation added to it
        (``SketchDialect.automation_theorem``). Default: only the theorem's own header is supported."""
        if audit_header == theorem.header:
            return self.check(theorem, proof)
        raise NotImplementedError(f"backend {self.name!r} judges axioms only against the theorem's header")

    #: whether ``check_many`` is cheaper than one ``check`` per proof: a prove run then checks found
    #: proofs in batches on a checker of its own (``workers/checker.py``) instead of on the search worker
    batched_check: bool = False

    def check_many(self, proofs: Sequence[tuple[Theorem, Sequence[str]]]) -> list[CheckResult]:
        """``check`` of each (theorem, proof), verdicts in order; the same verdict as ``check`` gives
        each. Default: one ``check`` after another."""
        return [self.check(theorem, proof) for theorem, proof in proofs]

    def prepare_check(self, theorem: Theorem) -> None:
        """Do ahead what a later check of ``theorem``'s proofs needs from trusted data alone (its
        header, never a proof), so that the check itself is shorter; a failure here is left for the
        check to meet and decide. Default: nothing."""
        return None

    def probe(self, theorem: Theorem, proof: str, timeout: float,
              suggestions_at: int | None = None) -> Probe:
        """Check ``theorem``'s whole file with ``proof`` (untrusted probe text, may contain holes the
        final check refuses); ``suggestions_at``: a 0-based line of ``proof`` whose proof-search
        suggestions to collect. Only for backends whose sketches ``fills_by_probes``."""
        raise NotImplementedError(f"backend {self.name!r} fills holes step by step, not by probes")

    # -- accounting --------------------------------------------------------------------------
    @property
    def restarts(self) -> int:
        """Processes replaced since the current theorem started (policy: ``max_restarts``)."""
        return 0

    def stats(self) -> dict[str, float]:
        """Counters for the record (restarts, replays, replayed tactics, ...)."""
        return {}


_REGISTRY: dict[str, Callable[[ProverConfig], ProverBackend]] = {}


def register_backend(name: str) -> Callable[[type[ProverBackend]], type[ProverBackend]]:
    """Class decorator: make a backend constructible by name. Its parts must be made for that name."""

    def deco(cls: type[ProverBackend]) -> type[ProverBackend]:
        cls.name = name
        for attr in ("dialect", "sketches", "data", "setup"):
            part = getattr(cls, attr)
            if part.backend == "":  # a default part: this backend's own copy, named for its messages
                setattr(cls, attr, type(part)(name))
            elif part.backend != name:
                raise TypeError(f"backend {name!r} carries {part!r}, a part of another backend")
        _REGISTRY[name] = cls
        return cls

    return deco


def _import_builtin(name: str) -> None:
    # Backends live in their own modules so that importing one never drags in another's deps.
    import importlib

    modules = {
        "coq": "llemma_prover.backends.coq",
        "lean4": "llemma_prover.backends.lean4",
        "leandojo": "llemma_prover.backends.leandojo",
        "isabelle": "llemma_prover.backends.isabelle",
    }
    if name in modules:
        importlib.import_module(modules[name])


def backend_class(name: str) -> type[ProverBackend]:
    """The session class registered as ``name`` (nothing is constructed); its parts are also reached
    directly: ``proof_dialect``, ``sketch_dialect``, ``data_hooks``, ``prover_setup``."""
    if name not in _REGISTRY:
        _import_builtin(name)
    cls = _REGISTRY.get(name)
    if not isinstance(cls, type) or not issubclass(cls, ProverBackend):
        raise ConfigError(f"unknown backend {name!r}")
    return cls


def proof_dialect(name: str) -> ProofDialect:
    """Proof files of the backend registered as ``name`` (``ConfigError``: no such backend)."""
    return backend_class(name).dialect


def sketch_dialect(name: str) -> SketchDialect:
    """The sketch dialect of the backend registered as ``name``."""
    return backend_class(name).sketches


def data_hooks(name: str) -> DataHooks:
    """Bank tactics and proof-step data of the backend registered as ``name``."""
    return backend_class(name).data


def prover_setup(name: str) -> ProverSetup:
    """Process policy, preflight and recorded settings of the backend registered as ``name``."""
    return backend_class(name).setup


def make_backend(name: str, config: ProverConfig) -> ProverBackend:
    """Construct the backend registered as ``name`` (cheap: processes start lazily)."""
    if name not in _REGISTRY:
        _import_builtin(name)
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}") from None
    return factory(config)
