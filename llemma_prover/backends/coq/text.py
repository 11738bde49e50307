"""What the Coq backend answers without a running prover (``CoqBackend``'s parts, ``backends/parts.py``).

Proof files (``proof_text``, ``export_text``), extracted proof steps (``step_goal_text``,
``step_tactic_text``, ``goal_parts``) and the sketch dialect (``sketch.py``): ``proof_dialect("coq")``,
``sketch_dialect("coq")`` and ``data_hooks("coq")`` answer them, nothing is started.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from ...core.types import Theorem
from ..parts import AuditProbes, DataHooks, ProofDialect, SketchDialect
from . import sketch
from .header import theorem_header
from .layout import proof_sentence
from .recheck import final_tactics, footer_block, proof_file, without_timeout
from .sentences import InvalidTactic, validate_tactic

if TYPE_CHECKING:
    from ..bank import Bank
    from ..sketch import Sketch, SketchError

__all__ = ["CoqData", "CoqDialect", "CoqSketches"]


def _export_sentence(tactic: str) -> str:
    """One step of an exported path, laid out as the proof file lays it out (``layout``); a step that
    is not one admissible sentence (a trace from elsewhere) is kept as written, so the export still
    shows it (and Coq refuses that file, as it should)."""
    try:
        return proof_sentence(tactic)
    except InvalidTactic:
        return f"  {tactic}"


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


class CoqDialect(ProofDialect):
    """Coq proof files: ``.v``, the theorem's footer after the proof."""

    proof_ext: ClassVar[str] = "v"
    honours_footer: ClassVar[bool] = True

    def proof_text(self, theorem: Theorem, proof: Sequence[str]) -> str:
        """Header (prepared), statement, ``Proof.``, one tactic per line, ``Qed.`` (``recheck.proof_file``).

        No ``timeout`` tactical is written, around a whole tactic or inside one (``without_timeout``):
        the timeout bounded what the search spent; the re-check must not depend on the speed of the
        machine (``recheck.final_tactics``). What is left is checked as usual. Raises
        ``InvalidTactic`` if a tactic is not one admissible sentence.
        """
        return proof_file(theorem_header(theorem.header, theorem.footer), theorem.statement,
                          final_tactics(proof), theorem.footer)

    def artifact_proof(self, proof: Sequence[str]) -> list[str]:
        """Each tactic without any ``timeout`` tactical (``recheck.without_timeout``: ``timeout N (T)``
        is ``T``, ``first [timeout 2 (lia) | nia]`` is ``first [(lia) | nia]``). A text rewrite that
        decides nothing: the result is what is checked by Coq and recorded."""
        return [without_timeout(t) for t in proof]

    def export_text(
        self, theorem: Theorem, tactics: Sequence[str], complete: bool, remaining: str = ""
    ) -> str:
        body = "\n".join(_export_sentence(t) for t in tactics)
        end = "Qed." if complete else "Admitted."
        note = remaining.strip() if not complete else ""
        comment = (
            ("\n  (* remaining goals:\n" + _indent(note.replace("*)", "* )"), 5) + "\n  *)") if note else ""
        )
        header, tail = theorem_header(theorem.header, theorem.footer), footer_block(theorem.footer)
        return f"{header}\n{theorem.statement}\nProof.\n{body}{comment}\n{end}\n{tail}"

    def audit_probes(self) -> AuditProbes:
        from .audit import PROBES, ROOT_TACTIC, WITNESS_TACTICS, probe_theorem

        return AuditProbes(tuple(PROBES), ROOT_TACTIC, WITNESS_TACTICS, probe_theorem)


class CoqSketches(SketchDialect):
    """Coq sketches: ``hole`` stands for a tactic that automation must find (``sketch.py``)."""

    whole_proof_sketch: ClassVar[str] = "hole."

    def parse_sketch(self, text: str) -> Sketch | SketchError:
        return sketch.parse_coq(text, validate_tactic)

    def fill_hole(self, template: str, tactic: str) -> str:
        return sketch.fill_hole(template, tactic)

    def hole_candidates(self, claim: str, goals: tuple[str, ...], use_hammer: bool) -> list[str]:
        return sketch.hole_candidates(claim, goals, use_hammer)

    def automation_theorem(self, theorem: Theorem, use_hammer: bool) -> Theorem:
        header = sketch.automation_header(theorem.header, use_hammer)
        return theorem if header == theorem.header else dataclasses.replace(theorem, header=header)


class CoqData(DataHooks):
    """Coq's bank and the goal text of its extracted steps (coqtop's layout)."""

    splits_goals: ClassVar[bool] = True

    def tactic_bank(self) -> Bank:
        from .bank import coq_bank

        return coq_bank()

    def tactic_key(self, tactic: str) -> str:
        """White space normalised, without the sentence's final period (``lia.`` is ``lia``; ``...``,
        ``..`` are kept: not a plain end of sentence)."""
        t = " ".join(tactic.split())
        return t[:-1].rstrip() if t.endswith(".") and not t.endswith("..") else t

    def step_tactic_text(self, tactic: str) -> str:
        """A sentence ends with its period (how the generators and the few-shot prompt write tactics)."""
        return tactic if tactic.endswith(".") else tactic + "."

    def goal_parts(self, goal_text: str) -> tuple[list[str], str]:
        from ...data.steps import parse_coq_goal_text

        return parse_coq_goal_text(goal_text)
