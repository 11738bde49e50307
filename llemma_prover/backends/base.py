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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from ..core.config import DATA_SYSTEM, ProverConfig
from ..core.errors import ConfigError
from ..core.types import CheckResult, RootState, StepResult, Theorem

if TYPE_CHECKING:
    from .bank import Bank
    from .sketch import Probe, Sketch, SketchError

#: the line between a goal's hypotheses and its conclusion in the goal text of extracted steps
GOAL_SEPARATOR = "============================"


@dataclass(frozen=True)
class AuditProbes:
    """How ``llemma-prover audit`` probes a statement on one prover: each probe is a search on
    ``make(theorem, probe)`` whose first step is ``root_tactic``; ``extra_tactics`` join the bank."""

    probes: tuple[str, ...]
    root_tactic: str
    extra_tactics: tuple[str, ...]
    make: Callable[[Theorem, str], Theorem]


class ProverBackend(abc.ABC):
    """Abstract prover backend. Subclasses register with ``@register_backend("name")``.

    What needs no running prover is a classmethod (ask ``backend_class(name)``, construct nothing):
    file formats (``proof_ext``, ``proof_text``, ``export_text``, ``imported_theorem``), proof-step data
    (``step_goal_text``, ``step_tactic_text``, ``reads_steps_of``, ``goal_parts``), sketches
    (``parse_sketch``, ``fill_hole``, ``hole_candidates``, ``automation_theorem``, ``whole_proof_sketch``).
    Callers never branch on a backend's name. The doctor's checks of a backend live in
    ``doctor/<name>.py`` (the doctor imports backends, never the reverse).
    """

    #: registry name, set by ``register_backend``
    name: str = ""
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

    def check_audited(self, theorem: Theorem, proof: Sequence[str], audit_header: str) -> CheckResult:
        """``check``, with the axioms judged against ``audit_header`` (raw, like ``theorem.header``)
        rather than ``theorem.header``: the problem's own header, when automation added to it
        (``automation_theorem``). Default: only the theorem's own header is supported."""
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

    @classmethod
    def artifact_proof(cls, proof: Sequence[str]) -> list[str]:
        """The proof as it is checked, recorded and exported: without the wall-clock wrappers the
        search ran its steps under (a proof must not depend on the speed of the machine that replays
        it). Default: unchanged."""
        return list(proof)

    @classmethod
    @abc.abstractmethod
    def proof_text(cls, theorem: Theorem, proof: Sequence[str]) -> str:
        """The complete source file of ``theorem`` proved by ``proof`` (what ``check`` checks)."""

    # -- the ``bank`` generator's tactics -----------------------------------------------------------
    @classmethod
    def tactic_bank(cls) -> Bank:
        """This prover's automation tactics for ``generators.bank.BankGenerator`` (``backends.bank``):
        entries with prior weights, the goal features they need, the prover's per-tactic timeout."""
        raise ConfigError(f"no tactic bank for backend {cls.name!r}")

    # -- files without a prover (``trace path``, imported records) -----------------------------------
    @classmethod
    def export_text(
        cls, theorem: Theorem, tactics: Sequence[str], complete: bool, remaining: str = ""
    ) -> str:
        """A proof file following the data README's conventions: ``tactics`` one per line; when not
        ``complete`` the proof is left open (Coq ``Admitted.``, Lean/Isabelle ``sorry``) with the
        ``remaining`` goals in a comment, so it still compiles. Default: no such format."""
        raise NotImplementedError(f"no proof-file format for backend {cls.name!r}")

    @classmethod
    def imported_theorem(cls, name: str, split: str, statement: str, header: str | None) -> Theorem:
        """The theorem of an imported record (its own ``statement`` and, if recorded, ``header``)."""
        return Theorem(name=name, split=split, system=DATA_SYSTEM.get(cls.name, cls.name),
                       header=header or "", statement=statement)

    # -- proof-step data (``extract`` output: ``train``, the retrieval generator) -------------------
    @classmethod
    def reads_steps_of(cls, backend: str) -> bool:
        """Whether proof-step data extracted with ``backend`` is data for this backend."""
        return backend == cls.name

    @classmethod
    def step_goal_text(cls, record: Mapping[str, Any]) -> str:
        """The goal text of an extracted step ``record``, as this backend shows goals to a model.
        Default: its ``goals_before`` in coqtop's layout -- the first goal's hypotheses one per line,
        the ``====`` rule, its conclusion; the other goals as conclusions; a blank line between goals
        (raises ``KeyError``/``TypeError`` for a record that is not a step record)."""
        parts = []
        for i, g in enumerate(record["goals_before"]):
            concl = " ".join(str(g["concl"]).split())
            if i == 0:
                hyps = [" ".join(str(h).split()) for h in g.get("hyps", [])]
                parts.append("\n".join([*hyps, GOAL_SEPARATOR, concl]))
            else:
                parts.append(concl)
        return "\n\n".join(parts)

    @classmethod
    def tactic_key(cls, tactic: str) -> str:
        """What two tactics have in common when they are the same step (mixing de-duplicates by it).
        Default: the text with white space normalised."""
        return " ".join(tactic.split())

    @classmethod
    def step_tactic_text(cls, tactic: str) -> str:
        """An extracted ``tactic`` as this backend's generators write it. Default: unchanged."""
        return tactic

    #: whether proof files and the final check put a theorem's ``footer`` after its proof
    honours_footer: ClassVar[bool] = False

    @classmethod
    def require_footers_honoured(cls, theorems: Sequence[Theorem]) -> None:
        """``ConfigError`` when a theorem has a ``footer`` (``--dataset``) that this backend would drop."""
        with_footer = [t.name for t in theorems if t.footer.strip()]
        if with_footer and not cls.honours_footer:
            more = ", ..." if len(with_footer) > 3 else ""
            raise ConfigError(f"backend {cls.name!r} does not support the 'footer' field yet "
                              f"(theorems {', '.join(with_footer[:3])}{more})")

    #: whether ``goal_parts`` can split this backend's goal text (the retrieval generator needs it)
    splits_goals: ClassVar[bool] = False

    @classmethod
    def goal_parts(cls, goal_text: str) -> tuple[list[str], str]:
        """The first goal of ``goal_text`` as (hypotheses, conclusion)."""
        raise NotImplementedError(f"backend {cls.name!r} cannot split its goals into hypotheses")

    # -- sketches (``autoformalize``) --------------------------------------------------------------
    #: a sketch whose one hole is the whole proof (``--generator none``); "" when there is no dialect
    whole_proof_sketch: ClassVar[str] = ""
    #: holes are filled by whole-file ``probe``s (no cheap states), not step by step through ``apply``
    fills_by_probes: ClassVar[bool] = False

    @classmethod
    def parse_sketch(cls, text: str) -> Sketch | SketchError:
        """Parse untrusted model text in this backend's sketch dialect (``backends/sketch.py``); never
        raises on the text. Default: no dialect."""
        from .sketch import SketchError

        return SketchError(f"no sketch format for backend {cls.name!r}")

    @classmethod
    def fill_hole(cls, template: str, tactic: str) -> str:
        """A stepwise sketch's hole step ``template`` with ``tactic`` in its hole, written so that the
        step fails unless ``tactic`` closes the hole."""
        raise ValueError(f"no stepwise holes for backend {cls.name!r}")

    @classmethod
    def hole_candidates(cls, claim: str, goals: tuple[str, ...], use_hammer: bool) -> list[str]:
        """The ranked automation tried on a hole whose claim is ``claim`` ("" when the step states
        none) on ``goals``; ``use_hammer``: include hammer-style reconstruction where there is one."""
        return []

    @classmethod
    def audit_probes(cls) -> AuditProbes | None:
        """The vacuity audit's probes on this prover (``llemma-prover audit``); None: none written yet."""
        return None

    @classmethod
    def automation_theorem(cls, theorem: Theorem, use_hammer: bool) -> Theorem:
        """``theorem`` with what ``hole_candidates`` need loaded (an import in the header). The final
        check then judges axioms against the original header (``check_audited``). Default: unchanged."""
        return theorem

    def probe(self, theorem: Theorem, proof: str, timeout: float,
              suggestions_at: int | None = None) -> Probe:
        """Check ``theorem``'s whole file with ``proof`` (untrusted probe text, may contain holes the
        final check refuses); ``suggestions_at``: a 0-based line of ``proof`` whose proof-search
        suggestions to collect. Only for backends that ``fills_by_probes``."""
        raise NotImplementedError(f"backend {self.name!r} fills holes step by step, not by probes")

    @classmethod
    def hammer_command(cls, timeout: float) -> str | None:
        """The proof-search command placed at a hole of a probe (its own time limit ``timeout``), whose
        suggestions ``probe(..., suggestions_at=line)`` collects; None: there is none."""
        return None

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
        """The process policy of this backend when no flag says otherwise (its one time policy: tactic,
        start and check timeouts): what ``prove`` and ``autoformalize`` start from, so that
        ``config.json["prover"]`` is the policy that runs. Default: ``ProverConfig()``."""
        return ProverConfig()

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
