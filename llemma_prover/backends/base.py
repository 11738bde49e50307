"""The one interface every prover backend implements, and the backend registry.

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
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from types import TracebackType

from ..core.config import ProverConfig
from ..core.errors import ConfigError
from ..core.types import CheckResult, RootState, StepResult, Theorem


class ProverBackend(abc.ABC):
    """Abstract prover backend. Subclasses register with ``@register_backend("name")``."""

    #: registry name, set by ``register_backend``
    name: str = ""
    #: ``--tactic-timeout`` when not given (seconds); a backend whose timeouts cost more says so
    default_tactic_timeout: float = ProverConfig().tactic_timeout
    #: file extension of this prover's source files (proof files in a run directory), set by
    #: ``register_backend``
    proof_ext: str = "txt"
    #: the command-line flag that sets ``ProverConfig.executable`` for this backend (``--lean-repl``),
    #: None: the backend takes none
    executable_flag: str | None = None

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

    @abc.abstractmethod
    def proof_text(self, theorem: Theorem, proof: Sequence[str]) -> str:
        """The complete source file of ``theorem`` proved by ``proof`` (what ``check`` checks)."""

    # -- accounting --------------------------------------------------------------------------
    @property
    def restarts(self) -> int:
        """Processes replaced since the current theorem started (policy: ``max_restarts``)."""
        return 0

    def stats(self) -> dict[str, float]:
        """Counters for the record (restarts, replays, replayed tactics, ...)."""
        return {}

    @classmethod
    def preflight(cls, config: ProverConfig) -> None:
        """Cheap checks that the prover can be found, before any worker, model or Ray starts; raises
        ``ProverUnavailable`` saying how to install it. Default: nothing to check up front."""
        return None

    @classmethod
    def default_config(cls) -> ProverConfig:
        """The process policy of this backend when no flag says otherwise: what ``prove`` and
        ``autoformalize`` start from, so that ``config.json["prover"]`` is the policy that runs.
        Default: ``ProverConfig()`` with ``default_tactic_timeout``."""
        return ProverConfig(tactic_timeout=cls.default_tactic_timeout)

    @classmethod
    def hammer_installed(cls) -> bool | None:
        """Whether this prover's hammer (tactics that hole filling may add: ``autoformalize --hammer``)
        is installed here; None: the prover has no such hammer. Default None."""
        return None

    @classmethod
    def effective_settings(cls, config: ProverConfig) -> dict[str, object]:
        """The process policy this backend actually runs with for ``config``, as plain data (for
        ``config.json["prover_settings"]``). Default: ``config`` itself; a backend that derives its own
        settings from it (Lean 4: larger memory and start limits for a Mathlib REPL) reports those."""
        import dataclasses

        return dataclasses.asdict(config)

    @classmethod
    def sandbox_description(cls, config: ProverConfig) -> dict[str, object]:
        """What this backend's prover processes run under, for ``config.json["sandbox"]`` (probes the
        OS). Default: ``sandbox_for(config)``; a backend that must relax it says so by overriding."""
        from .sandbox import sandbox_for

        return sandbox_for(config).describe()


_REGISTRY: dict[str, Callable[[ProverConfig], ProverBackend]] = {}


def register_backend(name: str, proof_ext: str = "txt"
                     ) -> Callable[[type[ProverBackend]], type[ProverBackend]]:
    """Class decorator: make a backend constructible by name; ``proof_ext``: its files' extension."""

    def deco(cls: type[ProverBackend]) -> type[ProverBackend]:
        cls.name = name
        cls.proof_ext = proof_ext
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
    """The class registered as ``name``: what callers ask of a backend without constructing one
    (``proof_ext``, ``preflight``, ``sandbox_description``)."""
    if name not in _REGISTRY:
        _import_builtin(name)
    cls = _REGISTRY.get(name)
    if not isinstance(cls, type) or not issubclass(cls, ProverBackend):
        raise ConfigError(f"unknown backend {name!r}")
    return cls


def describe_sandbox(name: str, config: ProverConfig) -> dict[str, object]:
    """``sandbox_description`` of the backend registered as ``name`` (no backend is constructed)."""
    return backend_class(name).sandbox_description(config)


def make_backend(name: str, config: ProverConfig) -> ProverBackend:
    """Construct the backend registered as ``name`` (cheap: processes start lazily)."""
    if name not in _REGISTRY:
        _import_builtin(name)
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}") from None
    return factory(config)
