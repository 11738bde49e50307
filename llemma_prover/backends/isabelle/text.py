"""What the Isabelle backend answers without a running prover (``IsabelleBackend``'s parts,
``backends/parts.py``).

Proof files (``proof_text``, ``export_text``), the sketch dialect (``sketch.py``) and its hole
automation (``automation.py``: the Llemma/DSP heuristics, then Sledgehammer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from ...core.types import Theorem
from ..parts import DataHooks, ProofDialect, SketchDialect
from .automation import HEURISTICS, sledgehammer_command
from .sketch import parse_isabelle
from .theory import theory_text

if TYPE_CHECKING:
    from ..bank import Bank
    from ..sketch import Sketch, SketchError

__all__ = ["IsabelleData", "IsabelleDialect", "IsabelleSketches"]


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


class IsabelleDialect(ProofDialect):
    """Isabelle theory files (``.thy``)."""

    proof_ext: ClassVar[str] = "thy"

    def proof_text(self, theorem: Theorem, proof: Sequence[str]) -> str:
        return theory_text(theorem, "\n".join(s.strip() for s in proof))

    def export_text(
        self, theorem: Theorem, tactics: Sequence[str], complete: bool, remaining: str = ""
    ) -> str:
        lines = [f"  {t}" for t in tactics]
        if not complete:
            note = remaining.strip()
            if note:
                lines.append("  (* remaining goals:\n" + _indent(note.replace("*)", "* )"), 4) + "\n  *)")
            lines.append("  sorry")
        return f"{theorem.header.rstrip()}\n{theorem.statement}\n" + "\n".join(lines) + "\n\nend\n"


class IsabelleSketches(SketchDialect):
    """Isar sketches whose holes (``sledgehammer``/``sorry``) are filled by whole-file probes."""

    whole_proof_sketch: ClassVar[str] = "sledgehammer"
    fills_by_probes: ClassVar[bool] = True

    def parse_sketch(self, text: str) -> Sketch | SketchError:
        return parse_isabelle(text)

    def hole_candidates(self, claim: str, goals: tuple[str, ...], use_hammer: bool) -> list[str]:
        """The Llemma/DSP heuristics, in order (Sledgehammer comes after them: ``hammer_command``)."""
        return list(HEURISTICS)

    def hammer_command(self, timeout: float) -> str | None:
        return sledgehammer_command(timeout)


class IsabelleData(DataHooks):
    """The Isabelle bank."""

    def tactic_bank(self) -> Bank:
        from .bank import isabelle_bank

        return isabelle_bank()
