"""Which Lean 4 tactic strings are refused before they reach Lean, and why.

A tactic string comes from a language model: untrusted input. It is refused (``TacticError`` with
``rejected=True``; it never reaches the REPL) when it could close a goal without a proof, run
arbitrary code, or change what the final re-check means. Identifiers are matched as whole Lean
tokens, outside comments and string literals, so ``sorry_lemma`` or a hypothesis called ``h_admit``
are not refused but ``exact sorry`` and ``all_goals admit`` are.

Refused, with the reason (docs/lean4.md repeats this table):

============================  ====================================================================
``sorry``, ``admit``,         close any goal with ``sorryAx`` (``stop`` is ``repeat sorry``);
``stop``, ``sorryAx``         ``decreasing_by sorry``, ``exact sorry`` etc. contain the token
``native_decide``,            prove by running compiled code: the proof depends on the axiom
``decide +native``,           ``Lean.ofReduceBool`` (trusts the compiler, not the kernel). Refused
``ofReduceBool``,             outright; the re-check's axiom whitelist would refuse it anyway.
``ofReduceNat``
``exact?``, ``apply?``,       library search: on failure some versions close the goal with
``rw?``, ``hint``,            ``sorry``; they take unbounded time; the proof they find is not
``library_search``,           a replayable tactic script (the suggestion is; propose that instead)
``aesop?``
``set_option`` (except the    options can switch the kernel off (``debug.skipKernelTC``), change
resource limits below)        elaboration globally, or hide messages; only ``maxHeartbeats``,
                              ``maxRecDepth``, ``synthInstance.maxHeartbeats``,
                              ``synthInstance.maxSize`` are allowed (``set_option X n in tac``)
command keywords: ``axiom``,  in the re-check the proof is pasted into a file after ``by``: a
``theorem``, ``lemma``,       command keyword would end the proof and start a new declaration
``def``, ``example``,         (an ``axiom``, an ``instance``, a redefinition, ``import``...)
``instance``, ``import``,
``macro``, ``syntax``,
``notation``, ``elab``, ...
``#eval``, ``#exit``,         ``#``-commands run code or end the file early
``#print``, any ``#word``
``run_tac``, ``run_cmd``,     run arbitrary meta-level code (IO, ``admitGoal``, environment
``run_elab``, ``by_elab``,    edits) inside the prover
``elab``, ``unsafe``, ``IO``,
``implemented_by``,
``extern``
``@[`` attributes             can register simp lemmas / instances / extern implementations
============================  ====================================================================

Also refused: the empty string, text longer than ``MAX_TACTIC_CHARS``, NUL and other control
characters except newline and tab, and unterminated comments or strings (they would swallow the
rest of the re-check file).
"""

from __future__ import annotations

import re

__all__ = ["ALLOWED_OPTIONS", "ALLOWED_AXIOMS", "MAX_TACTIC_CHARS", "check_tactic"]

MAX_TACTIC_CHARS = 4000

#: axioms a proof may depend on: Lean's three standard axioms
ALLOWED_AXIOMS: frozenset[str] = frozenset({"propext", "Classical.choice", "Quot.sound"})

#: ``set_option NAME`` values a tactic may use (resource limits only)
ALLOWED_OPTIONS: frozenset[str] = frozenset(
    {"maxHeartbeats", "maxRecDepth", "synthInstance.maxHeartbeats", "synthInstance.maxSize"}
)

_REASONS: dict[str, str] = {}
for _words, _why in (
    (("sorry", "admit", "stop", "sorryAx"), "closes goals without proof (sorry)"),
    (
        ("native_decide", "ofReduceBool", "ofReduceNat", "Lean.ofReduceBool", "Lean.ofReduceNat"),
        "relies on the Lean.ofReduceBool axiom (compiled code, not the kernel)",
    ),
    (
        ("exact?", "apply?", "rw?", "hint", "library_search", "aesop?", "rw_search", "says"),
        "library search tactic (may leave sorry, unbounded time; propose its suggestion instead)",
    ),
    (
        (
            "axiom",
            "theorem",
            "lemma",
            "def",
            "definition",
            "example",
            "instance",
            "abbrev",
            "opaque",
            "structure",
            "class",
            "inductive",
            "import",
            "namespace",
            "section",
            "end",
            "universe",
            "variable",
            "open",
            "export",
            "mutual",
            "noncomputable",
            "private",
            "protected",
            "partial",
            "local",
            "scoped",
            "attribute",
            "macro",
            "macro_rules",
            "syntax",
            "notation",
            "infix",
            "infixl",
            "infixr",
            "prefix",
            "postfix",
            "declare_syntax_cat",
            "elab_rules",
            "initialize",
            "builtin_initialize",
            "deriving",
            "add_decl_doc",
            "register_option",
        ),
        "command keyword (would end the proof in the re-check file)",
    ),
    (
        (
            "run_tac",
            "run_cmd",
            "run_elab",
            "run_meta",
            "by_elab",
            "elab",
            "unsafe",
            "IO",
            "implemented_by",
            "extern",
            "unsafeCast",
            "unsafeIO",
            "unsafeBaseIO",
            "unsafeEIO",
            "dbg_trace",
            "dbgTrace",
        ),
        "runs arbitrary meta-level code",
    ),
):
    for _w in _words:
        _REASONS[_w] = _why

# A Lean identifier-ish token: letters (incl. unicode), digits, _, ', !, ?, dots between parts.
# Trailing ? and ! belong to tactic names (exact?, rw?, simp!).
_TOKEN_RE = re.compile(r"[#]?[^\W\d][\w'!?₀-₉ᵢ-ᵪ]*(?:\.[^\W\d][\w'!?₀-₉]*)*", re.UNICODE)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: UTF-16 surrogate code points, which only exist in Python strings, never in valid UTF-8
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_NATIVE_FLAG_RE = re.compile(r"(?:\+\s*native\b|\bnative\s*:=\s*true\b|\bkernel\s*:=\s*false\b)")
_SET_OPTION_RE = re.compile(r"\bset_option\s+([\w.]+)")


def _strip_comments_and_strings(text: str) -> tuple[str, str | None]:
    """Replace comments and string/char literals by spaces. Returns (code, error or None)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                return "", "unterminated comment"
            out.append(" " * (j - i))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                return "", "unterminated string literal"
            out.append('""' + " " * (j - i - 1))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out), None


def check_tactic(tactic: str) -> str | None:
    """``None`` if the tactic may be sent to Lean, else the reason it is refused."""
    if not tactic.strip():
        return "empty tactic"
    if len(tactic) > MAX_TACTIC_CHARS:
        return f"tactic longer than {MAX_TACTIC_CHARS} characters"
    if _CONTROL_RE.search(tactic):
        return "control characters in tactic"
    if _SURROGATE_RE.search(tactic):
        # a lone surrogate (e.g. decoded with errors="surrogateescape") has no UTF-8 encoding: the
        # request could not be written, and Lean reads only UTF-8
        return "lone surrogate in tactic (not encodable as UTF-8)"
    code, err = _strip_comments_and_strings(tactic)
    if err:
        return err
    if "@[" in code:
        return "attribute syntax @[...] (can register lemmas/instances/implementations)"
    if _NATIVE_FLAG_RE.search(code):
        return "native evaluation flag (relies on the Lean.ofReduceBool axiom)"
    for m in _SET_OPTION_RE.finditer(code):
        if m.group(1) not in ALLOWED_OPTIONS:
            return f"set_option {m.group(1)} is not allowed (only {', '.join(sorted(ALLOWED_OPTIONS))})"
    for m in _TOKEN_RE.finditer(code):
        tok = m.group(0)
        if tok.startswith("#"):
            return f"{tok}: '#' commands run code or end the file"
        why = _REASONS.get(tok)
        if why is None and tok.endswith("?") and tok[:-1] in ("exact", "apply", "rw", "aesop"):
            why = _REASONS["exact?"]
        if why is not None:
            return f"{tok}: {why}"
    return None
