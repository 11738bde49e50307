"""The parts of a prover backend that need no running prover, each a small interface of its own.

A backend (``base.ProverBackend``, the *session*: start, apply a tactic, check, close) carries one object
of each part as a class attribute, so a caller reaches the one it needs without constructing a session
(``proof_dialect("coq").proof_text(...)``, ``backend.dialect.artifact_proof(...)``):

* ``ProofDialect`` (``.dialect``): proof files -- the checked file, exported and imported files, the
  footer rule, the audit's probe statements;
* ``SketchDialect`` (``.sketches``): proof sketches with holes (``autoformalize``) and their automation;
* ``DataHooks`` (``.data``): the ``bank`` generator's tactics and the proof-step data of ``extract``;
* ``ProverSetup`` (``.setup``): the process policy and what is installed (defaults, preflight, the
  settings and sandbox recorded in ``config.json``).

Each part is stateless and knows the name of the backend it belongs to (``backend``), for its messages.
The doctor's checks of a backend live in ``doctor/<name>.py`` (the doctor imports backends, never the
reverse). ``tests/test_backend_parts.py`` holds every part to at most 12 methods.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..core.config import DATA_SYSTEM, ProverConfig
from ..core.errors import ConfigError
from ..core.types import Theorem

if TYPE_CHECKING:
    from .bank import Bank
    from .sketch import Sketch, SketchError

__all__ = ["GOAL_SEPARATOR", "AuditProbes", "DataHooks", "ProofDialect", "ProverSetup", "SketchDialect"]

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


class _Part:
    def __init__(self, backend: str) -> None:
        #: the registry name of the backend this part belongs to
        self.backend = backend

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.backend!r})"


class ProofDialect(_Part, abc.ABC):
    """Proof files in the prover's language (``trace path``, run directories, imported records)."""

    #: file extension of this prover's source files (proof files in a run directory)
    proof_ext: ClassVar[str] = "txt"
    #: whether proof files and the final check put a theorem's ``footer`` after its proof
    honours_footer: ClassVar[bool] = False

    @abc.abstractmethod
    def proof_text(self, theorem: Theorem, proof: Sequence[str]) -> str:
        """The complete source file of ``theorem`` proved by ``proof`` (what ``check`` checks)."""

    def artifact_proof(self, proof: Sequence[str]) -> list[str]:
        """The proof as it is checked, recorded and exported: without the wall-clock wrappers the
        search ran its steps under (a proof must not depend on the speed of the machine that replays
        it). Default: unchanged."""
        return list(proof)

    def export_text(
        self, theorem: Theorem, tactics: Sequence[str], complete: bool, remaining: str = ""
    ) -> str:
        """A proof file following the data README's conventions: ``tactics`` one per line; when not
        ``complete`` the proof is left open (Coq ``Admitted.``, Lean/Isabelle ``sorry``) with the
        ``remaining`` goals in a comment, so it still compiles. Default: no such format."""
        raise NotImplementedError(f"no proof-file format for backend {self.backend!r}")

    def imported_theorem(self, name: str, split: str, statement: str, header: str | None) -> Theorem:
        """The theorem of an imported record (its own ``statement`` and, if recorded, ``header``)."""
        return Theorem(name=name, split=split, system=DATA_SYSTEM.get(self.backend, self.backend),
                       header=header or "", statement=statement)

    def require_footers_honoured(self, theorems: Sequence[Theorem]) -> None:
        """``ConfigError`` when a theorem has a ``footer`` (``--dataset``) that this backend would drop."""
        with_footer = [t.name for t in theorems if t.footer.strip()]
        if with_footer and not self.honours_footer:
            more = ", ..." if len(with_footer) > 3 else ""
            raise ConfigError(f"backend {self.backend!r} does not support the 'footer' field yet "
                              f"(theorems {', '.join(with_footer[:3])}{more})")

    def audit_probes(self) -> AuditProbes | None:
        """The vacuity audit's probes on this prover (``llemma-prover audit``); None: none written yet."""
        return None


class SketchDialect(_Part):
    """Proof sketches with holes (``autoformalize``; the data model is ``backends/sketch.py``).
    Default: no dialect."""

    #: a sketch whose one hole is the whole proof (``--generator none``); "" when there is no dialect
    whole_proof_sketch: ClassVar[str] = ""
    #: holes are filled by whole-file ``probe``s (no cheap states), not step by step through ``apply``
    fills_by_probes: ClassVar[bool] = False

    def parse_sketch(self, text: str) -> Sketch | SketchError:
        """Parse untrusted model text in this backend's sketch dialect; never raises on the text."""
        from .sketch import SketchError

        return SketchError(f"no sketch format for backend {self.backend!r}")

    def fill_hole(self, template: str, tactic: str) -> str:
        """A stepwise sketch's hole step ``template`` with ``tactic`` in its hole, written so that the
        step fails unless ``tactic`` closes the hole."""
        raise ValueError(f"no stepwise holes for backend {self.backend!r}")

    def hole_candidates(self, claim: str, goals: tuple[str, ...], use_hammer: bool) -> list[str]:
        """The ranked automation tried on a hole whose claim is ``claim`` ("" when the step states
        none) on ``goals``; ``use_hammer``: include hammer-style reconstruction where there is one."""
        return []

    def automation_theorem(self, theorem: Theorem, use_hammer: bool) -> Theorem:
        """``theorem`` with what ``hole_candidates`` need loaded (an import in the header). The final
        check then judges axioms against the original header (``check_audited``). Default: unchanged."""
        return theorem

    def hammer_command(self, timeout: float) -> str | None:
        """The proof-search command placed at a hole of a probe (its own time limit ``timeout``), whose
        suggestions ``probe(..., suggestions_at=line)`` collects; None: there is none."""
        return None


class DataHooks(_Part):
    """The ``bank`` generator's tactics and the proof-step data of ``extract`` (``train``, retrieval)."""

    #: whether ``goal_parts`` can split this backend's goal text (the retrieval generator needs it)
    splits_goals: ClassVar[bool] = False

    def tactic_bank(self) -> Bank:
        """This prover's automation tactics for ``generators.bank.BankGenerator`` (``backends.bank``):
        entries with prior weights, the goal features they need, the prover's per-tactic timeout."""
        raise ConfigError(f"no tactic bank for backend {self.backend!r}")

    def reads_steps_of(self, backend: str) -> bool:
        """Whether proof-step data extracted with ``backend`` is data for this backend."""
        return backend == self.backend

    def step_goal_text(self, record: Mapping[str, Any]) -> str:
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

    def tactic_key(self, tactic: str) -> str:
        """What two tactics have in common when they are the same step (mixing de-duplicates by it).
        Default: the text with white space normalised."""
        return " ".join(tactic.split())

    def step_tactic_text(self, tactic: str) -> str:
        """An extracted ``tactic`` as this backend's generators write it. Default: unchanged."""
        return tactic

    def goal_parts(self, goal_text: str) -> tuple[list[str], str]:
        """The first goal of ``goal_text`` as (hypotheses, conclusion)."""
        raise NotImplementedError(f"backend {self.backend!r} cannot split its goals into hypotheses")


class ProverSetup(_Part):
    """The process policy and what is installed: asked before a session starts, recorded beside a run."""

    #: the command-line flag that sets ``ProverConfig.executable`` for this backend (``--lean-repl``),
    #: None: the backend takes none
    executable_flag: ClassVar[str | None] = None

    def default_config(self) -> ProverConfig:
        """The process policy of this backend when no flag says otherwise (its one time policy: tactic,
        start and check timeouts): what ``prove`` and ``autoformalize`` start from, so that
        ``config.json["prover"]`` is the policy that runs. Default: ``ProverConfig()``."""
        return ProverConfig()

    def preflight(self, config: ProverConfig) -> None:
        """Cheap checks that the prover can be found, before any worker, model or Ray starts; raises
        ``ProverUnavailable`` saying how to install it. Default: nothing to check up front."""
        return None

    def effective_settings(self, config: ProverConfig) -> dict[str, object]:
        """The process policy this backend actually runs with for ``config``, as plain data (for
        ``config.json["prover_settings"]``). Default: ``config`` itself; a backend that derives its own
        settings from it (Lean 4: larger memory and start limits for a Mathlib REPL) reports those."""
        return dataclasses.asdict(config)

    def sandbox_description(self, config: ProverConfig) -> dict[str, object]:
        """What this backend's prover processes run under, for ``config.json["sandbox"]`` (probes the
        OS). Default: ``sandbox_for(config)``; a backend that must relax it says so by overriding."""
        from .sandbox import sandbox_for

        return sandbox_for(config).describe()

    def hammer_installed(self) -> bool | None:
        """Whether this prover's hammer (tactics that hole filling may add: ``autoformalize --hammer``)
        is installed here; None: the prover has no such hammer. Default None."""
        return None
