"""The ranked automation that attacks each hole: each backend's own (``SketchDialect.hole_candidates``).

Re-exported here for scripts and tests: Coq's (``backends/coq/sketch.py``: decision procedures first,
then rewriting/simplification combinations, then general search, each wrapped so that it must *close*
the hole; ``intros;`` prefixed when the claim is an implication/universal/negation; CoqHammer's
reconstruction tactics only when ``use_hammer`` is set and the ``Hammer`` library is installed, Debian
``libcoq-hammer``, see ``docs/autoformalize.md`` for the measurement that decides the
default), Lean 4's (the bank's closing tactics) and Isabelle's (the Llemma/DSP heuristics, then Sledgehammer).
"""

from __future__ import annotations

from ..backends.coq.sketch import (
    COQ_HAMMER_IMPORT,
    COQ_HAMMER_TACTICS,
    COQ_HOLE_TACTICS,
    coq_goal_claim,
    coq_hole_tactics,
    needs_intros,
)
from ..backends.isabelle.automation import HEURISTICS as ISABELLE_HOLE_METHODS
from ..backends.lean4.sketch import hole_tactics as lean_hole_tactics

__all__ = ["COQ_HAMMER_IMPORT", "COQ_HAMMER_TACTICS", "COQ_HOLE_TACTICS", "ISABELLE_HOLE_METHODS",
           "coq_goal_claim", "coq_hammer_available", "coq_hole_tactics", "lean_hole_tactics", "needs_intros"]


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
