"""Loading a ``transformers`` causal LM and its tokenizer onto a device.

``load_model(config)`` takes a ``GeneratorConfig`` (``model``: a hub id or a local folder;
``load_kwargs`` such as ``gguf_file=``; ``device``, ``dtype``, ``torch_threads``) and returns a
``LoadedModel``. Every failure to load becomes ``GeneratorUnavailable`` with what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import GeneratorConfig
from ..core.errors import ConfigError, GeneratorUnavailable

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["LoadedModel", "load_model", "resolve_device", "resolve_dtype"]


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; anything else as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GeneratorUnavailable(f"device {device!r} was requested but torch sees no CUDA GPU")
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``"auto"`` -> bfloat16 on GPU, float32 on CPU; or the named dtype."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    table = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
             "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32}
    if dtype not in table:
        raise ConfigError(f"unknown dtype {dtype!r}; choose auto, bfloat16, float16 or float32")
    return table[dtype]


@dataclass
class LoadedModel:
    """A model and its tokenizer on a device, plus what describes them."""

    model: Any
    tokenizer: Any
    model_id: str
    device: str
    dtype: str
    params: int


def _clip(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[:limit] + "..."
    return text if text.endswith(".") else text + "."


def load_model(config: GeneratorConfig) -> LoadedModel:
    """Load ``config.model`` with ``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained``.

    Raises ``GeneratorUnavailable`` saying why and what to do when the weights cannot be loaded.
    """
    try:
        import torch
        import transformers
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise GeneratorUnavailable(f"the llemma generator needs torch and transformers: {exc}") from exc

    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    name = config.model
    local = Path(name).expanduser().exists() or name.startswith(("/", "./", "../", "~"))
    if local:
        hint = "Pass --model a folder holding transformers weights and a tokenizer, or use --generator bank."
    else:
        hint = (
            f"Download the weights once (e.g. `huggingface-cli download {name} --local-dir DIR` on a machine "
            "with internet access) and pass --model DIR, or use --generator bank."
        )
    if local and not Path(name).expanduser().exists():
        raise GeneratorUnavailable(f"cannot load model {name!r}: no such file or directory. {hint}")
    kwargs = dict(config.load_kwargs)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name, **kwargs)
        model = transformers.AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, hub/network errors: all mean "cannot load"
        raise GeneratorUnavailable(
            f"cannot load model {name!r}: {type(exc).__name__}: {_clip(exc)} {hint}"
        ) from exc
    try:
        model.to(device)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:  # type: ignore[attr-defined]
        raise GeneratorUnavailable(f"model {name!r} does not fit on {device}: {exc}") from exc
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    return LoadedModel(model=model, tokenizer=tokenizer, model_id=name, device=device,
                       dtype=str(dtype).removeprefix("torch."), params=params)
