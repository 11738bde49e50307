"""The ``llemma`` generator: a causal language model proposing tactics from a few-shot prompt.

``LlemmaGenerator`` loads any ``transformers`` causal LM (default ``EleutherAI/llemma_7b``; a model id or
a local folder, ``load_kwargs`` such as ``gguf_file=``) with ``lm.loading.load_model`` and decodes
tactics after the Llemma prompt (``generators.prompts``) with ``lm.decoder.Decoder`` -- the decoder the
model server (``llemma_prover.serving``) shares, so both give the same candidates for the same input.
Decoding (beam search at temperature 0, seeded sampling above), scores (mean log-probability of the
tactic's own tokens) and the cached few-shot prefix are described in ``lm.decoder``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from ..core.config import GeneratorConfig
from ..core.errors import GeneratorError
from ..core.types import Candidate
from ..lm.decoder import Decoder
from ..lm.loading import LoadedModel, load_model
from .base import TacticGenerator, dedupe
from .prompts import STOP_MARKER, FewShotPrompt, prompt_for_model

__all__ = ["LlemmaGenerator"]

log = logging.getLogger(__name__)


class LlemmaGenerator(TacticGenerator):
    """Tactics from a causal LM with the Llemma few-shot prompt of ``backend``.

    ``start()`` loads the weights (``GeneratorUnavailable`` when it cannot), ``close()`` frees them.
    """

    name = "llemma"

    def __init__(
        self,
        config: GeneratorConfig,
        backend: str,
        *,
        prompt_file: str | Path | None = None,
        prefix_cache: bool = True,
    ) -> None:
        self.config = config
        self.backend = backend
        self.prompt: FewShotPrompt = prompt_for_model(backend, config.model, prompt_file)
        self.prefix_cache = prefix_cache
        self._loaded: LoadedModel | None = None
        self._decoder: Decoder | None = None

    def start(self) -> None:
        if self._loaded is not None:
            return
        loaded = load_model(self.config)
        self._loaded = loaded
        self._decoder = Decoder(
            loaded.model,
            loaded.tokenizer,
            self.prompt.prefix,
            max_new_tokens=self.config.max_new_tokens,
            temperature=self.config.temperature,
            seed=self.config.seed,
            prefix_cache=self.prefix_cache,
            stop=STOP_MARKER,
        )
        if self.prefix_cache:
            self._decoder.prefix_kv()  # computed now, and the way it is shared settled
        log.info("llemma generator ready: %s", self.describe())

    def close(self) -> None:
        if self._loaded is None:
            return
        device = self._loaded.device
        self._decoder = None
        self._loaded = None
        if device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    @property
    def decoder(self) -> Decoder:
        if self._decoder is None:
            raise GeneratorError("LlemmaGenerator.start() was not called (or close() was)")
        return self._decoder

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        return self.generate_batch([goal_text], k)[0]

    def generate_batch(self, goal_texts: Sequence[str], k: int) -> list[list[Candidate]]:
        dec = self.decoder
        out: list[list[Candidate]] = []
        step = max(1, self.config.batch_size // max(1, k))  # goals per forward batch
        reqs = [dec.request(self.prompt, g, k) for g in goal_texts]
        for i in range(0, len(reqs), step):
            out.extend(dedupe(c, k) for c in dec.decode(reqs[i:i + step]))
        return out

    def describe(self) -> dict[str, object]:
        d: dict[str, object] = {
            "name": self.name,
            "model": self.config.model,
            "backend": self.backend,
            "prompt": self.prompt.source,
            "decoding": "beam" if self.config.temperature == 0 else f"sampling(T={self.config.temperature})",
            "max_new_tokens": self.config.max_new_tokens,
            "prefix_cache": self.prefix_cache,
        }
        if self._loaded is not None:
            d.update(device=self._loaded.device, dtype=self._loaded.dtype, params=self._loaded.params)
        if self._decoder is not None:
            d["prefix_cache"] = self._decoder.prefix_mode
        return d
