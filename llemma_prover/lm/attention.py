"""Attention over one shared copy of a cached prompt prefix, registered with transformers.

The few-shot prefix of a prompt is the same for every goal, so ``lm.decoder.Decoder`` computes its
key/value cache once. For Llama-like models ``shared_prefix_attention`` lets every row of a batch read
that one copy (softmax over [prefix keys, row keys], the prefix broadcast over the batch) instead of
each row holding its own; the decoder checks it once against a full forward pass before using it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SHARED_PREFIX_ATTENTION", "cache_tensors", "register_shared_prefix_attention",
           "shared_prefix_attention"]


#: name under which ``shared_prefix_attention`` is registered with transformers
SHARED_PREFIX_ATTENTION = "llemma_shared_prefix"


def shared_prefix_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    scaling: float,
    dropout: float = 0.0,
    llemma_prefix: Any = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Attention over [one shared copy of the prefix keys/values] + [each row's own keys/values].

    ``key``/``value`` (and ``attention_mask``) cover only a row's own tokens; ``llemma_prefix`` holds,
    per layer, the prefix's keys and values with batch size 1, which broadcast over the batch. So a
    batch of B rows reads the prefix once instead of holding B copies of it (memory, and the per-step
    copy a growing cache makes). Without ``llemma_prefix`` this is plain eager attention.
    """
    import torch

    n_rep = query.shape[1] // key.shape[1]

    def rep(x: Any) -> Any:
        return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)

    ks, vs = rep(key), rep(value)
    scores = torch.matmul(query, ks.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, : ks.shape[-2]]
    if llemma_prefix is None:
        weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
        out = torch.matmul(weights, vs)
    else:
        pk, pv = llemma_prefix[module.layer_idx]
        pk, pv = rep(pk), rep(pv)
        prefix_scores = torch.matmul(query, pk.transpose(2, 3)) * scaling
        weights = torch.softmax(torch.cat([prefix_scores, scores], dim=-1), dim=-1, dtype=torch.float32)
        weights = weights.to(query.dtype)
        plen = pk.shape[-2]
        out = torch.matmul(weights[..., :plen], pv) + torch.matmul(weights[..., plen:], vs)
    return out.transpose(1, 2).contiguous(), None


def register_shared_prefix_attention() -> bool:
    """Register the attention (and its mask) with transformers; False when this version cannot."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, eager_mask
    except ImportError:
        return False
    AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)
    AttentionMaskInterface.register(SHARED_PREFIX_ATTENTION, eager_mask)
    return True


def cache_tensors(cache: Any) -> list[tuple[Any, Any]]:
    """Per-layer (keys, values) of a transformers cache (5.x ``layers``, 4.x ``key_cache``)."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))
