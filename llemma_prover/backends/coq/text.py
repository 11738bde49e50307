"""What the Coq backend answers without a running prover (``CoqBackend``'s classmethods).

Proof files (``proof_text``, ``export_text``), extracted proof steps (``step_goal_text``,
``step_tactic_text``, ``goal_parts``) and the sketch dialect (``sketch.py``): ``backend_class("coq")``
answers them, nothing is started.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from ...core.types import Theorem
from . import sketch
from .header import theorem_header
from .layout import proof_sentence
from .recheck import final_tactics, footer_block, proof_file, without_timeout
from .sentences import InvalidTactic, validate_tactic

if TYPE_CHECKING:
    from ..bank import Bank
    from ..base import AuditProbes
    from ..sketch import Sketch, SketchError

__all__ = ["CoqText"]


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


class CoqText:
    """Mixin of ``CoqBackend``: its capabilities that need no prover."""

    splits_goals: ClassVar[bool] = True
    honours_footer: ClassVar[bool] = True
    whole_proof_sketch: ClassVar[str] = "hole."

    @classmethod
    def audit_probes(cls) -> AuditProbes:
        from ..base import AuditProbes
        from .audit import PROBES, ROOT_TACTIC, WITNESS_TACTICS, probe_theorem

        return AuditProbes(tuple(PROBES), ROOT_TACTIC, WITNESS_TACTICS, probe_theorem)

    @classmethod
    def tactic_bank(cls) -> Bank:
        from .bank import coq_bank

        return coq_bank()

    @classmethod
    def proof_text(cls, theorem: Theorem, proof: Sequence[str]) -> str:
        """Header (prepared), statement, ``Proof.``, one tactic per line, ``Qed.`` (``recheck.proof_file``).

        A tactic that is exactly ``timeout N (T)`` is written as ``T`` (``without_timeout``): the
        timeout bounded what the search spent on it; the re-check must not fail because a loaded
        machine runs ``T`` slower than the search did (``recheck.final_tactics``). ``T`` itself is
        checked as usual. Raises ``InvalidTactic`` if a tactic is not one admissible sentence.
        """
        return proof_file(theorem_header(theorem.header, theorem.footer), theorem.statement,
                          final_tactics(proof), theorem.footer)

    @classmethod
    def artifact_proof(cls, proof: Sequence[str]) -> list[str]:
        """Each tactic that is exactly ``timeout N (T)`` as ``T`` (``recheck.without_timeout``)."""
        return [without_timeout(t) for t in proof]

    @classmethod
    def export_text(
        cls, theorem: Theorem, tactics: Sequence[str], complete: bool, remaining: str = ""
    ) -> str:
        body = "\n".join(_export_sentence(t) for t in tactics)
        end = "Qed." if complete else "Admitted."
        note = remaining.strip() if not complete else ""
        comment = (
            ("\n  (* remaining goals:\n" + _indent(note.replace("*)", "* )"), 5) + "\n  *)") if note else ""
        )
        header, tail = theorem_header(theorem.header, theorem.footer), footer_block(theorem.footer)
        return f"{header}\n{theorem.statement}\nProof.\n{body}{comment}\n{end}\n{tail}"

    @classmethod
    def tactic_key(cls, tactic: str) -> str:
        """White space normalised, without the sentence's final period (``lia.`` is ``lia``; ``...``,
        ``..`` are kept: not a plain end of sentence)."""
        t = " ".join(tactic.split())
        return t[:-1].rstrip() if t.endswith(".") and not t.endswith("..") else t

    @classmethod
    def step_tactic_text(cls, tactic: str) -> str:
        """A sentence ends with its period (how the generators and the few-shot prompt write tactics)."""
        return tactic if tactic.endswith(".") else tactic + "."

    @classmethod
    def goal_parts(cls, goal_text: str) -> tuple[list[str], str]:
        from ...data.steps import parse_coq_goal_text

        return parse_coq_goal_text(goal_text)

    @classmethod
    def parse_sketch(cls, text: str) -> Sketch | SketchError:
        return sketch.parse_coq(text, validate_tactic)

    @classmethod
    def fill_hole(cls, template: str, tactic: str) -> str:
        return sketch.fill_hole(template, tactic)

    @classmethod
    def hole_candidates(cls, claim: str, goals: tuple[str, ...], use_hammer: bool) -> list[str]:
        return sketch.hole_candidates(claim, goals, use_hammer)

    @classmethod
    def automation_theorem(cls, theorem: Theorem, use_hammer: bool) -> Theorem:
        header = sketch.automation_header(theorem.header, use_hammer)
        return theorem if header == theorem.header else dataclasses.replace(theorem, header=header)

