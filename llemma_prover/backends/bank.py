"""Tactic banks: the data model of ``generators.bank`` (each backend's bank lives in its package).

A bank is prover-language knowledge -- which automation tactics exist, the goal features they need,
how the prover spells a per-tactic timeout -- so each backend provides its own through
``DataHooks.tactic_bank()`` (``backends/coq/bank.py``, ``backends/lean4/bank.py``,
``backends/isabelle/bank.py``); ``generators.bank.BankGenerator`` ranks and filters any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Bank", "BankEntry", "entry", "no_features"]


@dataclass(frozen=True)
class BankEntry:
    """One bank tactic, its prior weight, and the goal features it needs (all of ``requires``).

    ``cost``: its class in the schedule (``core.config.BANK_SCHEDULE``: which search stage runs it, and
    its Coq timeout); ``family``: the component it belongs to (what ``bank_families`` switches on/off).
    """

    tactic: str
    weight: float
    requires: frozenset[str] = frozenset()
    cost: str = "cheap"
    family: str = "closers"

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise ValueError(f"bank weight must be > 0: {self.tactic!r}")


def entry(
    tactic: str, weight: float, *requires: str, cost: str = "cheap", family: str = "closers"
) -> BankEntry:
    """A ``BankEntry`` written compactly (``requires`` as positional feature names)."""
    return BankEntry(tactic, float(weight), frozenset(requires), cost, family)


# ------------------------------------------------------------------------------------------------
# Goal features. Feature names used in ``requires``:
#   real    the goal may be about R          int     the goal may be about nat / Z
#   closed  no hypotheses, no binders        intro   the conclusion starts with a product / negation
#   conj    the conclusion has /\ or <->     rabs    Rabs occurs
#   divmod  mod or / occurs                  fun_eq  a (future) hypothesis is a forall-equation
#   complex Coquelicot's C occurs
# ------------------------------------------------------------------------------------------------


def no_features(goal_text: str) -> frozenset[str] | None:
    return None  # None: no filtering


@dataclass(frozen=True)
class Bank:
    """A backend's tactic bank: what ``generators.bank.BankGenerator`` ranks and filters for it
    (``DataHooks.tactic_bank()``)."""

    entries: tuple[BankEntry, ...]
    features: Callable[[str], frozenset[str] | None]
    measured: bool
    source: str
    #: goal-derived candidates: (goal text, families or None for all) -> entries
    dynamic: Callable[[str, frozenset[str] | None], list[BankEntry]] | None = None
    #: (tactic, seconds) -> the tactic under the prover's own timeout; None: the prover has none
    #: we use (the schedule's stages still apply, its timeouts do not)
    with_timeout: Callable[[str, float], str] | None = None
    #: which automation the prover has installed (for config.json), None: not known
    automation: Callable[[], dict[str, bool]] | None = None
    #: a goal that starts with a binder gets only the step ``intros`` (the bank's closers all begin
    #: with ``intros;``, so trying them there and again below the step would run each twice)
    intro_first: bool = False
