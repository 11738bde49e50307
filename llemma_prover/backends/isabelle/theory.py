"""Theory files for miniF2F Isabelle problems, and validation of untrusted proof text.

The data convention (benchmarks README): ``header`` = ``theory NAME imports ... begin`` (+ auxiliary
definitions), ``statement`` = ``theorem NAME: ... shows "..."``; the file is
``header + "\\n" + statement + "\\n" + proof + "\\n\\nend\\n"`` and must be called ``NAME.thy``.

Model-written proof text must not be able to cheat or escape: no ``sorry``/``oops``, no axioms, no
ML, no ending the theory early, no options (``quick_and_dirty``) -- ``validate_proof`` refuses them
before the text reaches Isabelle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...core.types import Theorem

#: what the template directory calls the per-problem theory (``isabelle/Template.thy``)
TEMPLATE_NAME = "Template.thy"

#: Isar keywords that a proof may never contain (the check would then prove nothing, or run code).
FORBIDDEN_KEYWORDS: tuple[str, ...] = (
    "sorry",
    "oops",
    "admit",
    "axiomatization",
    "axioms",
    "axiom",
    "ML",
    "ML_file",
    "ML_val",
    "ML_command",
    "ML_prf",
    "SML_file",
    "setup",
    "local_setup",
    "method_setup",
    "attribute_setup",
    "declaration",
    "syntax_declaration",
    "simproc_setup",
    "oracle",
    "declare",
    "end",
    "theory",
    "begin",
    "quick_and_dirty",
    "skip_proof",
    "bundle",
    "unbundle",
    "code_printing",
    "export_code",
    "sledgehammer",
    "nitpick",
    "quickcheck",
    "try",
    "try0",
    "print_state",
    # proof methods whose argument is ML source
    "tactic",
    "raw_tactic",
    "ml_tactic",
    "ML_tactic",
)

#: Isar commands a proof may consist of (Isabelle/Isar proof commands; ``sorry``/``oops`` excluded).
#: The re-check's parse audit (``audit.py``) applies this list with Isabelle's own parser.
PROOF_COMMANDS: tuple[str, ...] = (
    "proof", "qed", "by", "..", ".", "done", "apply", "apply_end", "defer", "prefer", "back", "next",
    "{", "}", "have", "show", "hence", "thus", "fix", "assume", "presume", "define", "obtain", "then",
    "from", "with", "using", "unfolding", "note", "let", "case", "also", "finally", "moreover",
    "ultimately", "consider", "subgoal", "supply", "include", "txt",
)  # fmt: skip

_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_']*")
_INNER_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\\<open>.*?\\<close>|‹.*?›', re.DOTALL)
_COMMENT_RE = re.compile(r"\(\*.*?\*\)", re.DOTALL)


def outer_words(text: str) -> list[str]:
    """Words of the outer syntax: quoted inner terms, cartouches and comments are skipped."""
    stripped = _INNER_RE.sub(" ", _COMMENT_RE.sub(" ", text))
    return _WORD_RE.findall(stripped)


def validate_proof(proof: str, extra_forbidden: Sequence[str] = ()) -> str | None:
    """``None`` if ``proof`` may be checked, else a one-line reason for refusing it."""
    if any("\ud800" <= c <= "\udfff" for c in proof):
        return "lone surrogate in proof (not encodable as UTF-8)"  # the .thy file could not be written
    if "(*" in _COMMENT_RE.sub("", proof) or "*)" in _COMMENT_RE.sub("", proof):
        return "unbalanced comment"
    if proof.count('"') % 2:
        return "unbalanced quotation marks"
    forbidden = set(FORBIDDEN_KEYWORDS) | set(extra_forbidden)
    for w in outer_words(proof):
        if w in forbidden:
            return f"forbidden keyword {w!r} in proof"
    if not proof.strip():
        return "empty proof"
    words = outer_words(proof)
    if words and words[0] not in PROOF_COMMANDS:
        return f"a proof starts with a proof command, not {words[0]!r} (it would extend the statement)"
    return None


def theory_text(theorem: Theorem, proof: str) -> str:
    """The whole ``NAME.thy`` for ``theorem`` with ``proof`` (not validated here)."""
    header = theorem.header if theorem.header.endswith("\n") else theorem.header + "\n"
    return f"{header}\n{theorem.statement}\n{proof.rstrip()}\n\nend\n"


def theory_name(theorem: Theorem) -> str:
    """The theory name the header declares (the file must be called ``<it>.thy``)."""
    m = re.search(r"\btheory\s+(\S+)", theorem.header)
    return m.group(1).strip('"') if m else theorem.name


def proof_start_line(theorem: Theorem) -> int:
    """1-based line number where the proof begins in ``theory_text``."""
    header = theorem.header if theorem.header.endswith("\n") else theorem.header + "\n"
    return (header + "\n" + theorem.statement + "\n").count("\n") + 1
