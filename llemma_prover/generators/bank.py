"""``bank``: a ranked list of automation tactics per backend, scored by a log prior.

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
cover. The result is committed as ``coq_bank_priors.json`` (with the command that wrote it); the
test split is never read by the study. Steps that never close a goal alone (``intros``, ``split``)
are always in the bank, with weight 1.

**Structure** (Coq, ``COQ_DYNAMIC``): candidates built from the goal's hypotheses and conclusion --
split an iff, pick a side of a disjunction, destruct conjunctions/existentials/disjunctions in
hypotheses, ``subst``, ``field_simplify in H``, case-split a nat variable bounded by a literal
(``destruct n as [|[|n]]``), ``split_Rabs``, induction on a nat variable no hypothesis mentions,
``nra``/``nia`` with square hints of the variables' differences. Each family can be switched off
(``families``, ``--bank-families``) for the ablation in the README.

**Cost schedule.** Each entry has a cost class (``step``, ``cheap``, ``medium``, ``expensive``);
``core.config.BANK_SCHEDULE`` maps a class to a search stage and a Coq timeout, sent as
``timeout N (tactic)``. With the search's stage penalty, every cheap tactic of the whole tree runs
before any expensive one (psatz, CoqHammer's ``sauto``/``hauto``) anywhere.

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
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.config import BANK_SCHEDULE
from ..core.errors import ConfigError
from ..core.types import Candidate
from .base import TacticGenerator, dedupe

__all__ = [
    "BANKS",
    "BankEntry",
    "BankGenerator",
    "COQ_DYNAMIC",
    "COQ_POOL",
    "COQ_STUDY_EXTRA",
    "FAMILIES",
    "CoqGoal",
    "coq_bank_from_priors",
    "coq_dynamic",
    "load_coq_priors",
    "parse_coq_goal",
    "ISABELLE_BANK",
    "LEAN4_BANK",
    "coq_goal_features",
    "lean4_goal_features",
]


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


def _e(tactic: str, weight: float, *requires: str, cost: str = "cheap", family: str = "closers") -> BankEntry:
    return BankEntry(tactic, float(weight), frozenset(requires), cost, family)


# ------------------------------------------------------------------------------------------------
# Goal features. Feature names used in ``requires``:
#   real    the goal may be about R          int     the goal may be about nat / Z
#   closed  no hypotheses, no binders        intro   the conclusion starts with a product / negation
#   conj    the conclusion has /\ or <->     rabs    Rabs occurs
#   divmod  mod or / occurs                  fun_eq  a (future) hypothesis is a forall-equation
#   complex Coquelicot's C occurs
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
_COQ_COMPLEX_RE = re.compile(r":\s*C\b|\bCi\b|\bRtoC\b|%C\b|\bC\s*->")


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
    if _COQ_COMPLEX_RE.search(text):
        feats.add("complex")
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

#: Coq 8.16 candidate pool: every single-sentence tactic the study (``scripts/coq_bank_study.py``)
#: measures on the miniF2F-*valid* root goals. Which of them make the bank, in which order and with
#: which weight, comes out of that study (``coq_bank_priors.json``, see ``_coq_bank``); steps (cost
#: ``step``: they never close a goal alone) are always in. ``requires`` / ``cost`` / ``family`` are
#: design, not measurement: the arithmetic domain a tactic needs, its class in the schedule, and the
#: component it belongs to.
_REWRITE_ALL = "intros; repeat match goal with H : forall _, _ = _ |- _ => rewrite H end"
#: the same everywhere: in the goal and in every hypothesis (``f 7 = 4`` becomes ``a * 7 + b = 4``);
#: the parentheses and the space keep Ltac from reading ``* end`` as part of the clause
_REWRITE_IN = "intros; repeat match goal with H : forall _, _ = _ |- _ => (rewrite H in * ) end"
#: complex numbers (Coquelicot's C = R * R): equal iff both components are, after unfolding
_C_UNFOLD = "unfold Cminus, Cplus, Cmult, Copp, Ci, RtoC in *"
_C_DESTRUCT = "repeat match goal with z : C |- _ => destruct z end"
_C_EQ = f"apply injective_projections; {_C_UNFOLD}"
_C_INJECT = "repeat match goal with H : (_, _) = (_, _) |- _ => injection H; clear H; intros end"
_H = "hammer"
#: clear denominators: a hypothesis ``x <> c`` becomes ``x - c <> 0`` (the form ``field`` needs for a
#: denominator ``x - c``), then the goal and every hypothesis with a ``/`` are multiplied out
#: (``field_simplify_eq``, its side conditions ``d <> 0`` closed from the context); a hypothesis that
#: does not change makes the sentence fail (no loop of identical states)
_NONZERO = (
    "repeat match goal with H : ?x <> ?y |- _ => lazymatch y with 0 => fail | _ => "
    "assert (x - y <> 0) by (intro; apply H; lra); clear H end end"
)
_DENOMS = (
    f"intros; {_NONZERO}; try (field_simplify_eq; try solve [assumption | auto]); "
    "repeat match goal with H : context [Rdiv _ _] |- _ => "
    "let T := type of H in field_simplify_eq in H; try solve [assumption | auto | intro; lra | lra]; "
    "lazymatch type of H with T => fail | _ => idtac end end"
)
COQ_POOL: tuple[BankEntry, ...] = (
    # closers: one sentence that tries to finish the goal
    _e("intros; repeat split; nra", 1, "real"),
    _e("intros; repeat split; lia", 1, "int"),
    _e("intros; nia", 1, "int"),
    _e(f"{_REWRITE_ALL}; lra", 1, "real", "fun_eq"),
    _e("intros; split_Rabs; lra", 1, "real", "rabs"),
    _e("intros; field_simplify; nra", 1, "real"),
    _e("intros; subst; simpl; lra", 1, "real"),
    _e("intros; congruence", 1),
    _e("reflexivity", 1, "closed"),
    _e("intros; lra", 1, "real"),
    _e("intros; lia", 1, "int"),
    _e("intros; subst; nra", 1, "real"),
    _e("intros; field; lra", 1, "real"),
    _e(f"{_REWRITE_ALL}; field", 1, "real", "fun_eq"),
    _e("intros; zify; Z.div_mod_to_equations; nia", 1, "int", "divmod"),
    _e("intros; zify; Z.div_mod_to_equations; lia", 1, "int", "divmod"),
    _e("intros; tauto", 1),
    _e("auto", 1),
    _e("easy", 1),
    _e("intros; subst; lra", 1, "real"),
    _e("intros; subst; lia", 1, "int"),
    _e("intros; subst; nia", 1, "int"),
    _e("intros; subst; field", 1, "real"),
    _e("intros; ring", 1),
    _e("vm_compute; reflexivity", 1, "closed"),
    _e("now vm_compute", 1, "closed"),
    _e("compute; lia", 1, "closed", "int"),
    _e("intros; simpl in *; lia", 1, "int"),
    _e("intros; intuition lia", 1, "int"),
    _e("intros; intuition nra", 1, "real"),
    _e("intros; field_simplify; lra", 1, "real"),
    _e("intros; ring_simplify; nra", 1, "real"),
    _e("intros; unfold Rdiv in *; nra", 1, "real"),
    _e("intros; unfold Rsqr in *; nra", 1, "real"),
    _e(f"{_REWRITE_ALL}; lia", 1, "int", "fun_eq"),
    _e(f"{_REWRITE_ALL}; nra", 1, "real", "fun_eq"),
    _e("intros; split_Rabs; nra", 1, "real", "rabs"),
    _e(f"{_REWRITE_IN}; lra", 1, "real", "fun_eq", family="rewrite"),
    _e(f"{_REWRITE_IN}; nra", 1, "real", "fun_eq", family="rewrite"),
    _e(f"{_REWRITE_IN}; lia", 1, "int", "fun_eq", family="rewrite"),
    _e(f"intros; subst; {_C_EQ}; simpl; lra", 1, "complex", family="complex"),
    _e(f"intros; subst; {_C_EQ}; simpl; ring", 1, "complex", family="complex"),
    _e(f"intros; {_C_DESTRUCT}; {_C_UNFOLD}; simpl in *; {_C_INJECT}; {_C_EQ}; simpl; nra", 1, "complex",
       family="complex"),
    _e(f"{_DENOMS}; nra", 1, "real", family="denominators"),
    # Positivstellensatz certificates by csdp (coinor-csdp): stronger than nra, slower
    _e("intros; psatz R 2", 1, "real", cost="medium", family="psatz"),
    _e("intros; psatz R 3", 1, "real", cost="expensive", family="psatz"),
    _e("intros; psatz Z 2", 1, "int", cost="medium", family="psatz"),
    # CoqHammer's reconstruction tactics (no external prover needed)
    _e("sauto", 1, cost="expensive", family=_H),
    _e("hauto", 1, cost="expensive", family=_H),
    _e("intros; sauto lq: on", 1, cost="expensive", family=_H),
    # steps that leave goals for the next expansion (always in the bank)
    _e("intros", 1, "intro", cost="step"),  # the base: with the closers, never ablated
    _e("split", 1, "conj", cost="step", family="structure"),
    _e("intros; field", 1, "real", cost="step"),  # leaves the side conditions (x <> 0) as goals
)

#: pool tactics kept out of the study's cover by default (none: every pool entry is measured)
COQ_STUDY_EXTRA: tuple[str, ...] = ()


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


# ------------------------------------------------------------------------------------------------
# Coq: candidates built from the goal (hypotheses and conclusion as coqtop prints them)
# ------------------------------------------------------------------------------------------------

_HYP_RE = re.compile(r"^([^\s:,()]+(?:\s*,\s*[^\s:,()]+)*)\s+:\s+(.*)$")
_IDENT_RE = re.compile(r"^[A-Za-z_][\w']*$")
#: nat variables bounded above by a literal this small are case-split (at most this many + 1 cases)
MAX_CASES = 10
#: variables whose squared differences become nra hints (all pairs of the first few reals)
MAX_HINT_VARS = 4


@dataclass(frozen=True)
class CoqGoal:
    """The first goal, parsed: hypotheses as (name, type) and the conclusion."""

    hyps: tuple[tuple[str, str], ...]
    concl: str

    def names_of_type(self, typ: str) -> list[str]:
        return [n for n, t in self.hyps if t == typ]


def parse_coq_goal(goal_text: str) -> CoqGoal:
    """Hypotheses ``a, b : T`` (one per name; continuation lines joined) and the conclusion."""
    hyps_text, concl = _coq_split(goal_text)
    hyps: list[tuple[list[str], str]] = []
    for line in hyps_text.splitlines():
        m = _HYP_RE.match(line.strip())
        if m and all(_IDENT_RE.match(n.strip()) for n in m.group(1).split(",")):
            hyps.append(([n.strip() for n in m.group(1).split(",")], m.group(2).strip()))
        elif hyps:
            hyps[-1] = (hyps[-1][0], f"{hyps[-1][1]} {line.strip()}")
    flat = tuple((n, t) for names, t in hyps for n in names)
    return CoqGoal(flat, " ".join(concl.split()))


def _top_level(text: str, op: str) -> bool:
    """Whether ``op`` occurs in ``text`` outside every bracket."""
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(op, i):
            return True
        i += 1
    return False


def _strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def _structure(goal: CoqGoal) -> list[BankEntry]:
    """Split conjunctions / iff, destruct conjunctions, disjunctions and existentials in hypotheses,
    choose a side of a disjunction, introduce a negation, substitute variable equations."""
    out: list[BankEntry] = []
    concl = _strip_parens(goal.concl)
    if _top_level(concl, "<->"):
        out.append(_e("split; intros", 1, cost="step", family="structure"))
    elif _top_level(concl, "\\/") and not _top_level(concl, "->"):
        out.append(_e("left", 1, cost="step", family="structure"))
        out.append(_e("right", 1, cost="step", family="structure"))
    if _top_level(concl, "<>") and not _top_level(concl, "->"):
        out.append(_e("intro", 1, cost="step", family="structure"))
    hyp_types = [(n, _strip_parens(t)) for n, t in goal.hyps]
    if any(_top_level(t, "/\\") or t.startswith("exists") or _top_level(t, "<->") for _, t in hyp_types):
        out.append(
            _e(
                "repeat match goal with H : _ /\\ _ |- _ => destruct H | H : exists _, _ |- _ => destruct H "
                "| H : _ <-> _ |- _ => destruct H end",
                1,
                cost="step",
                family="structure",
            )
        )
    for name, t in hyp_types:
        if _top_level(t, "\\/") and not _top_level(t, "->") and not t.startswith(("forall", "exists")):
            out.append(_e(f"destruct {name} as [{name} | {name}]", 1, cost="step", family="structure"))
    reals = bool(goal.names_of_type("R"))
    for name, t in hyp_types:
        # clear the denominators of an equation (side conditions x <> 0 become goals of their own)
        if reals and "/" in t and " = " in t and not t.startswith(("forall", "exists")):
            # fails when the hypothesis does not change (Coq 8.16 then only adds side goals: an
            # endless chain of new states that starved every later stage, minif2f-valid traces)
            out.append(
                _e(
                    f"let T := type of {name} in field_simplify in {name}; "
                    f"[lazymatch type of {name} with T => fail | _ => idtac end | ..]",
                    1,
                    cost="step",
                    family="structure",
                )
            )
    variables = {n for n, t in goal.hyps if not _top_level(t, "->") and not t.startswith("forall")}
    for _, t in hyp_types:
        lhs, eq, rhs = t.partition(" = ")
        if eq and (lhs.strip() in variables or rhs.strip() in variables) and " = " not in rhs:
            out.append(_e("subst", 1, cost="step", family="structure"))
            break
    return out


_BOUND_RE = re.compile(r"^(?:\d+\s*<=?\s*)?([A-Za-z_][\w']*)\s*(<=?)\s*(\d+)$")
_BOUND_REV_RE = re.compile(r"^(\d+)\s*(>=?)\s*([A-Za-z_][\w']*)$")


def _nat_bounds(goal: CoqGoal) -> dict[str, int]:
    """nat variables with a literal upper bound in some hypothesis: name -> largest possible value."""
    nats = set(goal.names_of_type("nat"))
    bounds: dict[str, int] = {}
    for _, t in goal.hyps:
        for part in re.split(r"/\\", _strip_parens(t)):
            part = _strip_parens(part.replace("%nat", ""))
            m = _BOUND_RE.match(part)
            if m:
                var, op, k = m.group(1), m.group(2), int(m.group(3))
            else:
                m = _BOUND_REV_RE.match(part)
                if not m:
                    continue
                k, op, var = int(m.group(1)), "<" if m.group(2) == ">" else "<=", m.group(3)
            top = k - 1 if op == "<" else k
            if var in nats and top >= 0:
                bounds[var] = min(bounds.get(var, top), top)
    return bounds


def _cases(goal: CoqGoal) -> list[BankEntry]:
    """Case splits: a small bounded nat variable into its values; ``Rabs`` into its signs."""
    out: list[BankEntry] = []
    for var, top in sorted(_nat_bounds(goal).items()):
        if top > MAX_CASES:
            continue
        pattern = var
        for _ in range(top + 1):
            pattern = f"[|{pattern}]"
        split = f"destruct {var} as {pattern}; simpl in *"
        out.append(_e(f"{split}; lia", 1, cost="cheap", family="cases"))
        out.append(_e(f"{split}; nia", 1, cost="medium", family="cases"))
        out.append(_e(f"{split}; try lia", 1, cost="step", family="cases"))
    text = " ".join(t for _, t in goal.hyps) + " " + goal.concl
    if "Rabs" in text:
        out.append(_e("split_Rabs", 1, cost="step", family="cases"))
    return out


def _induction(goal: CoqGoal) -> list[BankEntry]:
    """Induction on a nat variable the conclusion mentions (when no hypothesis mentions it: the
    induction hypothesis would be too weak)."""
    out: list[BankEntry] = []
    for var in goal.names_of_type("nat"):
        word = re.compile(rf"(?<![\w']){re.escape(var)}(?![\w'])")
        if not word.search(goal.concl) or any(word.search(t) for _, t in goal.hyps):
            continue
        out.append(_e(f"induction {var}; simpl in *; lia", 1, cost="cheap", family="induction"))
        out.append(_e(f"induction {var}; simpl in *; nia", 1, cost="medium", family="induction"))
        out.append(_e(f"induction {var}; simpl in *; lra", 1, cost="medium", family="induction"))
        out.append(_e(f"induction {var}", 1, cost="step", family="induction"))
    return out


def _hints(goal: CoqGoal) -> list[BankEntry]:
    """``nra``/``nia`` with product hints: squares of the differences of the context's variables."""
    out: list[BankEntry] = []
    for typ, lemma, tac in (("R", "pow2_ge_0", "nra"), ("Z", "Z.square_nonneg", "nia")):
        xs = goal.names_of_type(typ)[:MAX_HINT_VARS]
        if len(xs) < 2:
            continue
        pairs = [(a, b) for i, a in enumerate(xs) for b in xs[i + 1 :]]
        diffs = "; ".join(f"pose proof ({lemma} ({a} - {b}))" for a, b in pairs)
        sums = "; ".join(f"pose proof ({lemma} ({a} + {b}))" for a, b in pairs)
        out.append(_e(f"{diffs}; {tac}", 1, cost="medium", family="hints"))
        out.append(_e(f"{diffs}; {sums}; {tac}", 1, cost="expensive", family="hints"))
    return out


#: the goal-derived Coq families, in the order their candidates are offered (after the bank's)
COQ_DYNAMIC: dict[str, Callable[[CoqGoal], list[BankEntry]]] = {
    "structure": _structure,
    "cases": _cases,
    "induction": _induction,
    "hints": _hints,
}


def coq_dynamic(goal_text: str, families: frozenset[str] | None = None) -> list[BankEntry]:
    """The goal-derived candidates of the ``families`` (None: all) for ``goal_text``."""
    goal = parse_coq_goal(goal_text)
    out: list[BankEntry] = []
    for fam, make in COQ_DYNAMIC.items():
        if families is None or fam in families:
            out.extend(make(goal))
    return out


@dataclass(frozen=True)
class _Bank:
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


def _coq_timeout(tactic: str, seconds: float) -> str:
    return f"timeout {math.ceil(seconds)} ({tactic})"  # Coq's timeout takes whole seconds


def _coq_automation() -> dict[str, bool]:
    from ..backends.coq.automation import coq_automation

    return coq_automation()


#: the study's output: which pool tactics make the Coq bank, in which order, with which weight
COQ_PRIORS_FILE = "coq_bank_priors.json"


def load_coq_priors(path: Path | None = None) -> dict[str, Any]:
    """The committed priors (``scripts/coq_bank_study.py --write-priors``)."""
    path = path or Path(__file__).with_name(COQ_PRIORS_FILE)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the Coq bank priors {path}: {exc}") from None


def coq_bank_from_priors(priors: dict[str, Any]) -> tuple[BankEntry, ...]:
    """The pool entries the priors select, best first, weighted; then every step of the pool."""
    pool = {e.tactic: e for e in COQ_POOL}
    out: list[BankEntry] = []
    for row in priors["bank"]:
        entry = pool.get(row["tactic"])
        if entry is None:
            raise ConfigError(f"the priors name a tactic that is not in COQ_POOL: {row['tactic']!r}")
        out.append(dataclasses.replace(entry, weight=float(row["weight"])))
    chosen = {e.tactic for e in out}
    out.extend(e for e in COQ_POOL if e.cost == "step" and e.tactic not in chosen)
    return tuple(out)


def _coq_bank() -> _Bank:
    priors = load_coq_priors()
    return _Bank(
        coq_bank_from_priors(priors),
        coq_goal_features,
        True,
        f"scripts/coq_bank_study.py on miniF2F-{priors.get('split', 'valid')} root goals (Coq 8.16.1)",
        coq_dynamic,
        _coq_timeout,
        _coq_automation,
        intro_first=True,
    )


BANKS: dict[str, Callable[[], _Bank]] = {
    "coq": _coq_bank,
    "lean4": lambda: _Bank(LEAN4_BANK, lean4_goal_features, False, "hand-set prior"),
    "leandojo": lambda: _Bank(LEAN4_BANK, lean4_goal_features, False, "hand-set prior"),
    "isabelle": lambda: _Bank(ISABELLE_BANK, _no_features, False, "hand-set prior"),
}

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
    ``intro_first`` overrides the bank's rule for goals that start with a binder (see ``_Bank``).
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
    ) -> None:
        try:
            bank = BANKS[backend]()
        except KeyError:
            raise ConfigError(
                f"no tactic bank for backend {backend!r}; choose one of {', '.join(BANKS)}"
            ) from None
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

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        if k <= 0:
            return []
        return dedupe(self.candidates_for(goal_text), k)

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
            "automation": self._bank.automation() if self._bank.automation is not None else None,
        }
