"""Formal proof sketches with holes: parsing untrusted model text in the backend's dialect.

A *sketch* is the structure of a proof whose small steps are left open as **holes**. Each backend
defines its dialect (``SketchDialect.parse_sketch``, ``fill_hole``: ``backends/parts.py``; the data model is
``backends/sketch.py``):

* **Coq** (``backends/coq/sketch.py``): a proof script (``Proof.``/``Qed.`` optional) in which the word
  ``hole`` stands for a tactic that automation must find: ``assert (h1 : x = 2) by hole.`` or a bare
  ``hole.``. Bullets and braces are dropped, comments are dropped, every other sentence must pass the
  Coq backend's tactic validator (so ``Admitted``, ``admit``, vernacular and the like are refused).
* **Lean 4** (``backends/lean4/sketch.py``): a tactic block in which ``sorry`` is a hole; one step per
  top-level line (indented continuation lines belong to the step above).
* **Isabelle** (``backends/isabelle/sketch.py``): Isar proof text in which ``sledgehammer`` (the
  Draft-Sketch-Prove convention) or ``sorry`` is a hole where a proof method goes:
  ``have "x = 2" sledgehammer``.

Parsing never raises on model output: ``parse_sketch`` returns a ``Sketch`` or a ``SketchError`` value.
"""

from __future__ import annotations

from ..backends.base import sketch_dialect
from ..backends.sketch import MAX_SKETCH_CHARS, Sketch, SketchError, Step, strip_fences
from ..core.errors import ConfigError

__all__ = ["MAX_SKETCH_CHARS", "Sketch", "SketchError", "Step", "parse_sketch", "strip_fences"]


def parse_sketch(backend: str, text: str) -> Sketch | SketchError:
    """Parse model (or file) text into a ``Sketch`` for ``backend``, or say why not."""
    if not isinstance(text, str) or not text.strip():
        return SketchError("empty sketch")
    try:
        dialect = sketch_dialect(backend)
    except ConfigError:
        return SketchError(f"no sketch format for backend {backend!r}")
    return dialect.parse_sketch(text)
