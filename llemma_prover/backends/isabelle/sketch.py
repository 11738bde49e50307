"""The Isabelle sketch dialect (``IsabelleBackend.parse_sketch``): Isar proof text with holes.

``sledgehammer`` (the Draft-Sketch-Prove convention, with optional ``[...]`` options) or ``sorry``
is a hole where a proof method goes: ``have "x = 2" sledgehammer``. Holes inside quoted terms,
cartouches and comments do not count. The skeleton (every hole a proof method) must pass
``theory.validate_proof``. Isabelle has no cheap states over its server protocol: holes are filled by
whole-theory probes (``IsabelleBackend.probe``).
"""

from __future__ import annotations

import re

from ..sketch import MAX_SKETCH_CHARS, Sketch, SketchError, strip_fences
from .theory import validate_proof

_MASK_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\(\*.*?\*\)|\\<open>.*?\\<close>|‹.*?›', re.S)
_HOLE_RE = re.compile(r"(?<![\w'])(?:sledgehammer(?:\s*\[[^\]]*\])?|sorry)(?![\w'])")


def parse_isabelle(text: str) -> Sketch | SketchError:
    """Parse an Isar sketch: holes are ``sledgehammer`` (with optional ``[...]`` options) or ``sorry``."""
    source = text
    if len(text) > MAX_SKETCH_CHARS:
        return SketchError(f"sketch longer than {MAX_SKETCH_CHARS} characters")
    body = strip_fences(text).strip("\n")
    # holes outside quoted terms, cartouches and comments
    masked = _MASK_RE.sub(lambda m: " " * len(m.group(0)), body)
    spans = [(m.start(), m.end()) for m in _HOLE_RE.finditer(masked)]
    sk = Sketch(backend="isabelle", source=source, text=body, spans=tuple(spans))
    reason = validate_proof(sk.render_text([], default="by auto"))
    if reason is not None:
        return SketchError(reason)
    return sk
