"""Test helpers that ship with the package (e.g. the Lean 4 replay REPL)."""
