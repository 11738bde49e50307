"""``TrainConfig``: every setting of a ``train`` run, plain frozen data recorded in the output's card."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.errors import ConfigError

__all__ = ["RESUME_KEYS", "TrainConfig"]

#: settings that must match for ``--resume`` to continue a checkpoint (the rest may change)
RESUME_KEYS = ("model", "load_kwargs", "data", "backend", "method", "lora_r", "lora_alpha", "lora_dropout",
               "lr", "weight_decay", "warmup_steps", "steps", "batch_size", "grad_accum", "max_len", "seed",
               "precision", "init")


@dataclass(frozen=True)
class TrainConfig:
    """What to fine-tune, on which data, and how."""

    #: base model: hub id, local folder or .gguf file (``lm.loading.model_source``)
    model: str
    #: an ``extract`` output folder (``steps.jsonl`` + ``card.json``)
    data: str
    out: str
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    #: which prover's prompt (and goal rendering) the data is for
    backend: str = "coq"
    #: "full" (every weight) or "lora" (peft adapters, merged into the saved model)
    method: str = "full"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    #: optimizer steps (each of ``batch_size * grad_accum`` examples)
    steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 20
    #: longest example in tokens (prompt + tactic); longer ones are dropped and counted
    max_len: int = 512
    seed: int = 0
    #: "auto" (cuda when available), "cpu", "cuda", ...
    device: str = "auto"
    #: "auto" (bf16 autocast on GPU, fp32 on CPU), "bf16" (autocast), "fp32"
    precision: str = "auto"
    torch_threads: int = 0
    #: "pretrained" (the base model's weights) or "random" (its architecture, freshly initialised)
    init: str = "pretrained"
    #: stop after this many seconds of training (0: no limit); the model is saved as at the last step
    time_limit: float = 0.0
    eval_every: int = 100
    #: valid examples the valid loss is measured on (the first ones of a fixed shuffle)
    eval_examples: int = 256
    save_every: int = 200
    log_every: int = 10
    #: the data card has no miniF2F contamination result: train anyway (recorded in the card)
    allow_unchecked: bool = False
    #: the contamination check found miniF2F overlap: train anyway (recorded in the card)
    allow_contaminated: bool = False

    def validate(self) -> None:
        if self.method not in ("full", "lora"):
            raise ConfigError(f"--method must be full or lora, got {self.method!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"--precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.init not in ("pretrained", "random"):
            raise ConfigError(f"--init must be pretrained or random, got {self.init!r}")
        if self.method == "lora" and self.init == "random":
            raise ConfigError("--method lora adapts pretrained weights; use --method full with --init random")
        for name in ("steps", "batch_size", "grad_accum", "max_len", "eval_every", "save_every", "log_every",
                     "lora_r"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0 or self.eval_examples < 0:
            raise ConfigError("--warmup-steps and --eval-examples must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resume_key(self) -> dict[str, Any]:
        d = self.to_dict()
        return {k: d[k] for k in RESUME_KEYS}
