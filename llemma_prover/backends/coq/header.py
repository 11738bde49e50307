"""Mechanical preparation of miniF2F Coq headers for the installed Coq (Debian Coq 8.16.1).

The miniF2F-rocq statements were written for Rocq 9 and a newer Coquelicot. Three rules, applied in
code (the benchmark data stay untouched), make every one of the 488 statements type-check here:

1. **Rocq 9 library names.** ``From Stdlib Require ...`` / ``From Corelib Require ...`` /
   ``From Rocq Require ...`` become ``From Coq Require ...``, and the qualified forms
   ``Require Import Stdlib.X`` / ``Rocq.X`` / ``Corelib.X`` become ``Coq.X``.
2. **Coquelicot complex notations.** Coquelicot 3.2 (Debian) lacks the ``C_scope`` power notation and
   does not bind ``C_scope`` to ``C``, so ``z ^ 2`` or ``Cmod (z * w)`` do not parse as the newer
   library reads them. When a header imports Coquelicot's complex numbers (``Coquelicot.Complex``,
   directly or through the all-in-one ``Coquelicot.Coquelicot``) we append the notations it lacks (see
   ``COQUELICOT_COMPAT``); they are notations and argument scopes only, no new definitions or axioms,
   and they name every constant by its full path, so they hold whichever other parts of Coquelicot the
   header imports. A header that imports other parts only (``Derive``, ``Hierarchy``, ...) or
   requires ``Complex`` without importing it (no ``C_scope`` then) gets nothing.
3. **Automation tactics.** The backend sends only tactics, so a tactic whose library the header does
   not load (``lia``, ``nia``, ``lra``, ``nra``, ``ring``, ``field``, ``zify``,
   ``Z.div_mod_to_equations``) could never be used. We *prepend* ``AUTOMATION_IMPORTS``
   (``Lia Lra Psatz Ring Field`` for the tactics, ``PreOmega`` for ``zify`` and
   ``Z.div_mod_to_equations``, ``ZifyNat ZifyN`` so that ``lia`` understands ``Nat.modulo``/``Nat.div``
   and their ``N`` twins; CoqHammer's ``Tactics`` for ``sauto``/``hauto``, Debian's ``libcoq-hammer``,
   which ``scripts/setup.sh`` installs). Prepending, not appending,
   keeps the header's own imports and definitions the last word on every short name, so the
   statement means exactly what it meant before. These libraries declare no axioms beyond those of
   the real-number library (``Print Assumptions`` of a proof lists only what the proof uses).

``prepare_header`` is pure, cheap and idempotent (applying it twice changes nothing).

``theorem_header`` adds one rule for a theorem with a ``footer`` (text after its proof, e.g. the
``End S.`` of a ``Section`` its header opens): ``Set Default Proof Using "All".`` after the header, so
that at ``End`` the proved theorem and the check's ``Admitted`` reference are both generalised over
every section variable and hypothesis (by default Coq generalises a ``Qed`` proof over the variables
its *proof* uses, an ``Admitted`` one over those of its statement: the two would differ).
"""

from __future__ import annotations

import re

__all__ = [
    "AUTOMATION_IMPORTS",
    "COQUELICOT_COMPAT",
    "imports_coquelicot_complex",
    "needs_coquelicot_compat",
    "prepare_header",
    "theorem_header",
    "rename_rocq_libraries",
    "split_header",
]

#: first line of the block that ``prepare_header`` prepends (also its idempotence marker)
AUTOMATION_IMPORTS = (
    "(* llemma-prover: automation tactics (lia, nia, lra, nra, psatz, ring, field, zify, sauto) *)\n"
    "From Coq Require Import Lia Lra Psatz Ring Field PreOmega ZifyNat ZifyN.\n"
    "From Hammer Require Import Tactics.\n"
)

_COQUELICOT_MARKER = "(* llemma-prover: Coquelicot 3.2 compatibility *)"

_COMPLEX = "Coquelicot.Complex"
_C_BINARY = ("Cplus", "Cminus", "Cmult", "Cdiv")
_C_UNARY = ("Copp", "Cinv", "Re", "Im", "Cmod", "Cconj")

#: appended after a header that requires Coquelicot (the notations older Coquelicot lacks)
COQUELICOT_COMPAT = (
    "\n".join(
        [
            _COQUELICOT_MARKER,
            f'Notation "x ^ n" := (@Coquelicot.Hierarchy.pow_n {_COMPLEX}.C_Ring x n) : C_scope.',
            f"Bind Scope C_scope with {_COMPLEX}.C.",
            *(f"Arguments {_COMPLEX}.{f} _%C _%C." for f in _C_BINARY),
            *(f"Arguments {_COMPLEX}.{f} _%C." for f in _C_UNARY),
        ]
    )
    + "\n"
)

# ``From Stdlib Require`` / ``From Rocq Require`` / ``From Corelib Require`` (any spacing).
_FROM_RE = re.compile(r"\bFrom(\s+)(?:Stdlib|Rocq|Corelib)(\s+Require)\b")
# ``Require Import Stdlib.Reals.Reals`` and similar qualified names after a Require/Import/Export.
_QUALIFIED_RE = re.compile(r"(?<![\w.'])(?:Stdlib|Rocq|Corelib)\.(?=[A-Za-z_])")
# One ``[From Root] Require [Import|Export] M1 M2 ...`` sentence (module names may hold dots).
_REQUIRE_RE = re.compile(
    r"(?:\bFrom\s+(?P<root>[\w.']+)\s+)?\bRequire\b(?P<body>.*?)\.(?=\s|$)", re.DOTALL
)
# Coq comments (not nested beyond one level: enough to keep a commented-out Require from counting)
_COMMENT_RE = re.compile(r"\(\*(?:[^*(]|\*(?!\))|\((?!\*))*\*\)", re.DOTALL)
# One Require/Import/Export sentence: up to the first period followed by white space or the end.
_REQUIRE_SENTENCE_RE = re.compile(r"\b(?:Require|Import|Export)\b.*?\.(?=\s|$)", re.DOTALL)


def rename_rocq_libraries(header: str) -> str:
    """Rule 1: Rocq 9 logical names (``Stdlib``, ``Rocq``, ``Corelib``) to Coq 8.16's ``Coq``."""
    text = _FROM_RE.sub(r"From\1Coq\2", header)
    # Only inside Require/Import/Export sentences, so that a definition or a comment that happens
    # to mention "Stdlib." is left alone.
    return _REQUIRE_SENTENCE_RE.sub(lambda m: _QUALIFIED_RE.sub("Coq.", m.group(0)), text)


def imports_coquelicot_complex(header: str) -> bool:
    """Whether a ``Require Import``/``Require Export`` of the header brings in ``Coquelicot.Complex``
    (itself, or the all-in-one ``Coquelicot.Coquelicot`` that exports it)."""
    for m in _REQUIRE_RE.finditer(_COMMENT_RE.sub(" ", header)):
        words = m.group("body").split()
        if not words or words[0] not in ("Import", "Export"):
            continue
        for module in words[1:]:
            path = f"{m.group('root')}.{module}" if m.group("root") else module
            parts = path.split(".")
            if parts[-1] in ("Complex", "Coquelicot") and (parts[0] == "Coquelicot" or len(parts) == 1
                                                          and parts[-1] == "Coquelicot"):
                return True
    return False


def needs_coquelicot_compat(header: str) -> bool:
    """Whether the header imports Coquelicot's complex numbers and does not yet carry our block."""
    return _COQUELICOT_MARKER not in header and imports_coquelicot_complex(header)


def prepare_header(header: str) -> str:
    """The header as Coq 8.16.1 + Coquelicot 3.2 needs it (rules 1-3 of the module docstring)."""
    text = rename_rocq_libraries(header)
    if needs_coquelicot_compat(text):
        if not text.endswith("\n"):
            text += "\n"
        text += COQUELICOT_COMPAT
    if not text.startswith(AUTOMATION_IMPORTS):
        text = AUTOMATION_IMPORTS + text
    return text


def split_header(header: str) -> tuple[str, str]:
    """(the automation prelude, the rest) of a prepared header: prover processes load the prelude
    once (``-l``) and the rest sentence by sentence, so a header change keeps the process."""
    if header.startswith(AUTOMATION_IMPORTS):
        return AUTOMATION_IMPORTS, header[len(AUTOMATION_IMPORTS) :]
    return "", header


#: appended to the header of a theorem that has a footer (module docstring)
SECTION_PROOF_USING = 'Set Default Proof Using "All".\n'


def theorem_header(header: str, footer: str) -> str:
    """The prepared header of a theorem whose file ends with ``footer`` ("" for miniF2F)."""
    text = prepare_header(header)
    if not footer.strip():
        return text
    return (text if text.endswith("\n") else text + "\n") + SECTION_PROOF_USING
