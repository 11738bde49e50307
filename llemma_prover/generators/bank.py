"""``bank``: a ranked list of automation tactics per backend, scored by a log prior.

The banks themselves are prover-language data, each in its backend's package (``backends/coq/bank.py``,
``backends/lean4/bank.py``, ``backends/isabelle/bank.py``), asked for through
``DataHooks.tactic_bank()``; this module ranks, filters and schedules any of them.

The default generator wherever no language model runs. At every node it proposes automation tactics
-- single steps (``intros``, ``split``, case splits) and one-sentence combinations that try to finish
the goal (``intros; nra``) -- and best-first search composes them (priority = sum of scores).

**Scores.** Each entry carries a weight; the score of a tactic is ``log(weight / total weight of the
bank)``: a fixed log prior, comparable across nodes (it is *not* renormalised after goal-aware
filtering, so a node's priority does not improve because fewer tactics apply to it). For Coq the
weights are measured on **minif2f-valid only** (``scripts/coq_bank_study.py``: every closing
candidate of ``COQ_POOL`` on every valid root goal, Coq 8.16.1, ``timeout 2``); the bank is the
greedy cover -- first the tactic that closes the most root goals, then the one that closes the most
of the goals not closed yet, and so on -- and an entry's weight is 1 + the goals it added to that
cover. The result is committed as ``backends/coq/bank_priors.json`` (with the command that wrote it); the
test split is never read by the study. Steps that never close a goal alone (``intros``, ``split``)
are always in the bank, with weight 1.

**Structure** (Coq, ``COQ_DYNAMIC``): candidates built from the goal's hypotheses and conclusion --
split an iff, pick a side of a disjunction, destruct conjunctions/existentials/disjunctions in
hypotheses, ``subst``, ``field_simplify in H``, case-split a nat variable bounded by a literal
(``destruct n as [|[|n]]``), ``split_Rabs``, induction on a nat variable no hypothesis mentions,
``nra``/``nia`` with square hints of the variables' differences. Each family can be switched off
(``families``, ``--bank-families``) for the ablation in ``docs/bank.md``.

**Cost schedule.** Each entry has a cost class (``step``, ``cheap``, ``medium``, ``expensive``);
``core.config.BANK_SCHEDULE`` maps a class to a search stage and a Coq timeout, sent as
``timeout N (tactic)``. With the search's stage penalty, every cheap tactic of the whole tree runs
before any expensive one (psatz, CoqHammer's ``sauto``/``hauto``) anywhere. The classes of
``core.config.BANK_ONCE`` (``expensive``) are proposed **at most once per theorem**: at the first node
(since ``start_theorem``) where they fit, not again below it (``once``; ``describe()`` says which).

**Goal-aware filtering** (Coq and Lean 4; documented in ``coq_goal_features``). A tactic is dropped
only when the goal text shows it cannot apply; when in doubt it is kept:

* arithmetic domain: ``lra``/``nra``/``field``/``split_Rabs`` entries need a goal that may be about
  the reals; ``lia``/``nia``/``zify`` entries one that may be about ``nat``/``Z``. Coq does not print
  the scope of numerals, so the real tactics are dropped only when the goal shows ``nat``/``Z`` and
  nothing that may be real (no real type or function, no ``/``, no ``%nat`` -- which Coq prints
  only outside nat_scope). A goal that shows neither domain keeps both;
* evaluation (``reflexivity``, ``vm_compute; reflexivity``, ``now vm_compute``, ``compute; lia``)
  only for *closed* goals: no hypotheses and no binder in the conclusion (on an open goal these
  cannot close anything and ``vm_compute`` may unfold huge terms until the timeout);
* the step ``intros`` only when the conclusion starts with ``forall``/``->``/``~`` (otherwise it
  is a no-op that would create a duplicate node); ``split`` entries only for ``/\\``/``<->`` goals;
  on Coq such a goal gets *only* ``intros`` (``intro_first``): the closers all begin with
  ``intros;``, so offering them there would run each twice, above and below the step;
* ``rewrite`` with universally quantified hypotheses only when such a hypothesis exists (or will,
  after ``intros``); ``split_Rabs`` only when ``Rabs`` occurs; ``zify; Z.div_mod_to_equations``
  only when ``mod``/``/`` occurs.

The Lean 4 and Isabelle banks cannot be measured here (neither prover runs on this machine): their
weights are a hand-set prior from the miniF2F literature (which automation closes most problems)
and are marked as such in ``describe()``.

**Isabelle assumption.** The Isabelle backend checks ``steps + new step`` as the proof of the
theorem, so an entry is one proof step: a terminal ``by METHOD`` (closes the goal) or an
``apply METHOD`` step that leaves subgoals for the next step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from ..backends.bank import Bank, BankEntry
from ..backends.base import data_hooks
from ..core.config import BANK_ONCE, BANK_SCHEDULE
from ..core.errors import ConfigError
from ..core.types import Candidate, Theorem
from .base import TacticGenerator, dedupe

__all__ = ["BankEntry", "BankGenerator", "FAMILIES"]


#: every component name ``families`` may list (the static families and the goal-derived ones)
FAMILIES: tuple[str, ...] = (
    "closers", "rewrite", "complex", "denominators", "psatz", "hammer", "structure", "cases", "induction",
    "hints",
)


class BankGenerator(TacticGenerator):
    """Ranked automation tactics for one backend; ``generate`` returns the top ``k`` that fit.

    ``families``: the components in use (None or empty: all; see ``FAMILIES``). ``schedule``: cost
    class -> (stage, Coq timeout), default ``core.config.BANK_SCHEDULE``; a class missing from it
    runs at stage 0 without a timeout of its own. A tactic with a timeout is sent as
    ``timeout N (tactic)``. ``entries`` replaces the backend's static bank (e.g. ``COQ_POOL``);
    ``intro_first`` overrides the bank's rule for goals that start with a binder (see ``backends.bank.Bank``).
    """

    name = "bank"

    def __init__(
        self,
        backend: str,
        *,
        goal_aware: bool = True,
        families: Sequence[str] | None = None,
        schedule: dict[str, tuple[int, int]] | None = None,
        entries: Sequence[BankEntry] | None = None,
        intro_first: bool | None = None,
        once: Sequence[str] = BANK_ONCE,
    ) -> None:
        bank: Bank = data_hooks(backend).tactic_bank()
        if entries is not None:  # another static list (the study, tests); features and families stay
            bank = dataclasses.replace(bank, entries=tuple(entries))
        if intro_first is not None:
            bank = dataclasses.replace(bank, intro_first=intro_first)
        unknown = sorted(set(families or ()) - set(FAMILIES))
        if unknown:
            raise ConfigError(
                f"unknown bank families {', '.join(unknown)}; choose from {', '.join(FAMILIES)}"
            )
        self.backend = backend
        self.goal_aware = goal_aware
        self.families: frozenset[str] | None = frozenset(families) if families else None
        self.schedule = dict(BANK_SCHEDULE if schedule is None else schedule)
        #: cost classes proposed at most once per theorem, and the tactics of them proposed so far
        self.once = frozenset(once)
        self._once_tactics: set[str] = set()
        self._proposed: set[str] = set()
        self._bank = bank
        entries = [e for e in bank.entries if self._on(e)]
        self._total = sum(e.weight for e in bank.entries)
        # fixed log prior, best first; ties keep the bank's order (stable sort)
        ranked = sorted(entries, key=lambda e: -e.weight)
        self._ranked: tuple[tuple[BankEntry, float], ...] = tuple(
            (e, math.log(e.weight / self._total)) for e in ranked
        )

    def _on(self, entry: BankEntry) -> bool:
        return self.families is None or entry.family in self.families

    @property
    def entries(self) -> tuple[BankEntry, ...]:
        return tuple(e for e, _ in self._ranked)

    def _candidate(self, entry: BankEntry, score: float) -> Candidate:
        stage, timeout = self.schedule.get(entry.cost, (0, 0.0))
        wrap = self._bank.with_timeout
        tactic = wrap(entry.tactic, timeout) if wrap is not None and timeout > 0 else entry.tactic
        if entry.cost in self.once:
            self._once_tactics.add(tactic)
        return Candidate(tactic=tactic, score=score, stage=int(stage))

    def candidates_for(self, goal_text: str) -> list[Candidate]:
        """Every bank tactic that fits ``goal_text``, best first (``generate`` without the cut):
        the static bank filtered by the goal's features, then the goal-derived candidates."""
        feats = self._bank.features(goal_text) if self.goal_aware else None
        if self._bank.intro_first and feats is not None and "intro" in feats:
            # every closer starts with ``intros``: run them once, after the step, not before and after
            step = [(e, sc) for e, sc in self._ranked if e.tactic == "intros" and e.requires <= feats]
            if step:
                return [self._candidate(e, sc) for e, sc in step]
        out = [
            self._candidate(e, score)
            for e, score in self._ranked
            if feats is None or e.requires <= feats
        ]
        if self._bank.dynamic is not None and self.goal_aware:
            for e in self._bank.dynamic(goal_text, self.families):
                out.append(self._candidate(e, math.log(e.weight / self._total)))
        return out

    def start_theorem(self, theorem: Theorem) -> None:
        self._proposed.clear()

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        if k <= 0:
            return []
        out = dedupe(self.candidates_for(goal_text), k)
        if not self.once:
            return out
        kept = [c for c in out if c.tactic not in self._proposed]
        self._proposed.update(c.tactic for c in kept if c.tactic in self._once_tactics)
        return kept

    def family_of(self, goal_text: str, tactic: str) -> str | None:
        """The family of the candidate ``tactic`` proposed for ``goal_text`` (None: not proposed)."""
        key = " ".join(tactic.split())
        entries = [e for e, _ in self._ranked]
        if self._bank.dynamic is not None and self.goal_aware:
            entries += self._bank.dynamic(goal_text, self.families)
        for e in entries:
            if " ".join(self._candidate(e, 0.0).tactic.split()) == key:
                return e.family
        return None

    def generate_batch(self, goal_texts: Sequence[str], k: int) -> list[list[Candidate]]:
        return [self.generate(g, k) for g in goal_texts]

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "backend": self.backend,
            "tactics": len(self._ranked),
            "goal_aware": self.goal_aware,
            "prior": self._bank.source,
            "measured": self._bank.measured,
            "families": sorted(self.families) if self.families else list(FAMILIES),
            "schedule": {k: list(v) for k, v in self.schedule.items()},
            "once_per_theorem": sorted(self.once),
            "automation": self._bank.automation() if self._bank.automation is not None else None,
        }
