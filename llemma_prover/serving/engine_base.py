"""What every decoding engine answers (``Engine``): the Hugging Face one (``engines.HFEngine``) and vLLM's
(``vllm_engine.VLLMEngine``) both derive from it, so neither engine module imports the other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["Engine", "Pairs"]

#: what an engine returns per request: (tactic, mean token log-prob), best first, distinct
Pairs = list[tuple[str, float]]


class Engine:
    """Decodes a batch of ``(goal, k)`` requests."""

    name = ""

    def run(self, requests: Sequence[tuple[str, int]]) -> list[Pairs]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name}

    def stats(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """Free the model."""
