"""The choice of the model server's engine (no heavy imports). Its settings, ``ServerConfig``, are part of
the run's configuration (``core/config.py``) and re-exported here."""

from __future__ import annotations

import importlib.util

from ..core.config import ENGINES, ServerConfig
from ..core.errors import ConfigError, GeneratorUnavailable

__all__ = ["ENGINES", "ServerConfig", "select_engine", "use_model_server", "vllm_installed"]


def vllm_installed() -> bool:
    """Whether the optional ``vllm`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("vllm") is not None


def select_engine(requested: str, *, gpu: bool, vllm_available: bool) -> str:
    """The engine to run: ``"hf"`` or ``"vllm"``.

    ``auto`` takes vLLM only when it is installed and a GPU is present. An explicit ``vllm`` that
    cannot run raises ``GeneratorUnavailable`` saying why and what to do.
    """
    if requested == "hf":
        return "hf"
    if requested == "vllm":
        if not vllm_available:
            raise GeneratorUnavailable(
                "--engine vllm needs the optional vllm package, which is not installed. Install it on a "
                "Linux machine with a CUDA GPU (`pip install vllm`), or use --engine hf."
            )
        if not gpu:
            raise GeneratorUnavailable("--engine vllm needs a CUDA GPU and none is visible; use --engine hf.")
        return "vllm"
    if requested == "auto":
        return "vllm" if (vllm_available and gpu) else "hf"
    raise ConfigError(f"unknown engine {requested!r}; choose one of {', '.join(ENGINES)}")


def use_model_server(flag: str, *, model: bool, gpus: float) -> bool:
    """Whether ``prove`` should start model servers.

    ``flag`` is ``--model-server`` (``auto``/``on``/``off``); ``model`` whether the generator that will
    run (``--generator auto`` resolved) runs a language model (``core.config.uses_model``: ``llemma``
    or a mixture with it); ``gpus`` the GPUs Ray sees. ``auto`` = on exactly when it does and a GPU is
    present.
    """
    if flag not in ("auto", "on", "off"):
        raise ConfigError(f"--model-server must be auto, on or off, got {flag!r}")
    if not model:
        if flag == "on":
            raise ConfigError("--model-server on needs --generator llemma (or a mixture with it)")
        return False
    if flag == "auto":
        return gpus >= 1
    return flag == "on"
