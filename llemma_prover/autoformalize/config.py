"""Configuration of an ``autoformalize`` (Draft, Sketch, Prove) run, as plain frozen data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..core.config import (
    DATA_SYSTEM,
    SPLITS,
    GeneratorConfig,
    ProverConfig,
    validate_dataset,
    validate_selection,
)
from ..core.errors import ConfigError

#: sketch drafters: a language model, sketches replayed from a file, or none (one hole = pure automation)
DRAFTERS: tuple[str, ...] = ("llemma", "replay", "none")


@dataclass(frozen=True)
class HolePolicy:
    """How hard each hole is attacked. The per-tactic timeout is ``ProverConfig.tactic_timeout``."""

    #: seconds for all candidates on one hole together
    hole_time_limit: float = 60.0
    #: seconds for filling all sketches of one theorem (drafting excluded)
    theorem_time_limit: float = 600.0
    #: add CoqHammer's ``sauto``/``hauto`` to the Coq list (needs Debian ``libcoq-hammer``)
    use_hammer: bool = False
    #: Isabelle: run Sledgehammer when no heuristic closes a hole
    sledgehammer: bool = True
    sledgehammer_timeout: float = 30.0

    def validate(self) -> None:
        if self.hole_time_limit <= 0:
            raise ConfigError(f"--hole-time-limit must be > 0 seconds, got {self.hole_time_limit}")
        if self.theorem_time_limit <= 0:
            raise ConfigError(f"--time-budget must be > 0 seconds, got {self.theorem_time_limit}")


@dataclass(frozen=True)
class DrafterConfig:
    """Who writes the sketches. ``model`` settings are the llemma generator's (``GeneratorConfig``)."""

    name: str = "none"
    #: sketches per problem (pass@n)
    samples: int = 1
    replay_file: str | None = None
    #: few-shot prompt file (default: experiments/prompts/dsp_<backend>.txt)
    prompt_file: str | None = None
    model: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(name="llemma", max_new_tokens=512))

    def validate(self) -> None:
        if self.name not in DRAFTERS:
            raise ConfigError(
                f"unknown --generator {self.name!r} for autoformalize; choose one of {', '.join(DRAFTERS)}"
            )
        if self.samples < 1:
            raise ConfigError(f"--samples must be >= 1, got {self.samples}")
        if self.name == "replay" and not self.replay_file:
            raise ConfigError('--generator replay needs --replay-file FILE (JSONL: {"theorem", "sketches"})')
        if self.model.temperature < 0:
            raise ConfigError("--temperature must be >= 0")
        if self.name == "llemma" and self.samples > 1 and self.model.temperature == 0:
            raise ConfigError("--samples > 1 needs --temperature > 0 (greedy decoding gives one sketch)")


@dataclass(frozen=True)
class AutoformalizeConfig:
    split: str = "minif2f-test"
    backend: str = "coq"
    data_dir: str = ""
    out_dir: str = ""
    theorems: tuple[str, ...] = ()
    limit: int | None = None
    #: Ray workers that fill holes in parallel (0: in this process)
    workers: int = 0
    #: join this Ray cluster instead of starting one (needs ``workers >= 1``)
    ray_address: str | None = None
    #: how often a theorem whose worker died is tried again before it is recorded as a crash
    worker_retries: int = 1
    drafter: DrafterConfig = field(default_factory=DrafterConfig)
    holes: HolePolicy = field(default_factory=HolePolicy)
    prover: ProverConfig = field(default_factory=ProverConfig)
    #: a ``--dataset`` file (absolute path) the theorems come from instead of a miniF2F split
    dataset: str = ""

    @property
    def split_name(self) -> str:
        return SPLITS.get(self.split, self.split)

    @property
    def data_system(self) -> str:
        return DATA_SYSTEM[self.backend]

    def validate(self) -> None:
        validate_selection(self.split, self.backend, self.workers, self.limit)
        validate_dataset(self.split, self.dataset)
        self.drafter.validate()
        self.holes.validate()
        self.prover.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
