"""llemma-prover: LLM-guided best-first proof search on miniF2F (Coq, Lean 4, Isabelle)."""

__version__ = "0.1.0"
#: version of the run-directory format; a run written by another format version is refused
RUN_FORMAT_VERSION = 1
