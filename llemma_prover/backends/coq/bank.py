"""The Coq bank: the candidate pool, goal features, goal-derived candidates and the measured priors.

How the pool, its order and its weights were chosen (on miniF2F-valid only) is documented in
``generators/bank.py`` and ``docs/bank.md``; ``scripts/coq_bank_study.py`` writes
``bank_priors.json`` beside this file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.errors import ConfigError
from ..bank import Bank, BankEntry, entry

__all__ = [
    "COQ_DYNAMIC",
    "COQ_POOL",
    "COQ_PRIORS_FILE",
    "COQ_STUDY_EXTRA",
    "CoqGoal",
    "coq_bank",
    "coq_bank_from_priors",
    "coq_dynamic",
    "coq_goal_features",
    "load_coq_priors",
    "parse_coq_goal",
]


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


#: Coq 8.16 candidate pool: every single-sentence tactic the study (``scripts/coq_bank_study.py``)
#: measures on the miniF2F-*valid* root goals. Which of them make the bank, in which order and with
#: which weight, comes out of that study (``bank_priors.json``, see ``coq_bank``); steps (cost
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
    entry("intros; repeat split; nra", 1, "real"),
    entry("intros; repeat split; lia", 1, "int"),
    entry("intros; nia", 1, "int"),
    entry(f"{_REWRITE_ALL}; lra", 1, "real", "fun_eq"),
    entry("intros; split_Rabs; lra", 1, "real", "rabs"),
    entry("intros; field_simplify; nra", 1, "real"),
    entry("intros; subst; simpl; lra", 1, "real"),
    entry("intros; congruence", 1),
    entry("reflexivity", 1, "closed"),
    entry("intros; lra", 1, "real"),
    entry("intros; lia", 1, "int"),
    entry("intros; subst; nra", 1, "real"),
    entry("intros; field; lra", 1, "real"),
    entry(f"{_REWRITE_ALL}; field", 1, "real", "fun_eq"),
    entry("intros; zify; Z.div_mod_to_equations; nia", 1, "int", "divmod"),
    entry("intros; zify; Z.div_mod_to_equations; lia", 1, "int", "divmod"),
    entry("intros; tauto", 1),
    entry("auto", 1),
    entry("easy", 1),
    entry("intros; subst; lra", 1, "real"),
    entry("intros; subst; lia", 1, "int"),
    entry("intros; subst; nia", 1, "int"),
    entry("intros; subst; field", 1, "real"),
    entry("intros; ring", 1),
    entry("vm_compute; reflexivity", 1, "closed"),
    entry("now vm_compute", 1, "closed"),
    entry("compute; lia", 1, "closed", "int"),
    entry("intros; simpl in *; lia", 1, "int"),
    entry("intros; intuition lia", 1, "int"),
    entry("intros; intuition nra", 1, "real"),
    entry("intros; field_simplify; lra", 1, "real"),
    entry("intros; ring_simplify; nra", 1, "real"),
    entry("intros; unfold Rdiv in *; nra", 1, "real"),
    entry("intros; unfold Rsqr in *; nra", 1, "real"),
    entry(f"{_REWRITE_ALL}; lia", 1, "int", "fun_eq"),
    entry(f"{_REWRITE_ALL}; nra", 1, "real", "fun_eq"),
    entry("intros; split_Rabs; nra", 1, "real", "rabs"),
    entry(f"{_REWRITE_IN}; lra", 1, "real", "fun_eq", family="rewrite"),
    entry(f"{_REWRITE_IN}; nra", 1, "real", "fun_eq", family="rewrite"),
    entry(f"{_REWRITE_IN}; lia", 1, "int", "fun_eq", family="rewrite"),
    entry(f"intros; subst; {_C_EQ}; simpl; lra", 1, "complex", family="complex"),
    entry(f"intros; subst; {_C_EQ}; simpl; ring", 1, "complex", family="complex"),
    entry(f"intros; {_C_DESTRUCT}; {_C_UNFOLD}; simpl in *; {_C_INJECT}; {_C_EQ}; simpl; nra", 1, "complex",
       family="complex"),
    entry(f"{_DENOMS}; nra", 1, "real", family="denominators"),
    # Positivstellensatz certificates by csdp (coinor-csdp): stronger than nra, slower
    entry("intros; psatz R 2", 1, "real", cost="medium", family="psatz"),
    entry("intros; psatz R 3", 1, "real", cost="expensive", family="psatz"),
    entry("intros; psatz Z 2", 1, "int", cost="medium", family="psatz"),
    # CoqHammer's reconstruction tactics (no external prover needed)
    entry("sauto", 1, cost="expensive", family=_H),
    entry("hauto", 1, cost="expensive", family=_H),
    entry("intros; sauto lq: on", 1, cost="expensive", family=_H),
    # steps that leave goals for the next expansion (always in the bank)
    entry("intros", 1, "intro", cost="step"),  # the base: with the closers, never ablated
    entry("split", 1, "conj", cost="step", family="structure"),
    entry("intros; field", 1, "real", cost="step"),  # leaves the side conditions (x <> 0) as goals
)

#: pool tactics kept out of the study's cover by default (none: every pool entry is measured)
COQ_STUDY_EXTRA: tuple[str, ...] = ()


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
        out.append(entry("split; intros", 1, cost="step", family="structure"))
    elif _top_level(concl, "\\/") and not _top_level(concl, "->"):
        out.append(entry("left", 1, cost="step", family="structure"))
        out.append(entry("right", 1, cost="step", family="structure"))
    if _top_level(concl, "<>") and not _top_level(concl, "->"):
        out.append(entry("intro", 1, cost="step", family="structure"))
    hyp_types = [(n, _strip_parens(t)) for n, t in goal.hyps]
    if any(_top_level(t, "/\\") or t.startswith("exists") or _top_level(t, "<->") for _, t in hyp_types):
        out.append(
            entry(
                "repeat match goal with H : _ /\\ _ |- _ => destruct H | H : exists _, _ |- _ => destruct H "
                "| H : _ <-> _ |- _ => destruct H end",
                1,
                cost="step",
                family="structure",
            )
        )
    for name, t in hyp_types:
        if _top_level(t, "\\/") and not _top_level(t, "->") and not t.startswith(("forall", "exists")):
            out.append(entry(f"destruct {name} as [{name} | {name}]", 1, cost="step", family="structure"))
    reals = bool(goal.names_of_type("R"))
    for name, t in hyp_types:
        # clear the denominators of an equation (side conditions x <> 0 become goals of their own)
        if reals and "/" in t and " = " in t and not t.startswith(("forall", "exists")):
            # fails when the hypothesis does not change (Coq 8.16 then only adds side goals: an
            # endless chain of new states that starved every later stage, minif2f-valid traces)
            out.append(
                entry(
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
            out.append(entry("subst", 1, cost="step", family="structure"))
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
        out.append(entry(f"{split}; lia", 1, cost="cheap", family="cases"))
        out.append(entry(f"{split}; nia", 1, cost="medium", family="cases"))
        out.append(entry(f"{split}; try lia", 1, cost="step", family="cases"))
    text = " ".join(t for _, t in goal.hyps) + " " + goal.concl
    if "Rabs" in text:
        out.append(entry("split_Rabs", 1, cost="step", family="cases"))
    return out


def _induction(goal: CoqGoal) -> list[BankEntry]:
    """Induction on a nat variable the conclusion mentions (when no hypothesis mentions it: the
    induction hypothesis would be too weak)."""
    out: list[BankEntry] = []
    for var in goal.names_of_type("nat"):
        word = re.compile(rf"(?<![\w']){re.escape(var)}(?![\w'])")
        if not word.search(goal.concl) or any(word.search(t) for _, t in goal.hyps):
            continue
        out.append(entry(f"induction {var}; simpl in *; lia", 1, cost="cheap", family="induction"))
        out.append(entry(f"induction {var}; simpl in *; nia", 1, cost="medium", family="induction"))
        out.append(entry(f"induction {var}; simpl in *; lra", 1, cost="medium", family="induction"))
        out.append(entry(f"induction {var}", 1, cost="step", family="induction"))
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
        out.append(entry(f"{diffs}; {tac}", 1, cost="medium", family="hints"))
        out.append(entry(f"{diffs}; {sums}; {tac}", 1, cost="expensive", family="hints"))
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


def _coq_timeout(tactic: str, seconds: float) -> str:
    return f"timeout {math.ceil(seconds)} ({tactic})"  # Coq's timeout takes whole seconds


def _coq_automation() -> dict[str, bool]:
    from .automation import coq_automation

    return coq_automation()


#: the study's output: which pool tactics make the Coq bank, in which order, with which weight
COQ_PRIORS_FILE = "bank_priors.json"


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


def coq_bank() -> Bank:
    priors = load_coq_priors()
    return Bank(
        coq_bank_from_priors(priors),
        coq_goal_features,
        True,
        f"scripts/coq_bank_study.py on miniF2F-{priors.get('split', 'valid')} root goals (Coq 8.16.1)",
        coq_dynamic,
        _coq_timeout,
        _coq_automation,
        intro_first=True,
    )
