"""Validation of model-written Coq tactics: exactly one tactic sentence, nothing else.

``validate_tactic(text)`` returns the tactic normalised to one sentence *without* its final period,
or raises ``InvalidTactic`` with a one-line reason. It is pure and cheap, and it runs before a
tactic can reach the prover (and again before ``coqc`` re-checks a proof). It is a *first filter*:
the backend then lets Coq's own parser decide that the text is exactly one tactic sentence
(``backend.py``, ``ide.IdeTop.parses_to_end``), so a gap in these rules is not a hole.

What is refused, and why:

* **vernacular commands** (``Qed``, ``Admitted``, ``Require``, ``Definition``, ``Set``, ``Print``,
  ``BackTo``, ``Timeout``/``Fail``/``Time`` prefixes, ``Ltac`` ...): Coq's commands all start with a
  capital letter and Coq's tactics do not, so a first word that starts with an upper-case letter is
  refused (the named list below only makes the error message precise);
* tactics that leave the proof unfinished or unchecked: ``admit``, ``give_up`` and the
  ``*_no_check`` family, anywhere in the sentence (``try admit`` too); ``fix``/``cofix``, whose
  guard condition coqtop only checks at ``Qed`` (so a bogus recursive proof shows "No more goals");
* **bullets and braces** (``-``, ``+``, ``*``, ``{``, ``}``, ``2: {``): the backend keeps no focus
  structure; one tactic works on the first goal (or on the goals its selector names);
* **several sentences** in one string: a period followed by a Coq blank (space, tab, newline,
  carriage return) or the end, outside comments and strings -- ``...`` ends a sentence too
  (numbers such as ``1.5`` and qualified names such as ``Nat.add_comm`` are not sentence ends);
  comments and strings are read as Coq reads them (``coq_regions``: a string inside a comment is
  a string, so ``(* "*)" *)`` is one comment);
* unbalanced parentheses, brackets, comments or strings; control characters; non-ASCII characters
  that look like a period; empty input; more than ``MAX_TACTIC_CHARS`` characters.

One final period is optional (``"lia"`` and ``"lia."`` are the same tactic).
"""

from __future__ import annotations

import re

__all__ = [
    "COQ_BLANKS",
    "InvalidTactic",
    "MAX_TACTIC_CHARS",
    "comment_end",
    "coq_regions",
    "split_sentence_ends",
    "validate_tactic",
]

#: longest tactic accepted (model output beyond this is garbage, and it bounds coqtop's input)
MAX_TACTIC_CHARS = 4000

#: vernacular commands named in error messages (any capitalised first word is refused anyway)
VERNACULAR: frozenset[str] = frozenset(
    [
        "Qed",
        "Defined",
        "Admitted",
        "Abort",
        "Save",
        "Proof",
        "Require",
        "Import",
        "Export",
        "From",
        "Definition",
        "Fixpoint",
        "CoFixpoint",
        "Lemma",
        "Theorem",
        "Fact",
        "Remark",
        "Corollary",
        "Proposition",
        "Example",
        "Goal",
        "Axiom",
        "Axioms",
        "Parameter",
        "Parameters",
        "Hypothesis",
        "Hypotheses",
        "Variable",
        "Variables",
        "Conjecture",
        "Context",
        "Load",
        "Cd",
        "Redirect",
        "Drop",
        "Declare",
        "Add",
        "Set",
        "Unset",
        "Print",
        "Check",
        "Show",
        "Undo",
        "Restart",
        "BackTo",
        "Back",
        "Reset",
        "Timeout",
        "Fail",
        "Time",
        "Info",
        "Ltac",
        "Ltac2",
        "Tactic",
        "Notation",
        "Infix",
        "Module",
        "Section",
        "End",
        "Instance",
        "Existing",
        "Inductive",
        "CoInductive",
        "Record",
        "Structure",
        "Class",
        "Local",
        "Global",
        "Opaque",
        "Transparent",
        "Arguments",
        "Hint",
        "Create",
        "Search",
        "SearchPattern",
        "SearchRewrite",
        "Locate",
        "About",
        "Eval",
        "Compute",
        "Focus",
        "Unfocus",
        "Unfocused",
        "Optimize",
        "Guarded",
        "Abort",
        "Obligation",
        "Next",
        "Solve",
        "Program",
        "Open",
        "Close",
        "Bind",
        "Delimit",
        "Scheme",
        "Combined",
        "Register",
        "Primitive",
        "Extraction",
        "Separate",
        "Recursive",
        "Typeclasses",
        "Succeed",
        "Quit",
        "Exit",
    ]
)

#: lowercase tactics that leave goals unproved or skip type checking. ``fix``/``cofix`` are here
#: because coqtop defers their guard check to ``Qed``: ``fix IH 1; exact IH`` shows "No more goals"
#: for any statement, so a search would stop on a proof that only ``coqc`` rejects. (miniF2F proofs
#: use ``induction`` instead.)
FORBIDDEN_TACTICS: frozenset[str] = frozenset(
    {
        "admit",
        "give_up",
        "exact_no_check",
        "vm_cast_no_check",
        "native_cast_no_check",
        "change_no_check",
        "fix",
        "cofix",
    }
)

#: characters that look like a period (or a line break) but are not ASCII
PERIOD_LOOKALIKES = "\u2024\u2027\u3002\ufe52\uff0e\uff61\u0701\u0702\u2e3c\u00b7\u2219\u22c5\u2028\u2029"

_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_']*")
_BULLET_RE = re.compile(r"^(?:[-+*]+|[{}])")
_SELECTOR_BRACE_RE = re.compile(
    r"^(?:all|par|!|\d+(?:\s*-\s*\d+)?(?:\s*,\s*\d+(?:\s*-\s*\d+)?)*|\[\s*\w+\s*\])\s*:\s*\{$"
)


class InvalidTactic(ValueError):
    """The text is not exactly one admissible tactic sentence."""


def validate_tactic(text: str) -> str:
    """Return ``text`` as one tactic sentence without its final period, or raise ``InvalidTactic``."""
    if not isinstance(text, str):
        raise InvalidTactic("tactic must be a string")
    if len(text) > MAX_TACTIC_CHARS:
        raise InvalidTactic(f"tactic longer than {MAX_TACTIC_CHARS} characters")
    for ch in text:
        code = ord(ch)
        if ch in PERIOD_LOOKALIKES:
            raise InvalidTactic(f"non-ASCII period look-alike U+{code:04X}")
        if (code < 32 and ch not in "\n\t") or 0x7F <= code <= 0x9F or ch in "\ufeff\u200b\u200c\u200d\u2060":
            raise InvalidTactic(f"control or invisible character U+{code:04X}")
    body = text.strip()
    if not body:
        raise InvalidTactic("empty tactic")

    ends = split_sentence_ends(body)  # raises on unbalanced comments/strings
    if ends and ends[-1] == len(body) - 1:
        body = body[:-1].rstrip()
        ends = ends[:-1]
    if ends:
        raise InvalidTactic("more than one sentence (a period followed by white space ends a sentence)")
    if not body:
        raise InvalidTactic("empty tactic")
    if body.endswith("."):
        # ``lia..`` and similar: a run of periods is never a sentence end, so the text cannot be run
        raise InvalidTactic("tactic ends with '..'")

    code_only = _strip_comments_and_strings(body)
    _check_brackets(code_only)

    first = code_only.lstrip()
    if _BULLET_RE.match(first):
        raise InvalidTactic("bullets and braces are not tactics")
    if first.rstrip().endswith("{") and _SELECTOR_BRACE_RE.match(first.rstrip()) or first.strip() == "}":
        raise InvalidTactic("bullets and braces are not tactics")
    words = _WORD_RE.findall(code_only)
    if not words:
        raise InvalidTactic("no tactic name")
    # a parenthesised tactic (``(lia); auto``, what a stripped ``timeout 2 (lia); auto`` is): the
    # tactic inside is judged
    first = first.lstrip("(" + COQ_BLANKS)
    head = _WORD_RE.match(first)
    if head is None:
        # a selector such as ``2: lia`` or ``all: lia``: judge the word after the colon
        sel = re.match(r"^(?:\d+(?:\s*[-,]\s*\d+)*|!|\[\s*\w+\s*\])\s*:\s*", first)
        head = _WORD_RE.match(first[sel.end() :]) if sel else None
    elif head.group(0) in ("all", "par") and re.match(r"^(all|par)\s*:", first):
        head = _WORD_RE.match(first[first.index(":") + 1 :].lstrip())
    if head is None:
        raise InvalidTactic("does not start with a tactic name")
    name = head.group(0)
    if name[0].isupper():
        kind = "vernacular command" if name in VERNACULAR else "capitalised word (Coq commands, not tactics)"
        raise InvalidTactic(f"{name!r} is a {kind}; only tactics are allowed")
    bad = sorted(FORBIDDEN_TACTICS.intersection(words))
    if bad:
        raise InvalidTactic(f"forbidden tactic {bad[0]!r}")
    capital_commands = sorted(w for w in VERNACULAR.intersection(words) if w in _NEVER_INSIDE)
    if capital_commands:
        raise InvalidTactic(f"vernacular {capital_commands[0]!r} inside a tactic")
    return body


#: vernacular words that have no business anywhere inside a tactic (``Admitted`` after ``;`` etc.)
_NEVER_INSIDE = frozenset(
    {"Qed", "Defined", "Admitted", "Abort", "Require", "Ltac", "Timeout", "Drop", "Load"}
)


#: the characters after which a ``.`` ends a sentence for Coq (cLexer.ml, ``blank_or_eof``)
COQ_BLANKS = " \t\n\r"


def coq_regions(text: str) -> list[tuple[str, int, int]]:
    """Split ``text`` as Coq's lexer does into ``("code" | "comment" | "string", start, end)`` regions.

    Coq's rules (cLexer.ml): a string is ``"..."`` with ``""`` for a quote; comments ``(* ... *)``
    nest, and *inside a comment a ``"`` starts a string* that runs to its closing quote, so
    ``(* "*)" *)`` is one comment and ``(* "(*" *)`` is a closed one. Raises ``InvalidTactic`` for an
    unterminated comment or string, and for a ``*)`` outside any comment.
    """
    regions: list[tuple[str, int, int]] = []
    i, n, code_start = 0, len(text), 0
    while i < n:
        if text[i] == '"':
            if code_start < i:
                regions.append(("code", code_start, i))
            end = _string_end(text, i + 1)
            regions.append(("string", i, end))
            i = code_start = end
        elif text.startswith("(*", i):
            if code_start < i:
                regions.append(("code", code_start, i))
            end = comment_end(text, i)
            regions.append(("comment", i, end))
            i = code_start = end
        elif text.startswith("*)", i):
            raise InvalidTactic("comment end '*)' without a start")
        else:
            i += 1
    if code_start < n:
        regions.append(("code", code_start, n))
    return regions


def _string_end(text: str, j: int) -> int:
    """``j``: index after an opening quote -> index after the closing one (``""`` is a quote)."""
    while True:
        k = text.find('"', j)
        if k < 0:
            raise InvalidTactic("unterminated string")
        if text.startswith('""', k):
            j = k + 2
            continue
        return k + 1


def comment_end(text: str, i: int) -> int:
    """End (exclusive) of the comment that starts at ``text[i:i+2] == "(*"``, by Coq's rules (nested;
    a ``"`` inside starts a string). Raises ``InvalidTactic`` when it (or a string in it) is not closed."""
    j, depth, n = i + 2, 1, len(text)
    while depth:
        if j >= n:
            raise InvalidTactic("unterminated comment")
        if text.startswith("(*", j):
            depth, j = depth + 1, j + 2
        elif text.startswith("*)", j):
            depth, j = depth - 1, j + 2
        elif text[j] == '"':
            j = _string_end(text, j + 1)
        else:
            j += 1
    return j


def split_sentence_ends(text: str) -> list[int]:
    """Indices of periods that end a sentence (outside comments and strings), by Coq's rule.

    Coq ends a sentence at a ``.`` (also the last one of ``...``) followed by a Coq blank (space, tab,
    newline, carriage return) or the end of the text. Raises ``InvalidTactic`` for an unterminated
    comment or string. (This is a fast first filter; the backend lets Coq's own parser decide.)
    """
    ends: list[int] = []
    n = len(text)
    for kind, start, end in coq_regions(text):
        if kind != "code":
            continue
        for i in range(start, end):
            if text[i] == "." and (i + 1 == n or text[i + 1] in COQ_BLANKS):
                ends.append(i)
    return ends


def _strip_comments_and_strings(text: str) -> str:
    """The code of ``text`` with every string replaced by ``""`` and every comment by a space."""
    out: list[str] = []
    for kind, start, end in coq_regions(text):
        out.append(text[start:end] if kind == "code" else '""' if kind == "string" else " ")
    return "".join(out)


def _check_brackets(code: str) -> None:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for ch in code:
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack[-1] != pairs[ch]:
                raise InvalidTactic(f"unbalanced {ch!r}")
            stack.pop()
    if stack:
        raise InvalidTactic(f"unbalanced {stack[-1]!r}")
