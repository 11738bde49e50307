"""A batched model server for the ``llemma`` generator (issue 7).

One Ray actor per GPU owns one copy of the model and serves ``generate`` requests from every search
worker: requests that arrive together are decoded as one batch (dynamic batching with a short wait
window), the few-shot prefix's key/value cache is computed once and reused, and each request gets
``(tactic, mean token log-prob)`` pairs back. Workers hold a ``ServerGenerator`` (a ``TacticGenerator``
that only sends requests), so they need no GPU and no model memory.

Entry points for the CLI: ``ServerConfig``, ``use_model_server``, ``start_model_servers`` (returns a
``ModelServerPool``: ``.generator()`` for the workers, ``.describe()`` for ``config.json``, ``.close()``).
Nothing here imports torch, transformers or ray at import time.
"""

from .config import ENGINES, ServerConfig, select_engine, use_model_server, vllm_installed

__all__ = [
    "ENGINES",
    "ServerConfig",
    "select_engine",
    "start_model_servers",
    "use_model_server",
    "vllm_installed",
]


def start_model_servers(*args, **kwargs):  # type: ignore[no-untyped-def]
    """See ``llemma_prover.serving.server.start_model_servers`` (imported lazily: it needs ray)."""
    from .server import start_model_servers as _start

    return _start(*args, **kwargs)
