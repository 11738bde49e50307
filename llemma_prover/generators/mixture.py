"""Generator mixing (``--generator bank+retrieval``): several generators' candidates on one scale.

Each part's score is read as a log-probability (the bank's log prior, retrieval's log vote share, a
model's mean token log-prob). The mixture is the weighted mixture of those distributions: a tactic
proposed by parts ``i`` scores ``log(sum_i w_i * exp(score_i))`` (``w_i = 1 / number of parts`` unless
given), so a tactic two parts agree on ranks above one only one proposes, scores stay <= 0 and on the
scale best-first search sums. Tactics are de-duplicated by the backend's ``tactic_key`` (white space;
Coq: also the sentence's final period, which a trained model writes and the bank does not; the first
spelling met is kept). Each part is asked for ``k`` candidates; the mixture returns the best ``k``.

**Stages.** A candidate keeps a cost stage (``Candidate.stage``: the bank defers its expensive tactics
to later expansions of a node): the earliest stage any part that proposes it gives. A part without a
schedule proposes at stage 0, so a tactic the retrieval part found on similar goals runs on the node's
first expansion even when the bank would have deferred it, and a tactic only the bank proposes keeps
the bank's stage (before, every mixed candidate ran at stage 0: mixing undid the bank's schedule).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core.errors import ConfigError
from ..core.types import Candidate, Theorem
from .base import TacticGenerator

__all__ = ["MixtureGenerator", "mix"]


def _spaces(tactic: str) -> str:
    return " ".join(tactic.split())


def mix(parts: Sequence[Sequence[Candidate]], weights: Sequence[float], k: int,
        key: Callable[[str], str] = _spaces) -> list[Candidate]:
    """The best ``k`` of the weighted mixture of ``parts`` (each a generator's candidates), best first.

    ``key``: when two tactics are the same (``DataHooks.tactic_key``; default: equal after
    whitespace normalisation)."""
    mass: dict[str, float] = {}
    spelling: dict[str, str] = {}
    stage: dict[str, int] = {}
    for cands, w in zip(parts, weights, strict=True):
        for c in cands:
            name = key(c.tactic)
            if not name:
                continue
            spelling.setdefault(name, c.tactic.strip())
            # several copies from one part: that part's best copy counts (a part is a distribution)
            mass.setdefault(name, 0.0)
            st = max(0, int(c.stage))
            stage[name] = min(stage.get(name, st), st)
        seen: dict[str, float] = {}
        for c in cands:
            name = key(c.tactic)
            if name and (name not in seen or c.score > seen[name]):
                seen[name] = c.score
        for name, s in seen.items():
            mass[name] += w * math.exp(min(0.0, s))
    out = [Candidate(tactic=spelling[name], score=math.log(m) if m > 0 else -math.inf, stage=stage[name])
           for name, m in mass.items()]
    out.sort(key=lambda c: -c.score)
    return out[:k]


class MixtureGenerator(TacticGenerator):
    """Candidates of several generators, merged by ``mix``; the parts are owned (started/closed) here."""

    #: the default sameness of two tactics: equal after whitespace normalisation
    same_spacing = staticmethod(_spaces)

    def __init__(self, parts: Sequence[TacticGenerator], weights: Sequence[float] | None = None,
                 key: Callable[[str], str] = _spaces) -> None:
        if len(parts) < 2:
            raise ConfigError("a generator mixture needs at least two generators")
        if weights is None:
            weights = [1.0 / len(parts)] * len(parts)
        if len(weights) != len(parts) or any(w <= 0 for w in weights):
            raise ConfigError("mixture weights: one positive weight per generator")
        total = float(sum(weights))
        self.parts = list(parts)
        self.key = key
        self.weights = [w / total for w in weights]
        self.name = "+".join(p.name for p in self.parts)

    def start(self) -> None:
        for p in self.parts:
            p.start()

    def close(self) -> None:
        for p in self.parts:
            p.close()

    def start_theorem(self, theorem: Theorem) -> None:
        for p in self.parts:
            p.start_theorem(theorem)

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        return self.generate_at(goal_text, k, 0)

    def learn_steps(self, steps: Sequence[Mapping[str, Any]]) -> None:
        for p in self.parts:
            p.learn_steps(steps)

    def forget_learned(self) -> None:
        for p in self.parts:
            p.forget_learned()

    def generate_at(self, goal_text: str, k: int, depth: int) -> list[Candidate]:
        if k <= 0:
            return []
        return mix([p.generate_at(goal_text, k, depth) for p in self.parts], self.weights, k, self.key)

    def generate_batch(self, goal_texts: Sequence[str], k: int) -> list[list[Candidate]]:
        per_part = [p.generate_batch(goal_texts, k) for p in self.parts]
        return [mix([pp[i] for pp in per_part], self.weights, k, self.key) for i in range(len(goal_texts))]

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "combine": "log(sum_i w_i exp(score_i)), de-duplicated",
                "stage": "earliest stage any part gives",
                "weights": list(self.weights), "parts": [p.describe() for p in self.parts]}
