"""Typed values shared by every layer: theorems, prover step outcomes, generator candidates.

Nothing here imports a heavy library; everything is a frozen dataclass or an enum so that values
can cross process boundaries (Ray) and be serialised to JSON without surprises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union

#: Problem families used in summaries, in display order; anything else is "other".
FAMILIES: tuple[str, ...] = (
    "mathd_algebra",
    "mathd_numbertheory",
    "amc12",
    "aime",
    "imo",
    "induction",
    "algebra",
    "numbertheory",
)


def family_of(name: str) -> str:
    """The miniF2F problem family of a theorem name (``amc12a_2019_p21`` -> ``amc12``)."""
    for fam in FAMILIES:
        if name.startswith(fam):
            return fam
    return "other"


@dataclass(frozen=True)
class Theorem:
    """One benchmark problem for one formal system.

    ``header`` is everything before the statement (imports, scopes, auxiliary definitions);
    ``statement`` is the statement text as the data file gives it (conventions per backend).
    """

    name: str
    split: str
    system: str
    header: str
    statement: str
    informal_statement: str = ""
    informal_proof: str = ""
    source: str = ""
    #: text after the proof (e.g. ``End S.`` closing a ``Section`` the header opened); "" for miniF2F
    footer: str = ""

    @property
    def family(self) -> str:
        return family_of(self.name)


# --------------------------------------------------------------------------------------------
# Prover step outcomes: exactly one of these comes back from ``ProverBackend.apply``.
# A bad tactic is a value; a broken prover process is a ``ProverError`` exception instead.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advanced:
    """The tactic ran and left goals: ``state_id`` is a new persistent state."""

    state_id: int
    goals: tuple[str, ...]
    elapsed: float

    @property
    def goal_text(self) -> str:
        return "\n\n".join(self.goals)


@dataclass(frozen=True)
class ProofFinished:
    """The tactic closed every goal (the backend's own notion; re-checked independently later)."""

    state_id: int
    elapsed: float


@dataclass(frozen=True)
class TacticError:
    """The prover rejected the tactic (or our filter did, before it reached the prover)."""

    message: str
    elapsed: float
    #: True when the tactic was refused by our own validation and never reached the prover.
    rejected: bool = False


@dataclass(frozen=True)
class TacticTimeout:
    """The tactic did not finish within ``timeout`` seconds; the process was replaced."""

    timeout: float
    elapsed: float


StepResult = Union[Advanced, ProofFinished, TacticError, TacticTimeout]  # noqa: UP007 - runtime alias, py3.10+


@dataclass(frozen=True)
class RootState:
    """The state a theorem starts in."""

    state_id: int
    goals: tuple[str, ...]
    elapsed: float

    @property
    def goal_text(self) -> str:
        return "\n\n".join(self.goals)


@dataclass(frozen=True)
class CheckResult:
    """Outcome of the independent, from-scratch re-check of a whole proof."""

    ok: bool
    checker: str
    elapsed: float
    message: str = ""
    #: axioms the proof depends on, as the checker reports them
    axioms: tuple[str, ...] = ()
    #: axioms that were not allowed (non-empty means rejected)
    bad_axioms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """One tactic proposed by a generator, with its score (mean token log-prob, or a prior).

    ``stage``: when best-first search tries it (0 = on the node's first expansion; stage ``s`` = on
    the node's ``s``-th deferred expansion, whose priority is lowered by ``s * stage_penalty``, see
    ``SearchConfig``). Generators without a cost schedule leave it 0.
    """

    tactic: str
    score: float
    stage: int = 0


class Status(str, enum.Enum):
    """Final status of one theorem in a run."""

    PROVED = "proved"
    FAILED = "failed"
    ERROR = "error"


class Reason(str, enum.Enum):
    """Why the search (or the attempt) ended; separate from ``Status``."""

    PROVED = "proved"
    SEARCH_EXHAUSTED = "search_exhausted"
    EXPANSION_BUDGET = "expansion_budget"
    TIME_BUDGET = "time_budget"
    PROVER_CRASH = "prover_crash"
    WORKER_CRASH = "worker_crash"
    CHECK_FAILED = "check_failed"
    START_FAILED = "start_failed"


class EdgeOutcome(str, enum.Enum):
    """What one tactic attempt did: the ``outcome`` of a search-tree edge (trace files, docs/FORMATS.md).
    Shared by the search (``search/tree.py``) and the trace readers (``traces/model.py``)."""

    #: a new (or better-reached) state
    ADVANCED = "advanced"
    #: the proof is finished
    PROVED = "proved"
    #: a state the search already has (a transposition)
    DUPLICATE = "duplicate"
    #: the prover rejected the tactic
    ERROR = "error"
    TIMEOUT = "timeout"
    #: refused before it reached the prover (not a single tactic, forbidden command, ...)
    REJECTED = "rejected"
    #: the prover process broke while running it
    PROVER_ERROR = "prover_error"


#: edge outcomes that create a state (tree edges)
TREE_OUTCOMES: frozenset[EdgeOutcome] = frozenset({EdgeOutcome.ADVANCED, EdgeOutcome.PROVED})
#: edge outcomes of a failed attempt (edge to an error leaf)
ERROR_OUTCOMES: frozenset[EdgeOutcome] = frozenset(
    {EdgeOutcome.ERROR, EdgeOutcome.TIMEOUT, EdgeOutcome.REJECTED, EdgeOutcome.PROVER_ERROR}
)


@dataclass(frozen=True)
class TimeSplit:
    """Seconds spent, by who spent them."""

    total: float = 0.0
    model: float = 0.0
    prover: float = 0.0
    check: float = 0.0


@dataclass(frozen=True)
class SearchOutcome:
    """What a search returns (the trace graph travels separately as node-link JSON)."""

    reason: Reason
    proof: tuple[str, ...] | None
    expansions: int
    nodes: int
    time: TimeSplit
    restarts: int = 0
    error: str = ""
    extra: dict[str, object] = field(default_factory=dict)
