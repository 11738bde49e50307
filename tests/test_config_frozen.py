"""Configuration is built once and never changed: every configuration object is a frozen dataclass all
the way down, so nothing can be mutated after ``main()`` built it (issue 11). The mutable leaves
(``MUTABLE_LEAVES``: dict-valued settings) are a fresh dict per config and are only read."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from llemma_prover.autoformalize.config import AutoformalizeConfig
from llemma_prover.core.config import RunConfig
from llemma_prover.serving.config import ServerConfig
from llemma_prover.workers.job import ProveJob, ProveSpec

#: dict-valued settings (read only; each config gets its own): from_pretrained keyword arguments, the
#: bank's cost schedule
MUTABLE_LEAVES = {("GeneratorConfig", "load_kwargs"), ("GeneratorConfig", "bank_schedule")}


def _walk(obj: object, path: str = "") -> typing.Iterator[tuple[str, object]]:
    yield path, obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _walk(getattr(obj, f.name), f"{path}.{f.name}")


@pytest.mark.parametrize("cfg", [RunConfig(), AutoformalizeConfig(), ServerConfig()],
                         ids=lambda c: type(c).__name__)
def test_every_config_object_is_frozen(cfg: object) -> None:
    for path, value in _walk(cfg):
        if dataclasses.is_dataclass(value):
            params = type(value).__dataclass_params__  # type: ignore[attr-defined]
            assert params.frozen, f"{type(value).__name__} at {path or 'top'} is not frozen"
            first = dataclasses.fields(value)[0].name
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(value, first, getattr(value, first))
        elif isinstance(value, (list, set, dict)):
            assert any(path.endswith(leaf) for _cls, leaf in MUTABLE_LEAVES), f"mutable value at {path}"


def test_the_prove_cli_builds_a_frozen_config_and_jobs_carry_it_unchanged() -> None:
    """The worker recipe and the jobs are frozen too: a worker cannot change what the driver recorded."""
    import argparse

    from llemma_prover.cli import prove

    parser = argparse.ArgumentParser()
    prove.add_parser(parser.add_subparsers())
    args = parser.parse_args(["prove", "--generator", "bank", "--workers", "0"])
    cfg = prove.build_config(args)
    before = cfg.to_dict()
    spec = ProveSpec(cfg.backend, cfg.prover, cfg.generator)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.prover = cfg.prover  # type: ignore[misc]
    job = ProveJob(theorem=None, run_config=cfg)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.run_config = cfg  # type: ignore[misc]
    assert cfg.to_dict() == before
