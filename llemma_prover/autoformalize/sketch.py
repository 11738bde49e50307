"""Formal proof sketches with holes, per backend: parsing untrusted model text, and filling holes.

A *sketch* is the structure of a proof whose small steps are left open as **holes**:

* **Coq**: a proof script (``Proof.``/``Qed.`` optional) in which the word ``hole`` stands for a
  tactic that automation must find: ``assert (h1 : x = 2) by hole.`` or a bare ``hole.``. Bullets
  and braces are dropped (they only focus goals; without them each tactic works on the first goal,
  which is what they focus), comments are dropped, every other sentence must pass the Coq backend's
  tactic validator (so ``Admitted``, ``admit``, vernacular and the like are refused).
* **Lean 4**: a tactic block in which ``sorry`` is a hole; one step per top-level line (indented
  continuation lines belong to the step above).
* **Isabelle**: Isar proof text in which ``sledgehammer`` (the Draft-Sketch-Prove convention) or
  ``sorry`` is a hole where a proof method goes: ``have "x = 2" sledgehammer``.

Parsing never raises on model output: ``parse_sketch`` returns a ``Sketch`` or a ``SketchError`` value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: the hole marker(s) of each backend
HOLE_MARKERS: dict[str, tuple[str, ...]] = {
    "coq": ("hole",),
    "lean4": ("sorry",),
    "leandojo": ("sorry",),
    "isabelle": ("sledgehammer", "sorry"),
}

#: a sketch with exactly one hole for the whole proof (``--generator none``)
WHOLE_PROOF_HOLE: dict[str, str] = {
    "coq": "hole.",
    "lean4": "sorry",
    "leandojo": "sorry",
    "isabelle": "sledgehammer",
}

MAX_SKETCH_CHARS = 20000


@dataclass(frozen=True)
class Step:
    """One step of a stepwise (Coq / Lean) sketch: a tactic sentence, or a template with a hole."""

    text: str
    hole: bool = False
    #: for holes: the claim the hole must prove when it can be read off the step (``assert (h : P)``)
    claim: str = ""

    def render(self, backend: str, tactic: str) -> str:
        """The step with its hole replaced by ``tactic``."""
        if not self.hole:
            return self.text
        return fill_template(backend, self.text, tactic)


@dataclass(frozen=True)
class Sketch:
    backend: str
    #: the sketch as the model wrote it
    source: str
    #: stepwise backends: the steps; Isabelle: empty
    steps: tuple[Step, ...] = ()
    #: Isabelle: the proof text and the (start, end) character spans of its holes
    text: str = ""
    spans: tuple[tuple[int, int], ...] = ()

    @property
    def n_holes(self) -> int:
        return len(self.spans) if self.backend == "isabelle" else sum(1 for s in self.steps if s.hole)

    def hole_texts(self) -> list[str]:
        if self.backend == "isabelle":
            return [self.text[a:b] for a, b in self.spans]
        return [s.text for s in self.steps if s.hole]

    def render_isabelle(self, closers: list[str | None], default: str = "sorry") -> str:
        """The Isar text with hole i replaced by ``closers[i]`` (``default`` where it is None)."""
        out: list[str] = []
        pos = 0
        for i, (a, b) in enumerate(self.spans):
            out.append(self.text[pos:a])
            c = closers[i] if i < len(closers) else None
            out.append(c if c is not None else default)
            pos = b
        out.append(self.text[pos:])
        return "".join(out)

    def hole_line(self, index: int, closers: list[str | None], default: str = "sorry") -> int:
        """0-based line, within ``render_isabelle(closers, default)``, on which hole ``index`` starts."""
        out: list[str] = []
        pos = 0
        for i, (a, b) in enumerate(self.spans[:index]):
            out.append(self.text[pos:a])
            c = closers[i] if i < len(closers) else None
            out.append(c if c is not None else default)
            pos = b
        out.append(self.text[pos : self.spans[index][0]])
        return "".join(out).count("\n")


@dataclass(frozen=True)
class SketchError:
    """Why a sketch was refused (never reached the prover)."""

    message: str


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"^```[a-zA-Z0-9_-]*\s*$", re.MULTILINE)


def strip_fences(text: str) -> str:
    return _FENCE_RE.sub("", text)


def strip_coq_comments(text: str) -> str | SketchError:
    """Replace every ``(* ... *)`` comment by a space, leaving strings alone, with Coq's own lexical rules
    (``backends.coq.sentences.coq_regions``: comments nest; a string inside a comment is a string)."""
    from ..backends.coq.sentences import InvalidTactic, coq_regions

    try:
        regions = coq_regions(text)
    except InvalidTactic as exc:
        return SketchError(str(exc))
    return "".join(" " if kind == "comment" else text[start:end] for kind, start, end in regions)


def _word_re(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w'.]){re.escape(word)}(?![\w'])")


_BY_HOLE_RE = re.compile(r"\bby\s+hole(?![\w'])")
_HOLE_RE = _word_re("hole")


def _paren(tactic: str) -> str:
    t = tactic.strip()
    return t if re.fullmatch(r"[\w']+", t) else f"({t})"


def fill_template(backend: str, template: str, tactic: str) -> str:
    """Replace the hole of ``template`` by ``tactic`` so that the step fails unless it closes the hole."""
    if backend == "coq":
        if _BY_HOLE_RE.search(template):
            # ``assert (h : P) by t`` already fails unless t proves P
            return _BY_HOLE_RE.sub(lambda _m: "by " + _paren(tactic), template, count=1)
        return _HOLE_RE.sub(lambda _m: f"solve [ {tactic.strip()} ]", template, count=1)
    if backend in ("lean4", "leandojo"):
        return _word_re("sorry").sub(
            lambda _m: f"({tactic.strip()})" if "by" not in template else tactic.strip(), template, count=1
        )
    raise ValueError(f"no stepwise holes for backend {backend!r}")


_COQ_ENDS = {"Qed", "Defined"}
_COQ_REFUSED_ENDS = {"Admitted", "Abort", "Save"}
_BULLET_PREFIX_RE = re.compile(r"^\s*(?:(?:[-+*]+(?=\s|$))|[{}])\s*")
_ASSERT_CLAIM_RE = re.compile(
    r"^\s*(?:assert|have|enough|cut)\s*\(\s*[\w']+\s*:\s*(?P<claim>.*)\)\s*by\b", re.S
)


def parse_coq(text: str, validate: object) -> Sketch | SketchError:
    """Parse a Coq sketch; ``validate(str) -> str`` is the backend's tactic validator (raises ValueError)."""
    from ..backends.coq.sentences import split_sentence_ends  # same sentence rules as the backend

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
        is_hole = bool(_HOLE_RE.search(sent))
        probe = fill_template("coq", sent, "idtac") if is_hole else sent
        try:
            validate(probe)  # type: ignore[operator]
        except ValueError as exc:
            return SketchError(f"sentence {k} ({sent[:60]!r}): {exc}")
        if is_hole and len(_HOLE_RE.findall(sent)) > 1:
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


def parse_lean(text: str, backend: str = "lean4") -> Sketch | SketchError:
    """Parse a Lean 4 tactic-block sketch: one step per top-level line, ``sorry`` marks holes."""
    source = text
    if len(text) > MAX_SKETCH_CHARS:
        return SketchError(f"sketch longer than {MAX_SKETCH_CHARS} characters")
    body = strip_fences(text)
    lines = [ln for ln in body.split("\n") if ln.strip() and not ln.strip().startswith("--")]
    if lines and lines[0].strip() == "by":
        lines = lines[1:]
    if not lines:
        return SketchError("empty sketch")
    indent = min(len(ln) - len(ln.lstrip()) for ln in lines)
    steps: list[list[str]] = []
    for ln in lines:
        if len(ln) - len(ln.lstrip()) == indent or not steps:
            steps.append([ln[indent:]])
        else:
            steps[-1].append(ln[indent:])
    out: list[Step] = []
    sorry = _word_re("sorry")
    for k, block in enumerate(steps, start=1):
        t = "\n".join(block)
        n = len(sorry.findall(t))
        if n > 1:
            return SketchError(f"step {k}: more than one sorry in one step")
        for bad in ("admit", "native_decide", "axiom", "sorryAx"):
            if _word_re(bad).search(t):
                return SketchError(f"step {k}: {bad!r} is not allowed in a sketch")
        out.append(Step(text=t, hole=n == 1))
    return Sketch(backend=backend, source=source, steps=tuple(out))


def parse_isabelle(text: str) -> Sketch | SketchError:
    """Parse an Isar sketch: holes are ``sledgehammer`` (with optional ``[...]`` options) or ``sorry``."""
    from ..backends.isabelle.theory import validate_proof

    source = text
    if len(text) > MAX_SKETCH_CHARS:
        return SketchError(f"sketch longer than {MAX_SKETCH_CHARS} characters")
    body = strip_fences(text).strip("\n")
    # holes outside quoted terms, cartouches and comments
    masked = re.sub(
        r'"(?:[^"\\]|\\.)*"|\(\*.*?\*\)|\\<open>.*?\\<close>|‹.*?›',
        lambda m: " " * len(m.group(0)),
        body,
        flags=re.S,
    )
    spans = [
        (m.start(), m.end())
        for m in re.finditer(r"(?<![\w'])(?:sledgehammer(?:\s*\[[^\]]*\])?|sorry)(?![\w'])", masked)
    ]
    sk = Sketch(backend="isabelle", source=source, text=body, spans=tuple(spans))
    reason = validate_proof(sk.render_isabelle([], default="by auto"))
    if reason is not None:
        return SketchError(reason)
    return sk


def parse_sketch(backend: str, text: str) -> Sketch | SketchError:
    """Parse model (or file) text into a ``Sketch`` for ``backend``, or say why not."""
    if not isinstance(text, str) or not text.strip():
        return SketchError("empty sketch")
    if backend == "coq":
        from ..backends.coq.sentences import validate_tactic

        return parse_coq(text, validate_tactic)
    if backend in ("lean4", "leandojo"):
        return parse_lean(text, backend)
    if backend == "isabelle":
        return parse_isabelle(text)
    return SketchError(f"no sketch format for backend {backend!r}")
