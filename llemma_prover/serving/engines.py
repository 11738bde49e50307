"""Decoding engines a model server can run: ``hf`` (transformers + our ``Decoder``) and ``vllm``
(``vllm_engine.py``, imported only when chosen)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..core.config import GeneratorConfig
from ..generators.base import dedupe
from ..generators.prompts import STOP_MARKER, FewShotPrompt
from ..lm.decoder import Decoder
from ..lm.loading import LoadedModel, load_model, load_tokenizer, resolve_device, resolve_dtype
from .config import ServerConfig
from .engine_base import Engine, Pairs

__all__ = ["Engine", "HFEngine", "build_engine", "load_for_server"]

log = logging.getLogger(__name__)

def load_for_server(gen: GeneratorConfig, server: ServerConfig) -> LoadedModel:
    """The model a server owns: loaded from ``gen.model``, or random with ``server.random_init``."""
    if server.random_init is None:
        return load_model(gen)
    import torch

    from ..lm.synthetic import random_llama

    if gen.torch_threads > 0:
        torch.set_num_threads(gen.torch_threads)
    device = resolve_device(gen.device)
    dtype = resolve_dtype(gen.dtype, device)
    tokenizer = load_tokenizer(gen)
    shape = dict(server.random_init)
    shape.setdefault("vocab_size", len(tokenizer))
    model = random_llama(shape, seed=gen.seed, dtype=dtype, device=device)
    params = sum(p.numel() for p in model.parameters())
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_id=f"random-llama{shape}",
        device=device,
        dtype=str(dtype).removeprefix("torch."),
        params=params,
    )


class HFEngine(Engine):
    """transformers model + ``Decoder``: batched beam search/sampling with a cached few-shot prefix."""

    name = "hf"

    def __init__(
        self, loaded: LoadedModel, prompt: FewShotPrompt, gen: GeneratorConfig, server: ServerConfig
    ):
        self.loaded = loaded
        self.prompt = prompt
        self.decoder = Decoder(
            loaded.model,
            loaded.tokenizer,
            prompt.prefix,
            max_new_tokens=gen.max_new_tokens,
            temperature=gen.temperature,
            seed=gen.seed,
            prefix_cache=server.prefix_cache,
            stop=STOP_MARKER,
        )
        if server.prefix_cache:
            self.decoder.prefix_kv()  # at start-up, not in the first request's latency

    def run(self, requests: Sequence[tuple[str, int]]) -> list[Pairs]:
        reqs = [self.decoder.request(self.prompt, goal, k) for goal, k in requests]
        out = self.decoder.decode(reqs)
        return [
            [(c.tactic, c.score) for c in dedupe(cands, k)]
            for cands, (_, k) in zip(out, requests, strict=True)
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "model": self.loaded.model_id,
            "device": self.loaded.device,
            "dtype": self.loaded.dtype,
            "params": self.loaded.params,
            "prefix_tokens": len(self.decoder.prefix_ids),
            "prefix_cache": self.decoder.prefix_mode,
        }

    def stats(self) -> dict[str, Any]:
        return dict(self.decoder.stats)

    def close(self) -> None:
        device = self.loaded.device
        del self.decoder
        del self.loaded
        if device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def build_engine(engine: str, gen: GeneratorConfig, prompt: FewShotPrompt, server: ServerConfig) -> Engine:
    """Load the model and build the named engine (``"hf"`` or ``"vllm"``, already selected)."""
    if engine == "vllm":
        from .vllm_engine import VLLMEngine

        return VLLMEngine(prompt, gen, server)
    return HFEngine(load_for_server(gen, server), prompt, gen, server)
