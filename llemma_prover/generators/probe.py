"""A generator with a fixed first step and extra candidates: what ``audit`` searches with.

``ProbeGenerator(inner, root_tactic, extra)`` offers only ``root_tactic`` at the root (depth 0), so
every proof it leads to starts with that tactic (the audit's probe: ``llemma_probe.``, defined in
the probe theorem's header); below the root it offers ``extra`` (the audit's witness family,
``exists 0%Z`` ...) before ``inner``'s candidates. ``GeneratorConfig.root_tactic`` /
``extra_tactics`` ask ``make_generator`` for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.types import Candidate, Theorem
from .base import TacticGenerator, dedupe


class ProbeGenerator(TacticGenerator):
    def __init__(self, inner: TacticGenerator, root_tactic: str, extra: Sequence[str] = ()) -> None:
        self.inner = inner
        self.root_tactic = root_tactic
        self.extra = tuple(extra)
        self.name = inner.name

    def start(self) -> None:
        self.inner.start()

    def close(self) -> None:
        self.inner.close()

    def start_theorem(self, theorem: Theorem) -> None:
        self.inner.start_theorem(theorem)

    def _below_root(self, inner: list[Candidate], k: int) -> list[Candidate]:
        extra = [Candidate(t, 0.0, 0) for t in self.extra]
        return dedupe([*extra, *inner], k)

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        return self._below_root(self.inner.generate(goal_text, k), k)

    def generate_at(self, goal_text: str, k: int, depth: int) -> list[Candidate]:
        if depth == 0 and self.root_tactic:
            return [Candidate(self.root_tactic, 0.0, 0)]
        return self._below_root(self.inner.generate_at(goal_text, k, depth), k)

    def generate_batch(self, goal_texts: Sequence[str], k: int) -> list[list[Candidate]]:
        return [self._below_root(c, k) for c in self.inner.generate_batch(goal_texts, k)]

    def describe(self) -> dict[str, object]:
        return {**self.inner.describe(), "root_tactic": self.root_tactic, "extra_tactics": list(self.extra)}
