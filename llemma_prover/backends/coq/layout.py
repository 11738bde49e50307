"""The one layout of a recorded proof step (goal selector, tactic) as Coq sentence text.

The search runs a step as ``Timeout T SEL ( body\\n).``; the proof file that the check compiles and
the exporter writes hold the same step as ``SEL ( body\\n).``. Both come from ``step_sentence``, so
what the search ran and what the check compiles differ only by the ``Timeout T`` prefix: a step the
search accepted cannot be refused by the check for its layout (``all:lra`` once became
``( all:lra\\n).``, which Coq refuses, and a found proof was lost).

* ``split_selector`` finds a goal selector at the start of a tactic: ``2:``, ``1-2, 4:``, ``all:``,
  ``par:``, ``!:``, ``[H]:``, with or without a blank after the colon (never ``:=``);
* the body goes inside parentheses: Coq's grammar then reads it as an ``ltac_expr``, a tactic,
  never a vernacular command; the selector stays outside (Coq does not accept one inside);
* bullets and braces never get here: ``validate_tactic`` refuses them (the backend keeps no focus
  structure), for the search and for the check alike.
"""

from __future__ import annotations

import re

from .sentences import validate_tactic

__all__ = ["proof_sentence", "split_selector", "step_sentence"]

#: a goal selector in front of a tactic (``2:``, ``1-2, 4:``, ``all:``, ``par:``, ``!:``, ``[H]:``)
SELECTOR_RE = re.compile(
    r"\s*(?P<sel>(?:\d+(?:\s*-\s*\d+)?(?:\s*,\s*\d+(?:\s*-\s*\d+)?)*|all|par|!|\[\s*[A-Za-z_][A-Za-z0-9_']*\s*\])"
    r"\s*:)(?!=)"
)


def split_selector(tactic: str) -> tuple[str, str]:
    """(goal selector with its colon, blanks collapsed, or ``""``; the tactic after it, stripped)."""
    m = SELECTOR_RE.match(tactic)
    if m is None:
        return "", tactic.strip()
    return "".join(m.group("sel").split()).replace(",", ", "), tactic[m.end() :].strip()


def step_sentence(tactic: str, timeout: int | None = None) -> str:
    """``[Timeout T ]SEL ( body\\n)`` -- the sentence of one step without its final period.

    ``tactic`` is a validated sentence (``validate_tactic``); ``timeout`` is the search's ``T``
    (``None`` in a proof file)."""
    sel, body = split_selector(tactic)
    prefix = f"Timeout {timeout} " if timeout is not None else ""
    return f"{prefix}{sel + ' ' if sel else ''}( {body}\n)"


def proof_sentence(tactic: str) -> str:
    """The step as a proof file holds it: ``SEL ( body\\n).`` (``InvalidTactic`` if ``tactic`` is not
    one admissible sentence)."""
    return step_sentence(validate_tactic(tactic)) + "."
