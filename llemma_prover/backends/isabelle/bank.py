"""The Isabelle bank: one proof step each (a hand-set prior: Isabelle does not run on this machine).

The Isabelle backend checks ``steps + new step`` as the proof of the theorem, so an entry is one proof
step: a terminal ``by METHOD`` (closes the goal) or an ``apply METHOD`` step that leaves subgoals.
"""

from __future__ import annotations

from ..bank import Bank, BankEntry, entry, no_features

__all__ = ["ISABELLE_BANK", "isabelle_bank"]


#: Isabelle bank: one proof step each (terminal ``by`` methods first; see the module docstring)
ISABELLE_BANK: tuple[BankEntry, ...] = (
    entry("by simp", 30),
    entry("by auto", 30),
    entry("by arith", 15),
    entry("by linarith", 15),
    entry("by presburger", 12),
    entry("by eval", 10),
    entry("by (simp add: field_simps)", 10),
    entry("by (auto simp: field_simps)", 10),
    entry("by algebra", 6),
    entry("by sos", 6),
    entry("by fastforce", 6),
    entry("by blast", 6),
    entry("by force", 4),
    entry("by (simp add: algebra_simps)", 4),
    entry("by (simp add: power2_eq_square)", 3),
    entry("by (smt (verit))", 3),
    entry("by (metis)", 2),
    entry("apply (auto simp: field_simps)", 2),
    entry("apply (simp add: algebra_simps)", 2),
    entry("apply auto", 2),
    entry("apply (rule conjI)", 1),
    entry("apply (intro allI impI)", 1),
)


def isabelle_bank() -> Bank:
    return Bank(ISABELLE_BANK, no_features, False, "hand-set prior")
