"""The Lean 4 cheating-tactic filter (llemma_prover.backends.lean4.tactics)."""

from __future__ import annotations

import pytest

from llemma_prover.backends.lean4.tactics import MAX_TACTIC_CHARS, check_tactic

ALLOWED = [
    "intro x",
    "nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]",
    "norm_num [Nat.gcd] at h ⊢",
    "simp only [Finset.sum_range_succ]",
    "field_simp",
    "omega",
    "decide",
    "positivity",
    "induction x with\n| zero => rfl\n| succ n ih => simp [ih]",
    "calc a = b := by ring\n  _ = c := by ring",
    "exact h_admit",  # identifiers that merely contain a refused word
    "exact sorry_free_lemma",
    "intro x -- sorry, later",  # comments are not code
    'trace "sorry"',  # nor are strings
    "set_option maxRecDepth 10000 in simp",
    "simp?",  # suggests `simp only`, closes goals by simp
    "· simp",
    "case pos => rfl",
    "rcases h with ⟨x, hx⟩",
    "have h₁ : 0 < x := by positivity",
]

REFUSED = [
    ("sorry", "sorry"),
    ("exact sorry", "sorry"),
    ("all_goals admit", "sorry"),
    ("stop", "sorry"),
    ("exact sorryAx _ false", "sorry"),
    ("have h : x = 1 := by sorry", "sorry"),
    ("decreasing_by sorry", "sorry"),
    ("native_decide", "ofReduceBool"),
    ("decide +native", "ofReduceBool"),
    ("decide (config := {native := true})", "ofReduceBool"),
    ("exact Lean.ofReduceBool _ _ rfl", "ofReduceBool"),
    ("exact?", "library search"),
    ("apply?", "library search"),
    ("rw?", "library search"),
    ("hint", "library search"),
    ("set_option debug.skipKernelTC true in rfl", "set_option"),
    ("set_option pp.all true in simp", "set_option"),
    ("rfl\naxiom cheat : False", "command keyword"),
    ("rfl\ntheorem other : True := trivial", "command keyword"),
    ("rfl\nend", "command keyword"),
    ("#eval IO.println 1", "#"),
    ("#exit", "#"),
    ("run_tac Lean.Elab.admitGoal", "meta-level"),
    ("by_elab pure ()", "meta-level"),
    ("exact (unsafeCast 0 : False)", "meta-level"),
    ("simp [@[simp] foo]", "attribute"),
    ("", "empty"),
    ("   ", "empty"),
    ("rfl\x00", "control"),
    ("/- open comment", "unterminated comment"),
    ('trace "open string', "unterminated string"),
    ("x" * (MAX_TACTIC_CHARS + 1), "longer"),
]


@pytest.mark.parametrize("tactic", ALLOWED)
def test_allowed(tactic: str) -> None:
    assert check_tactic(tactic) is None


@pytest.mark.parametrize(("tactic", "why"), REFUSED)
def test_refused(tactic: str, why: str) -> None:
    reason = check_tactic(tactic)
    assert reason is not None and why in reason, (tactic, reason)
