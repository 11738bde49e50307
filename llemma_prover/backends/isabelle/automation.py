"""Hole-closing automation for Isabelle: the Llemma/DSP heuristics, then Sledgehammer.

``HEURISTICS`` is the list the Llemma evaluation used (after Draft-Sketch-Prove), tried in this order;
``SLEDGEHAMMER`` is the command run when none of them closes a hole, and ``sledgehammer_suggestions``
reads the proof methods it proposes ("Try this: ...") from the prover messages, to be re-checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .protocol import ProverMessage

HEURISTICS: tuple[str, ...] = (
    "by auto",
    "by simp",
    "by blast",
    "by fastforce",
    "by force",
    "by eval",
    "by presburger",
    "by sos",
    "by arith",
    "by linarith",
    "by (auto simp: field_simps)",
)


#: the Sledgehammer invocation placed at a hole (its own time limit in seconds)
def sledgehammer_command(timeout: float) -> str:
    return f"sledgehammer [timeout = {max(1, int(timeout))}]"


_TRY_THIS = re.compile(r"Try this:\s*(?P<method>.+?)\s*(?:\(\s*[\d.]+\s*m?s\s*\))?\s*$", re.MULTILINE)


def sledgehammer_suggestions(messages: Sequence[ProverMessage], line: int | None = None) -> list[str]:
    """Proof methods proposed by Sledgehammer (``Try this: by (metis ...)``), in order, de-duplicated.

    Only messages reported at ``line`` count when it is given (the hole's line)."""
    out: list[str] = []
    for m in messages:
        if line is not None and m.pos.line is not None and m.pos.line != line:
            continue
        for match in _TRY_THIS.finditer(m.message):
            method = match.group("method").strip()
            if method.startswith(("by ", "apply ", "using ", "unfolding ")) and method not in out:
                out.append(method)
    return out
