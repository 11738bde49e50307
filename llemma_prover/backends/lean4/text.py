"""What the Lean 4 backends (``lean4``, ``leandojo``) answer without a running prover.

Proof files (``proof_text``, ``export_text``), imported records (``imported_theorem``), extracted proof
steps (``step_goal_text``) and the sketch dialect (``sketch.py``): the parts (``backends/parts.py``)
``LeanDialect``, ``LeanSketches`` and ``LeanData`` that ``Lean4Backend`` and ``LeanDojoBackend`` carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ...core.errors import ProverStartError
from ...core.types import Theorem
from ..parts import DataHooks, ProofDialect, SketchDialect
from . import sketch
from .repl_process import BACKEND

if TYPE_CHECKING:
    from ..bank import Bank
    from ..sketch import Sketch, SketchError

__all__ = ["LEAN_HEADER", "LeanData", "LeanDialect", "LeanSketches", "proof_body", "statement_by"]

#: the header of an imported record that recorded none (the Llemma miniF2F Lean 4 preamble)
LEAN_HEADER = "import Mathlib\nset_option maxHeartbeats 0\nopen BigOperators Real Nat Topology Rat\n"


def proof_body(proof: Sequence[str]) -> str:
    """What follows ``by``: `` tac`` for one single-line tactic, else a newline and every line of
    every tactic indented by two spaces (relative indentation inside a tactic is kept)."""
    if len(proof) == 1 and "\n" not in proof[0]:
        return " " + proof[0].strip()
    lines: list[str] = [""]
    for tac in proof:
        for line in tac.split("\n"):
            lines.append(("  " + line) if line.strip() else "")
    return "\n".join(lines)


def statement_by(statement: str, suffix: str) -> str:
    st = statement.rstrip()
    if not st.endswith(":="):
        raise ProverStartError(
            f"Lean 4 statement must end with ':=' (data convention), got ...{st[-40:]!r}", backend=BACKEND
        )
    return f"{st} by{suffix}"


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


class LeanDialect(ProofDialect):
    """Lean 4 proof files: ``.lean``, the statement ending in ``:=`` followed by ``by`` and the tactics."""

    proof_ext: ClassVar[str] = "lean"

    def proof_text(self, theorem: Theorem, proof: Sequence[str]) -> str:
        header = (
            theorem.header if theorem.header.endswith("\n") or not theorem.header else theorem.header + "\n"
        )
        return header + "\n" + statement_by(theorem.statement, proof_body(proof)) + "\n"

    def export_text(
        self, theorem: Theorem, tactics: Sequence[str], complete: bool, remaining: str = ""
    ) -> str:
        lines = [f"  {t}" for t in tactics]
        if not complete:
            note = remaining.strip()
            if note:
                lines.append("  /- remaining goals:\n" + _indent(note.replace("-/", "- /"), 4) + "\n  -/")
            lines.append("  sorry")
        return f"{theorem.header.rstrip()}\n\n{theorem.statement} by\n" + "\n".join(lines) + "\n"

    def imported_theorem(self, name: str, split: str, statement: str, header: str | None) -> Theorem:
        """An imported record's statement ends with ``:=`` (the data convention); a record without a
        header gets the Llemma preamble (``LEAN_HEADER``)."""
        if not statement.rstrip().endswith(":="):
            statement = statement.rstrip() + " :="
        return Theorem(name=name, split=split, system="lean4",
                       header=LEAN_HEADER if header is None else header, statement=statement)


class LeanSketches(SketchDialect):
    """Lean 4 sketches: a tactic block in which ``sorry`` is a hole (``sketch.py``)."""

    whole_proof_sketch: ClassVar[str] = "sorry"

    def parse_sketch(self, text: str) -> Sketch | SketchError:
        return sketch.parse_lean(text, self.backend)

    def fill_hole(self, template: str, tactic: str) -> str:
        return sketch.fill_hole(template, tactic)

    def hole_candidates(self, claim: str, goals: tuple[str, ...], use_hammer: bool) -> list[str]:
        return sketch.hole_tactics()


class LeanData(DataHooks):
    """The Lean 4 bank; extracted steps shown as their pretty-printed state."""

    def tactic_bank(self) -> Bank:
        from .bank import lean4_bank

        return lean4_bank()

    def step_goal_text(self, record: Mapping[str, Any]) -> str:
        """The record's pretty-printed ``state_before`` (else its ``goals_before`` as the base renders)."""
        if record.get("state_before"):
            return str(record["state_before"])
        return super().step_goal_text(record)
