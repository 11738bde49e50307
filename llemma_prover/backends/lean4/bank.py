"""The Lean 4 bank (Mathlib tactics; a hand-set prior: Lean does not run on this machine)."""

from __future__ import annotations

import re

from ..bank import Bank, BankEntry, entry

__all__ = ["LEAN4_BANK", "lean4_bank", "lean4_goal_features"]


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


#: Lean 4 + Mathlib bank (hand-set prior: not measurable here, no Lean on this machine)
LEAN4_BANK: tuple[BankEntry, ...] = (
    entry("norm_num", 40),
    entry("linarith", 30, "real"),
    entry("omega", 30, "int"),
    entry("simp", 20),
    entry("decide", 15, "closed"),
    entry("rfl", 12, "closed"),
    entry("intro h", 10, "intro"),
    entry("intros", 10, "intro"),
    entry("nlinarith", 20),
    entry("positivity", 12),
    entry("field_simp", 10),
    entry("ring_nf", 10),
    entry("ring", 10),
    entry("norm_num at *", 8),
    entry("simp_all", 8),
    entry("constructor", 6, "conj"),
    entry("aesop", 6),
    entry("norm_num [Nat.Prime] at *", 4, "int"),
    entry("interval_cases n <;> simp_all", 3, "int"),
    entry("field_simp; ring_nf", 3, "real"),
    entry("nlinarith [sq_nonneg (x - y), sq_nonneg (x + y)]", 2, "real"),
)


def lean4_bank() -> Bank:
    return Bank(LEAN4_BANK, lean4_goal_features, False, "hand-set prior")
