"""The Lean 4 sketch dialect (``Lean4Backend.parse_sketch`` / ``fill_hole`` / ``hole_candidates``).

A tactic block in which ``sorry`` is a hole; one step per top-level line (indented continuation lines
belong to the step above). Holes are attacked with the ``bank`` generator's Lean tactics, by prior
weight, without the ones that cannot close a goal by themselves.
"""

from __future__ import annotations

from ..sketch import MAX_SKETCH_CHARS, Sketch, SketchError, Step, strip_fences, word_re

#: Lean 4 bank entries that cannot close a goal by themselves (they only restructure it)
NON_CLOSING = frozenset({"intro h", "intros", "constructor", "ring_nf", "field_simp", "norm_num at *"})

_SORRY_RE = word_re("sorry")


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
    for k, block in enumerate(steps, start=1):
        t = "\n".join(block)
        n = len(_SORRY_RE.findall(t))
        if n > 1:
            return SketchError(f"step {k}: more than one sorry in one step")
        for bad in ("admit", "native_decide", "axiom", "sorryAx"):
            if word_re(bad).search(t):
                return SketchError(f"step {k}: {bad!r} is not allowed in a sketch")
        out.append(Step(text=t, hole=n == 1))
    return Sketch(backend=backend, source=source, steps=tuple(out))


def fill_hole(template: str, tactic: str) -> str:
    """Replace the ``sorry`` of ``template`` by ``tactic`` (parenthesized unless the step says ``by``)."""
    return _SORRY_RE.sub(
        lambda _m: f"({tactic.strip()})" if "by" not in template else tactic.strip(), template, count=1
    )


def hole_tactics() -> list[str]:
    """The ``bank`` generator's Lean tactics, by prior weight, without the non-closing ones."""
    from .bank import LEAN4_BANK

    ranked = sorted(LEAN4_BANK, key=lambda e: -e.weight)
    return [e.tactic for e in ranked if e.tactic not in NON_CLOSING]
