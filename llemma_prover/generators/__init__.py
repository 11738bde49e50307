"""Tactic generators: ``bank`` (automation list), ``replay`` (from a file), ``llemma`` (a causal LM)."""
