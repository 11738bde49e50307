"""The Coq sketch dialect (``CoqBackend.parse_sketch`` / ``fill_hole`` / ``hole_candidates``).

A proof script (``Proof.``/``Qed.`` optional) in which the word ``hole`` -- as code, by Coq's lexer
(``hole_spans``), never inside a string or a comment -- stands for a tactic that automation must
find: ``assert (h1 : x = 2) by hole.`` or a bare ``hole.``. Bullets and braces are dropped (they
only focus goals; without them each tactic works on the first goal, which is what they focus),
comments are dropped, every other sentence must pass the backend's tactic validator (so ``Admitted``,
``admit``, vernacular and the like are refused). Sentences are split and comments found
with the backend's own lexer (``sentences.py``).

Hole automation: decision procedures first (cheap when they fail), then rewriting/simplification
combinations, then general search. Each is wrapped so that it must *close* the hole (``fill_hole``);
``intros;`` is prefixed when the claim is an implication/universal/negation. CoqHammer's
reconstruction tactics (``sauto``, ``hauto``) are added only when ``use_hammer`` is set and the
``Hammer`` library is installed (Debian ``libcoq-hammer``); see ``docs/autoformalize.md`` for the
measurement that decides the default.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..sketch import MAX_SKETCH_CHARS, Sketch, SketchError, Step, goal_claim, strip_fences, word_re
from .sentences import InvalidTactic, coq_regions, split_sentence_ends, validate_tactic

#: Coq hole tactics, in the order they are tried
COQ_HOLE_TACTICS: tuple[str, ...] = (
    "assumption",
    "lia",
    "lra",
    "nia",
    "nra",
    "field",
    "ring",
    "reflexivity",
    "auto",
    "easy",
    "congruence",
    "tauto",
    "subst; lia",
    "subst; nia",
    "subst; lra",
    "subst; nra",
    "field_simplify; lra",
    "field_simplify; nra",
    "simpl; lia",
    "simpl; ring",
    "vm_compute; reflexivity",
    "apply pow2_ge_0",
    "apply pow_le; lra",
    "apply Rmult_le_pos; lra",
    "apply Rmult_lt_0_compat; lra",
    "firstorder",
    "intuition",
    "auto with real",
    "auto with zarith",
    "eauto",
)

#: CoqHammer's reconstruction tactics (no external provers needed), tried last when enabled
COQ_HAMMER_TACTICS: tuple[str, ...] = ("sauto", "hauto")

#: the Coq import that makes them available (added to the theorem header when enabled)
COQ_HAMMER_IMPORT = "From Hammer Require Import Tactics.\n"


def needs_intros(claim: str) -> bool:
    """Whether a Coq claim has premises/binders that ``intros`` should move into the context."""
    c = claim.strip()
    if not c:
        return False
    if c.startswith(("forall", "~", "(~")):
        return True
    depth = 0
    for i, ch in enumerate(c):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and c.startswith("->", i):
            return True
    return False


#: the conclusion of the first goal (the line(s) after ``====``)
coq_goal_claim = goal_claim


def coq_hole_tactics(claim: str, use_hammer: bool = False) -> list[str]:
    """The ranked tactics for a Coq hole whose claim is ``claim``."""
    base = list(COQ_HOLE_TACTICS) + (list(COQ_HAMMER_TACTICS) if use_hammer else [])
    if needs_intros(claim):
        return [f"intros; {t}" for t in base]
    return base


def strip_coq_comments(text: str) -> str | SketchError:
    """Replace every ``(* ... *)`` comment by a space, leaving strings alone, with Coq's own lexical rules
    (``backends.coq.sentences.coq_regions``: comments nest; a string inside a comment is a string)."""
    try:
        regions = coq_regions(text)
    except InvalidTactic as exc:
        return SketchError(str(exc))
    return "".join(" " if kind == "comment" else text[start:end] for kind, start, end in regions)


_BY_BEFORE_RE = re.compile(r"\bby\s+$")
_HOLE_RE = word_re("hole")


def hole_spans(sentence: str) -> list[tuple[int, int]]:
    """Where ``hole`` stands as a tactic in ``sentence``: whole-word occurrences in *code*, by Coq's
    lexer (``coq_regions``) -- never inside a string (``idtac "hole"``) or a comment. Empty when the
    sentence does not lex (the validator refuses it then)."""
    try:
        regions = coq_regions(sentence)
    except InvalidTactic:
        return []
    return [
        (start + m.start(), start + m.end())
        for kind, start, end in regions
        if kind == "code"
        for m in _HOLE_RE.finditer(sentence[start:end])
    ]


def _paren(tactic: str) -> str:
    t = tactic.strip()
    return t if re.fullmatch(r"[\w']+", t) else f"({t})"


def fill_hole(template: str, tactic: str) -> str:
    """Replace the hole of ``template`` by ``tactic`` so that the step fails unless it closes the hole.

    The hole is the first one ``hole_spans`` finds (text inside strings is never a hole)."""
    spans = hole_spans(template)
    if not spans:
        return template
    start, end = spans[0]
    before, after = template[:start], template[end:]
    if _BY_BEFORE_RE.search(before):
        # ``assert (h : P) by t`` already fails unless t proves P
        return before + _paren(tactic) + after
    return before + f"solve [ {tactic.strip()} ]" + after


_COQ_ENDS = {"Qed", "Defined"}
_COQ_REFUSED_ENDS = {"Admitted", "Abort", "Save"}
_BULLET_PREFIX_RE = re.compile(r"^\s*(?:(?:[-+*]+(?=\s|$))|[{}])\s*")
_ASSERT_CLAIM_RE = re.compile(
    r"^\s*(?:assert|have|enough|cut)\s*\(\s*[\w']+\s*:\s*(?P<claim>.*)\)\s*by\b", re.S
)


def parse_coq(text: str, validate: Callable[[str], object] = validate_tactic) -> Sketch | SketchError:
    """Parse a Coq sketch; ``validate(str)`` is the backend's tactic validator (raises ValueError)."""
    source = text
    if len(text) > MAX_SKETCH_CHARS:
        return SketchError(f"sketch longer than {MAX_SKETCH_CHARS} characters")
    body = strip_coq_comments(strip_fences(text))
    if isinstance(body, SketchError):
        return body
    try:
        ends = split_sentence_ends(body)
    except ValueError as exc:
        return SketchError(f"cannot split into sentences: {exc}")
    raw: list[str] = []
    start = 0
    for e in ends:
        raw.append(body[start : e + 1])
        start = e + 1
    tail = body[start:]
    steps: list[Step] = []
    closed = False
    for k, chunk in enumerate(raw, start=1):
        sent = chunk
        while True:
            m = _BULLET_PREFIX_RE.match(sent)
            if not m or m.end() == 0:
                break
            sent = sent[m.end() :]
        sent = sent.strip()
        if sent.endswith("."):
            sent = sent[:-1].rstrip()
        if not sent:
            continue
        head = sent.split()[0]
        if head == "Proof" and not steps:
            continue
        if head in _COQ_ENDS:
            closed = True
            break
        if head in _COQ_REFUSED_ENDS:
            return SketchError(f"sentence {k}: {head} is not allowed in a sketch")
        holes = hole_spans(sent)
        is_hole = bool(holes)
        probe = fill_hole(sent, "idtac") if is_hole else sent
        try:
            validate(probe)
        except ValueError as exc:
            return SketchError(f"sentence {k} ({sent[:60]!r}): {exc}")
        if len(holes) > 1:
            return SketchError(f"sentence {k}: more than one hole in one sentence")
        claim = ""
        if is_hole:
            m = _ASSERT_CLAIM_RE.match(sent)
            claim = m.group("claim").strip() if m else ""
        steps.append(Step(text=sent, hole=is_hole, claim=claim))
    if not closed and re.sub(r"[\s{}+*-]", "", tail):
        return SketchError(f"text after the last sentence: {tail.strip()[:60]!r}")
    if not steps:
        return SketchError("empty sketch")
    return Sketch(backend="coq", source=source, steps=tuple(steps))


def hole_candidates(claim: str, goals: tuple[str, ...], use_hammer: bool) -> list[str]:
    """The ranked tactics for a hole: its asserted claim, else the goal it stands on, decides ``intros``."""
    return coq_hole_tactics(claim or coq_goal_claim(goals), use_hammer=use_hammer)


def automation_header(header: str, use_hammer: bool) -> str:
    """``header`` with what the hole automation needs loaded (CoqHammer's tactics when enabled)."""
    if use_hammer and COQ_HAMMER_IMPORT not in header:
        return COQ_HAMMER_IMPORT + header
    return header
