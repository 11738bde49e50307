"""The tactic-generator interface: ``generate(goal_text, k) -> [Candidate(tactic, score)]``.

Scores are comparable within one generator: for a language model, the mean token log-prob of the
tactic (<= 0); for the automation bank, a log prior. Best-first search sums them along a path.
Model output is untrusted: generators return raw strings and the backend validates them.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.types import Candidate, Theorem


class TacticGenerator(abc.ABC):
    """Proposes candidate tactics for a goal."""

    #: short name recorded in results ("bank", "replay", "llemma")
    name: str = ""

    def start(self) -> None:  # noqa: B027 - optional hook
        """Load expensive resources (model weights). Idempotent. Default: nothing."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Idempotent."""

    def start_theorem(self, theorem: Theorem) -> None:  # noqa: B027 - optional hook
        """Called before a theorem's search begins (per-theorem replay lists use it)."""

    @abc.abstractmethod
    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        """Up to ``k`` distinct candidates for ``goal_text``, best first."""

    def generate_at(self, goal_text: str, k: int, depth: int) -> list[Candidate]:
        """Candidates for a goal ``depth`` tactics below the root; what the search calls.

        Default: ``generate`` (the depth is ignored). ``replay`` uses it to offer the i-th tactic
        of a known proof first at depth i.
        """
        return self.generate(goal_text, k)

    def generate_batch(self, goal_texts: Sequence[str], k: int) -> list[list[Candidate]]:
        """Candidates for several goals; model-backed generators batch this."""
        return [self.generate(g, k) for g in goal_texts]

    def learn_steps(self, steps: Sequence[Mapping[str, Any]]) -> None:  # noqa: B027 - optional hook
        """Online learning (``prove --library --online-learning``): proof steps (``extract``'s step
        records) of the original proofs the run has just passed join what this generator draws on, until
        ``forget_learned``. Default: a generator that does not learn ignores them."""

    def forget_learned(self) -> None:  # noqa: B027 - optional hook
        """Drop every step ``learn_steps`` gave (a new file begins). Default: nothing to drop."""

    def describe(self) -> dict[str, object]:
        """What ran, for ``config.json`` and the start-up line (model id, device, dtype, ...)."""
        return {"name": self.name}


def dedupe(cands: Sequence[Candidate], k: int) -> list[Candidate]:
    """Keep the best-scored copy of each tactic (whitespace-normalised), best first, at most ``k``.

    Best first = earliest stage first, then highest score (all stages are 0 without a schedule)."""
    best: dict[str, Candidate] = {}
    for c in cands:
        key = " ".join(c.tactic.split())
        if not key:
            continue
        if key not in best or c.score > best[key].score:
            best[key] = Candidate(tactic=c.tactic.strip(), score=c.score, stage=c.stage)
    return sorted(best.values(), key=lambda c: (c.stage, -c.score))[:k]
