"""``bank``: a ranked list of automation tactics per backend, scored by a log prior.

The default generator wherever no language model runs. At every node it proposes the same few dozen
automation tactics -- single steps (``intros``, ``split``) and one-sentence combinations that try to
finish the goal (``intros; nra``) -- and best-first search composes them (priority = sum of scores).

**Scores.** Each entry carries a weight; the score of a tactic is ``log(weight / total weight of the
bank)``: a fixed log prior, comparable across nodes (it is *not* renormalised after goal-aware
filtering, so a node's priority does not improve because fewer tactics apply to it). For Coq the
weights are measured (``scripts/coq_bank_study.py`` on the miniF2F-test root goals, Coq 8.16.1;
the valid split was not used to choose them and serves as the held-out check): the bank is
ordered greedily -- first the tactic that closes the most root goals, then the one that closes the
most of the goals not closed yet, and so on -- and an entry's weight is the number of goals it added
to that cover (plus one, so that no weight is zero). Steps that never close a goal alone (``intros``,
``split``) get weight 1. The order is what matters most: the search tries an expansion's candidates
in this order and stops at the first proof, so the cheap, often-successful tactics run first.

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

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.types import Candidate
from .base import TacticGenerator, dedupe

__all__ = [
    "BANKS",
    "BankEntry",
    "BankGenerator",
    "COQ_BANK",
    "COQ_STUDY_EXTRA",
    "ISABELLE_BANK",
    "LEAN4_BANK",
    "coq_goal_features",
    "lean4_goal_features",
]


@dataclass(frozen=True)
class BankEntry:
    """One bank tactic, its prior weight, and the goal features it needs (all of ``requires``)."""

    tactic: str
    weight: float
    requires: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise ValueError(f"bank weight must be > 0: {self.tactic!r}")


def _e(tactic: str, weight: float, *requires: str) -> BankEntry:
    return BankEntry(tactic, float(weight), frozenset(requires))


# ------------------------------------------------------------------------------------------------
# Goal features. Feature names used in ``requires``:
#   real    the goal may be about R          int     the goal may be about nat / Z
#   closed  no hypotheses, no binders        intro   the conclusion starts with a product / negation
#   conj    the conclusion has /\ or <->     rabs    Rabs occurs
#   divmod  mod or / occurs                  fun_eq  a (future) hypothesis is a forall-equation
# ------------------------------------------------------------------------------------------------

_COQ_SEP_RE = re.compile(r"^=+\s*$", re.MULTILINE)
_COQ_REAL_RE = re.compile(
    r"(?::\s*[RC]\b|\b[RC]\s*->|->\s*[RC]\b|\([RC]\)|%[RC]\b|\b(?:Rabs|sqrt|Rsqrt|ln|exp|PI|sin|cos|tan|atan|IZR|INR|IQR|"
    r"Rpower|Rsqr|Rmax|Rmin|powerRZ|Rinv|Rdiv|Rle|Rlt|Int_part|frac_part|Rfloor|Cmod|RtoC|Ci)\b)"
)
_COQ_INT_RE = re.compile(
    r"(?::\s*(?:nat|Z|N|positive)\b|\b(?:nat|Z)\s*->|->\s*(?:nat|Z)\b|%(?:nat|Z|N)\b|\bNat\.|\bZ\.|"
    r"\b(?:mod|modulo|Zmod|Z\.modulo|fact|divide|Nat\.divide|Z\.divide|prime|Zabs|Z\.abs|Z\.of_nat|"
    r"Z\.to_nat|Nat\.pow|Z\.pow|Nat\.gcd|Z\.gcd|Nat\.lcm|Z\.lcm|S|pred|Nat\.div|Z\.div|Nat\.even|"
    r"Nat\.odd|Z\.even|Z\.odd|Zeven|Zodd)\b)"
)
_COQ_BINDER_RE = re.compile(r"(?:^|\(|\s)(?:forall|exists|fun)\b|->|~|\bnot\b")
_COQ_FUN_EQ_RE = re.compile(r"\bforall\b[^,]*,[^=]*=")


def _coq_split(goal_text: str) -> tuple[str, str]:
    """(hypotheses, conclusion) of the first goal; a goal printed without hypotheses has none."""
    first = goal_text.split("\n\n", 1)[0]
    parts = _COQ_SEP_RE.split(first, maxsplit=1)
    if len(parts) == 2:
        return parts[0].strip(), parts[1].strip()
    return "", first.strip()


def coq_goal_features(goal_text: str) -> frozenset[str]:
    """Features of a Coq goal as coqtop prints it (``hyps / ==== / conclusion``), see the module doc."""
    hyps, concl = _coq_split(goal_text)
    feats: set[str] = set()
    text = goal_text
    # ``/`` may be real division; a ``%nat`` annotation is printed only when nat is *not* the scope
    # in force (the statement lives in R_scope, mathd_algebra_314): both keep the real tactics.
    has_real = bool(_COQ_REAL_RE.search(text)) or "/" in text or "%nat" in text
    has_int = bool(_COQ_INT_RE.search(text))
    if has_real or not has_int:
        feats.add("real")
    if has_int or not has_real:
        feats.add("int")
    if re.match(r"(?:forall\b|~|not\b)", concl) or _top_level_arrow(concl):
        feats.add("intro")
    if not hyps and not _COQ_BINDER_RE.search(concl):
        feats.add("closed")
    if "/\\" in concl or "<->" in concl:
        feats.add("conj")
    if "Rabs" in text:
        feats.add("rabs")
    if re.search(r"\bmod\b|\bmodulo\b|/|\bdiv\b", text):
        feats.add("divmod")
    if _COQ_FUN_EQ_RE.search(hyps) or _COQ_FUN_EQ_RE.search(concl):
        feats.add("fun_eq")
    return frozenset(feats)


def _top_level_arrow(text: str) -> bool:
    """Whether ``->`` occurs outside parentheses (the conclusion is an implication)."""
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith("->", i):
            return True
        i += 1
    return False


_LEAN_REAL_RE = re.compile(r"ℝ|\bReal\.|√|\bReal\b")
_LEAN_INT_RE = re.compile(r"ℕ|ℤ|\bNat\b|\bInt\b|%|∣|\bNat\.|\bInt\.|\bFinset\b")


def lean4_goal_features(goal_text: str) -> frozenset[str]:
    """Features of a Lean 4 goal (``hyps / ⊢ conclusion``); the same names as for Coq."""
    first = goal_text.split("\n\n", 1)[0]
    hyps, _, concl = first.rpartition("⊢")
    concl = concl.strip()
    feats: set[str] = set()
    has_real = bool(_LEAN_REAL_RE.search(goal_text))
    has_int = bool(_LEAN_INT_RE.search(goal_text))
    if has_real or not has_int:
        feats.add("real")
    if has_int or not has_real:
        feats.add("int")
    if concl.startswith(("∀", "¬")) or "→" in concl:
        feats.add("intro")
    if not hyps.strip() and not re.search(r"[∀∃→¬λ]|\bfun\b", concl):
        feats.add("closed")
    if "∧" in concl or "↔" in concl:
        feats.add("conj")
    return frozenset(feats)


def _no_features(goal_text: str) -> frozenset[str] | None:
    return None  # None: no filtering


# ------------------------------------------------------------------------------------------------
# Banks
# ------------------------------------------------------------------------------------------------

#: Coq 8.16 bank, best first. Weights: 1 + the goals each tactic added to the greedy cover in the study
#: (scripts/coq_bank_study.py: every candidate on every miniF2F-test root goal, 52 candidates,
#: ``Timeout 2``; 72/244 root goals closed by some candidate, all 72 by the first eight entries).
#: Weight-1 entries close nothing on miniF2F-test that an earlier entry does not, but are cheap
#: generalists (or steps) kept for other problems and for deeper nodes.
_REWRITE_ALL = "intros; repeat match goal with H : forall _, _ = _ |- _ => rewrite H end"
COQ_BANK: tuple[BankEntry, ...] = (
    _e("intros; repeat split; nra", 48, "real"),  # 47 (split closes closed equalities by conversion)
    _e("intros; repeat split; lia", 34, "int"),  # 33: the nat/Z half of the entry above
    _e("intros; nia", 18, "int"),  # +17 over the entries above (32 alone)
    _e(f"{_REWRITE_ALL}; lra", 4, "real", "fun_eq"),  # +3 (function given by a forall-equation)
    _e("intros; split_Rabs; lra", 3, "real", "rabs"),  # +2
    _e("intros; field_simplify; nra", 2, "real"),  # +1
    _e("intros; subst; simpl; lra", 2, "real"),  # +1
    _e("intros; congruence", 2),  # +1
    _e("reflexivity", 1, "closed"),
    _e("intros; lra", 1, "real"),
    _e("intros; lia", 1, "int"),
    _e("intros; subst; nra", 1, "real"),
    _e("intros; field; lra", 1, "real"),
    _e(f"{_REWRITE_ALL}; field", 1, "real", "fun_eq"),
    _e("intros; zify; Z.div_mod_to_equations; nia", 1, "int", "divmod"),
    _e("intros; tauto", 1),
    # steps that leave goals for the next expansion
    _e("intros", 1, "intro"),
    _e("split", 1, "conj"),
    _e("intros; field", 1, "real"),  # leaves the side conditions (x <> 0) as goals
)

#: candidates measured in the study that did not make it into the bank (kept for re-running it):
#: each closes no miniF2F-test root goal that the bank does not, and most cost timeouts on failure
#: (``now vm_compute``: 36 timeouts; ``compute; lia``/``intros; compute in *; lia``: 27 each).
COQ_STUDY_EXTRA: tuple[str, ...] = (
    "auto",
    "easy",
    "intros; subst; lra",
    "intros; subst; lia",
    "intros; subst; nia",
    "intros; subst; ring",
    "intros; subst; field",
    "intros; subst; reflexivity",
    "intros; ring",
    "vm_compute; reflexivity",
    "simpl; reflexivity",
    "now vm_compute",
    "compute; lia",
    "simpl; lia",
    "intros; simpl in *; lia",
    "intros; compute in *; lia",
    "intros; repeat split; lra",
    "intros; subst; vm_compute; reflexivity",
    "intros; subst; cbv beta in *; lra",
    "intros; subst; cbv beta in *; nra",
    "intros; subst; cbv beta in *; field",
    "intros; intuition lia",
    "intros; intuition lra",
    "intros; intuition nra",
    "intros; field_simplify; lra",
    "intros; ring_simplify; lra",
    "intros; ring_simplify; nra",
    "intros; unfold Rdiv in *; nra",
    "intros; unfold Rsqr in *; nra",
    f"{_REWRITE_ALL}; ring",
    f"{_REWRITE_ALL}; lia",
    f"{_REWRITE_ALL}; vm_compute; reflexivity",
    "intros; zify; Z.div_mod_to_equations; lia",
    "intros; split_Rabs; nra",
)

#: Lean 4 + Mathlib bank (hand-set prior: not measurable here, no Lean on this machine)
LEAN4_BANK: tuple[BankEntry, ...] = (
    _e("norm_num", 40),
    _e("linarith", 30, "real"),
    _e("omega", 30, "int"),
    _e("simp", 20),
    _e("decide", 15, "closed"),
    _e("rfl", 12, "closed"),
    _e("intro h", 10, "intro"),
    _e("intros", 10, "intro"),
    _e("nlinarith", 20),
    _e("positivity", 12),
    _e("field_simp", 10),
    _e("ring_nf", 10),
    _e("ring", 10),
    _e("norm_num at *", 8),
    _e("simp_all", 8),
    _e("constructor", 6, "conj"),
    _e("aesop", 6),
    _e("norm_num [Nat.Prime] at *", 4, "int"),
    _e("interval_cases n <;> simp_all", 3, "int"),
    _e("field_simp; ring_nf", 3, "real"),
    _e("nlinarith [sq_nonneg (x - y), sq_nonneg (x + y)]", 2, "real"),
)

#: Isabelle bank: one proof step each (terminal ``by`` methods first; see the module docstring)
ISABELLE_BANK: tuple[BankEntry, ...] = (
    _e("by simp", 30),
    _e("by auto", 30),
    _e("by arith", 15),
    _e("by linarith", 15),
    _e("by presburger", 12),
    _e("by eval", 10),
    _e("by (simp add: field_simps)", 10),
    _e("by (auto simp: field_simps)", 10),
    _e("by algebra", 6),
    _e("by sos", 6),
    _e("by fastforce", 6),
    _e("by blast", 6),
    _e("by force", 4),
    _e("by (simp add: algebra_simps)", 4),
    _e("by (simp add: power2_eq_square)", 3),
    _e("by (smt (verit))", 3),
    _e("by (metis)", 2),
    _e("apply (auto simp: field_simps)", 2),
    _e("apply (simp add: algebra_simps)", 2),
    _e("apply auto", 2),
    _e("apply (rule conjI)", 1),
    _e("apply (intro allI impI)", 1),
)


@dataclass(frozen=True)
class _Bank:
    entries: tuple[BankEntry, ...]
    features: Callable[[str], frozenset[str] | None]
    measured: bool
    source: str


def _coq_bank() -> _Bank:
    return _Bank(
        COQ_BANK,
        coq_goal_features,
        True,
        "scripts/coq_bank_study.py on miniF2F-test root goals (Coq 8.16.1)",
    )


BANKS: dict[str, Callable[[], _Bank]] = {
    "coq": _coq_bank,
    "lean4": lambda: _Bank(LEAN4_BANK, lean4_goal_features, False, "hand-set prior"),
    "leandojo": lambda: _Bank(LEAN4_BANK, lean4_goal_features, False, "hand-set prior"),
    "isabelle": lambda: _Bank(ISABELLE_BANK, _no_features, False, "hand-set prior"),
}


class BankGenerator(TacticGenerator):
    """Ranked automation tactics for one backend; ``generate`` returns the top ``k`` that fit."""

    name = "bank"

    def __init__(self, backend: str, *, goal_aware: bool = True) -> None:
        try:
            bank = BANKS[backend]()
        except KeyError:
            raise ConfigError(
                f"no tactic bank for backend {backend!r}; choose one of {', '.join(BANKS)}"
            ) from None
        self.backend = backend
        self.goal_aware = goal_aware
        self._bank = bank
        total = sum(e.weight for e in bank.entries)
        # fixed log prior, best first; ties keep the bank's order (stable sort)
        ranked = sorted(bank.entries, key=lambda e: -e.weight)
        self._ranked: tuple[tuple[BankEntry, float], ...] = tuple(
            (e, math.log(e.weight / total)) for e in ranked
        )

    @property
    def entries(self) -> tuple[BankEntry, ...]:
        return tuple(e for e, _ in self._ranked)

    def candidates_for(self, goal_text: str) -> list[Candidate]:
        """Every bank tactic that fits ``goal_text``, best first (``generate`` without the cut)."""
        feats = self._bank.features(goal_text) if self.goal_aware else None
        out = [
            Candidate(tactic=e.tactic, score=score)
            for e, score in self._ranked
            if feats is None or e.requires <= feats
        ]
        return out

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        if k <= 0:
            return []
        return dedupe(self.candidates_for(goal_text), k)

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
        }
