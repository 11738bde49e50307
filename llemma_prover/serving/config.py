"""Settings of the model server and the choice of its engine (plain data, no heavy imports)."""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import ConfigError, GeneratorUnavailable

__all__ = ["ENGINES", "ServerConfig", "select_engine", "use_model_server", "vllm_installed"]

#: ``--engine`` choices: ``hf`` (transformers, our batched decoder), ``vllm`` (optional), ``auto``
ENGINES: tuple[str, ...] = ("auto", "hf", "vllm")


@dataclass(frozen=True)
class ServerConfig:
    """How the model servers run. Recorded in ``config.json`` beside the ``GeneratorConfig``."""

    #: ``auto`` picks vllm when it is installed and a GPU is there, else ``hf``
    engine: str = "auto"
    #: servers to start; 0 = one per GPU in the Ray cluster (one on CPU when there is none)
    num_servers: int = 0
    #: how long the first request of a batch waits for others to join it (seconds)
    max_wait: float = 0.005
    #: most decoding rows (sum of ``k`` over the batched requests) in one batch: bounds KV-cache memory
    max_batch_rows: int = 128
    #: reuse the key/value cache of the shared few-shot prefix (``hf`` engine)
    prefix_cache: bool = True
    #: CPUs the Ray scheduler reserves for each server
    num_cpus: float = 1.0
    #: fraction of GPU memory vLLM may take
    gpu_memory_utilization: float = 0.9
    #: widest beam the vllm engine serves: it is built with ``max_logprobs = 2 * max_beam_width``
    max_beam_width: int = 64
    #: build a randomly initialised Llama from this ``LlamaConfig`` dict instead of loading weights
    #: (benchmarks and tests: speed does not depend on the weights' values); the tokenizer still
    #: comes from ``GeneratorConfig.model``
    random_init: dict[str, Any] | None = field(default=None)

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.num_servers < 0:
            raise ConfigError("--model-servers must be >= 0")
        if self.max_wait < 0:
            raise ConfigError("the batching wait window must be >= 0 seconds")
        if self.max_batch_rows < 1:
            raise ConfigError("max_batch_rows must be >= 1")
        if self.max_beam_width < 1:
            raise ConfigError("max_beam_width must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


def use_model_server(flag: str, *, generator: str, gpus: float) -> bool:
    """Whether ``prove`` should start model servers.

    ``flag`` is ``--model-server`` (``auto``/``on``/``off``); ``generator`` the generator that will run
    (after ``--generator auto`` was resolved); ``gpus`` the GPUs Ray sees. ``auto`` = on exactly when the
    generator is ``llemma`` and a GPU is present.
    """
    if flag not in ("auto", "on", "off"):
        raise ConfigError(f"--model-server must be auto, on or off, got {flag!r}")
    if generator != "llemma":
        if flag == "on":
            raise ConfigError("--model-server on needs --generator llemma")
        return False
    if flag == "auto":
        return gpus >= 1
    return flag == "on"
