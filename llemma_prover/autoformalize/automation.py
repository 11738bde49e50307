"""The ranked automation that attacks each hole, per backend.

Coq: decision procedures first (cheap when they fail), then rewriting/simplification combinations,
then general search. Each is wrapped so that it must *close* the hole (see ``sketch.fill_template``);
``intros;`` is prefixed when the claim is an implication/universal/negation. CoqHammer's
reconstruction tactics (``sauto``, ``hauto``) are added only when ``use_hammer`` is set and the
``Hammer`` library is installed (Debian ``libcoq-hammer``); see the README for the measurement that
decides the default.
"""

from __future__ import annotations

from ..backends.isabelle.automation import HEURISTICS as ISABELLE_HEURISTICS

#: Coq hole tactics, in the order they are tried
COQ_HOLE_TACTICS: tuple[str, ...] = (
    "assumption",
    "lia",
    "lra",
    "nia",
    "nra",
    "field",
    "ring",
    "reflexivity",
    "auto",
    "easy",
    "congruence",
    "tauto",
    "subst; lia",
    "subst; nia",
    "subst; lra",
    "subst; nra",
    "field_simplify; lra",
    "field_simplify; nra",
    "simpl; lia",
    "simpl; ring",
    "vm_compute; reflexivity",
    "apply pow2_ge_0",
    "apply pow_le; lra",
    "apply Rmult_le_pos; lra",
    "apply Rmult_lt_0_compat; lra",
    "firstorder",
    "intuition",
    "auto with real",
    "auto with zarith",
    "eauto",
)

#: CoqHammer's reconstruction tactics (no external provers needed), tried last when enabled
COQ_HAMMER_TACTICS: tuple[str, ...] = ("sauto", "hauto")

#: the Coq import that makes them available (added to the theorem header when enabled)
COQ_HAMMER_IMPORT = "From Hammer Require Import Tactics.\n"

#: Lean 4 bank entries that cannot close a goal by themselves (they only restructure it)
_LEAN_NON_CLOSING = frozenset({"intro h", "intros", "constructor", "ring_nf", "field_simp", "norm_num at *"})


def lean_hole_tactics() -> list[str]:
    """Lean 4: the ``bank`` generator's tactics, by prior weight, without the non-closing ones."""
    from ..generators.bank import LEAN4_BANK

    ranked = sorted(LEAN4_BANK, key=lambda e: -e.weight)
    return [e.tactic for e in ranked if e.tactic not in _LEAN_NON_CLOSING]


ISABELLE_HOLE_METHODS: tuple[str, ...] = ISABELLE_HEURISTICS


def needs_intros(claim: str) -> bool:
    """Whether a Coq claim has premises/binders that ``intros`` should move into the context."""
    c = claim.strip()
    if not c:
        return False
    if c.startswith(("forall", "~", "(~")):
        return True
    depth = 0
    for i, ch in enumerate(c):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and c.startswith("->", i):
            return True
    return False


def coq_goal_claim(goals: tuple[str, ...]) -> str:
    """The conclusion of the first goal in the backend's goal text (the line(s) after ``====``)."""
    if not goals:
        return ""
    first = goals[0]
    if "============================" in first:
        return first.split("============================", 1)[1].strip()
    return first.strip()


def coq_hole_tactics(claim: str, use_hammer: bool = False) -> list[str]:
    """The ranked tactics for a Coq hole whose claim is ``claim``."""
    base = list(COQ_HOLE_TACTICS) + (list(COQ_HAMMER_TACTICS) if use_hammer else [])
    if needs_intros(claim):
        return [f"intros; {t}" for t in base]
    return base


def coq_hammer_available(coqc: str = "coqc") -> bool:
    """Whether CoqHammer's tactics library is installed for this Coq (Debian ``libcoq-hammer``).

    Runs ``coqc -where`` once (call it explicitly, e.g. from the CLI; never at import time)."""
    import shutil
    import subprocess
    from pathlib import Path

    exe = shutil.which(coqc)
    if exe is None:
        return False
    try:
        where = subprocess.run([exe, "-where"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return (Path(where.strip()) / "user-contrib" / "Hammer" / "Tactics" / "Tactics.vo").is_file()
