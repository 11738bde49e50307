"""Proof sketches as data: what each backend's sketch dialect parses model text into.

A *sketch* is the structure of a proof whose small steps are left open as **holes**. Each backend
parses its own dialect (``SketchDialect.parse_sketch``: ``coq/sketch.py``, ``lean4/sketch.py``,
``isabelle/sketch.py``) into one of two shapes:

* stepwise (Coq, Lean 4): ``steps``, run one by one through ``apply``; a hole step is a template that
  ``SketchDialect.fill_hole`` completes with a candidate tactic;
* whole text (Isabelle): ``text`` with the character ``spans`` of its holes, filled by whole-file
  probes (``ProverBackend.probe``).

Parsing never raises on model output: a parser returns a ``Sketch`` or a ``SketchError`` value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_SKETCH_CHARS", "Probe", "Sketch", "SketchError", "Step", "goal_claim", "strip_fences",
           "word_re"]

MAX_SKETCH_CHARS = 20000


@dataclass(frozen=True)
class Step:
    """One step of a stepwise sketch: a tactic sentence, or a template with a hole."""

    text: str
    hole: bool = False
    #: for holes: the claim the hole must prove when it can be read off the step (``assert (h : P)``)
    claim: str = ""


@dataclass(frozen=True)
class Sketch:
    backend: str
    #: the sketch as the model wrote it
    source: str
    #: stepwise sketches: the steps; whole-text sketches: empty
    steps: tuple[Step, ...] = ()
    #: whole-text sketches: the proof text and the (start, end) character spans of its holes
    text: str = ""
    spans: tuple[tuple[int, int], ...] = ()

    @property
    def n_holes(self) -> int:
        # a sketch has steps or spans, never both: the other term is zero
        return len(self.spans) + sum(1 for s in self.steps if s.hole)

    def hole_texts(self) -> list[str]:
        return [self.text[a:b] for a, b in self.spans] + [s.text for s in self.steps if s.hole]

    def render_text(self, closers: list[str | None], default: str = "sorry") -> str:
        """The whole text with hole i replaced by ``closers[i]`` (``default`` where it is None)."""
        out: list[str] = []
        pos = 0
        for i, (a, b) in enumerate(self.spans):
            out.append(self.text[pos:a])
            c = closers[i] if i < len(closers) else None
            out.append(c if c is not None else default)
            pos = b
        out.append(self.text[pos:])
        return "".join(out)

    #: the name the Isabelle filler knew it by
    render_isabelle = render_text

    def hole_line(self, index: int, closers: list[str | None], default: str = "sorry") -> int:
        """0-based line, within ``render_text(closers, default)``, on which hole ``index`` starts."""
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


@dataclass(frozen=True)
class Probe:
    """The outcome of one whole-file probe (``ProverBackend.probe``): a value, like a tactic error."""

    ok: bool
    timed_out: bool
    #: the first error (or "timeout"), empty when ok
    message: str
    #: proof methods the prover's own search proposed at the line asked about (re-checked by the caller)
    suggestions: tuple[str, ...] = ()


_FENCE_RE = re.compile(r"^```[a-zA-Z0-9_-]*\s*$", re.MULTILINE)


def strip_fences(text: str) -> str:
    return _FENCE_RE.sub("", text)


def word_re(word: str) -> re.Pattern[str]:
    """``word`` as a whole identifier (not part of a longer name or a qualified one)."""
    return re.compile(rf"(?<![\w'.]){re.escape(word)}(?![\w'])")


def goal_claim(goals: tuple[str, ...]) -> str:
    """The conclusion of the first goal of a state's goal texts: what follows a ``====`` rule (Coq's
    layout), else the whole first goal."""
    if not goals:
        return ""
    first = goals[0]
    if "============================" in first:
        return first.split("============================", 1)[1].strip()
    return first.strip()
