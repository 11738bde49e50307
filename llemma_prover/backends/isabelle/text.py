"""What the Isabelle backend answers without a running prover (``IsabelleBackend``'s classmethods).

Proof files (``proof_text``, ``export_text``), the sketch dialect (``sketch.py``) and its hole
automation (``automation.py``: the Llemma/DSP heuristics, then Sledgehammer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from ...core.types import Theorem
from .automation import HEURISTICS, sledgehammer_command
from .sketch import parse_isabelle
from .theory import theory_text

if TYPE_CHECKING:
    from ..bank import Bank
    from ..sketch import Sketch, SketchError

__all__ = ["IsabelleText"]


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


class IsabelleText:
    """Mixin of ``IsabelleBackend``: its capabilities that need no prover."""

    whole_proof_sketch: ClassVar[str] = "sledgehammer"
    fills_by_probes: ClassVar[bool] = True

    @classmethod
    def tactic_bank(cls) -> Bank:
        from .bank import isabelle_bank

        return isabelle_bank()

    @classmethod
    def proof_text(cls, theorem: Theorem, proof: Sequence[str]) -> str:
        return theory_text(theorem, "\n".join(s.strip() for s in proof))

    @classmethod
    def export_text(
        cls, theorem: Theorem, tactics: Sequence[str], complete: bool, remaining: str = ""
    ) -> str:
        lines = [f"  {t}" for t in tactics]
        if not complete:
            note = remaining.strip()
            if note:
                lines.append("  (* remaining goals:\n" + _indent(note.replace("*)", "* )"), 4) + "\n  *)")
            lines.append("  sorry")
        return f"{theorem.header.rstrip()}\n{theorem.statement}\n" + "\n".join(lines) + "\n\nend\n"

    @classmethod
    def parse_sketch(cls, text: str) -> Sketch | SketchError:
        return parse_isabelle(text)

    @classmethod
    def hole_candidates(cls, claim: str, goals: tuple[str, ...], use_hammer: bool) -> list[str]:
        """The Llemma/DSP heuristics, in order (Sledgehammer comes after them: ``hammer_command``)."""
        return list(HEURISTICS)

    @classmethod
    def hammer_command(cls, timeout: float) -> str | None:
        return sledgehammer_command(timeout)
