"""Prover backends (Coq, Lean 4, LeanDojo, Isabelle) behind one interface (``base.ProverBackend``)."""
