"""Configuration is built once and never changed: every configuration object is a frozen dataclass all
the way down, so nothing can be mutated after ``main()`` built it (issue 11). The mutable leaves
(``MUTABLE_LEAVES``: dict-valued settings) are a fresh dict per config and are only read."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import typing
from pathlib import Path

import pytest

from llemma_prover.core.config import AutoformalizeConfig, RunConfig
from llemma_prover.serving.config import ServerConfig
from llemma_prover.workers.job import ProveJob, ProveSpec
from llemma_prover.workers.plan import Machine

#: dict-valued settings (read only; each config gets its own): from_pretrained keyword arguments, the
#: bank's cost schedule
MUTABLE_LEAVES = {("GeneratorConfig", "load_kwargs"), ("GeneratorConfig", "bank_schedule")}


def _walk(obj: object, path: str = "") -> typing.Iterator[tuple[str, object]]:
    yield path, obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _walk(getattr(obj, f.name), f"{path}.{f.name}")


@pytest.mark.parametrize("cfg", [RunConfig(), RunConfig(serving=ServerConfig()), AutoformalizeConfig(),
                                 ServerConfig()],
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
    cfg = prove.build_config(args, machine=Machine(cpus=os.cpu_count() or 1))
    before = cfg.to_dict()
    spec = ProveSpec(cfg.backend, cfg.prover, cfg.generator)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.prover = cfg.prover  # type: ignore[misc]
    job = ProveJob(theorem=None, run_config=cfg)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.run_config = cfg  # type: ignore[misc]
    assert cfg.to_dict() == before


PACKAGE = Path(__file__).resolve().parents[1] / "llemma_prover"
#: names the package gives a run's configuration object
CONFIG_NAMES = {"cfg", "config", "run_config", "worker_cfg"}
#: folders that hold no run config (lm/ and train/ set fields of transformers' own model configs)
OTHER_CONFIGS = ("doctor/", "lm/", "train/")
#: the only functions that construct a run's configuration
BUILDERS = {("workers/plan.py", "plan_run"), ("workers/plan.py", "plan_autoformalize"),
            ("cli/audit_cmd.py", "build_config")}


def _config_changes(root: Path = PACKAGE) -> list[str]:
    """``dataclasses.replace(<config>, ...)`` and ``<config>.<field> = ...`` on something named like a
    run config, and ``RunConfig(...)``/``AutoformalizeConfig(...)`` outside the builders."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = str(path.relative_to(root))
        if rel.startswith(OTHER_CONFIGS):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Module))]:
            name = getattr(func, "name", "")
            for node in ast.walk(func):
                if isinstance(node, ast.Call):
                    f = node.func
                    callee = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                    first = node.args[0] if node.args else None
                    subject = first.attr if isinstance(first, ast.Attribute) else getattr(first, "id", "")
                    if callee == "replace" and subject in CONFIG_NAMES:
                        found.append(f"{rel}:{node.lineno} replace({subject}, ...)")
                    if callee in ("RunConfig", "AutoformalizeConfig") and (rel, name) not in BUILDERS \
                            and isinstance(func, ast.FunctionDef):
                        found.append(f"{rel}:{node.lineno} {callee}(...) in {name}")
                elif isinstance(node, (ast.Assign, ast.AugAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for t in targets:
                        if isinstance(t, ast.Attribute) and isinstance(t.value, (ast.Name, ast.Attribute)):
                            owner = t.value.attr if isinstance(t.value, ast.Attribute) else t.value.id
                            if owner in CONFIG_NAMES or t.attr in ("run_config",):
                                found.append(f"{rel}:{node.lineno} {owner}.{t.attr} = ...")
    return sorted(set(found))


def test_the_checker_sees_a_change(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("import dataclasses\ndef f(cfg):\n"
                                   "    cfg = dataclasses.replace(cfg, a=1)\n"
                                   "    worker.run_config = cfg\n    return RunConfig()\n")
    assert len(_config_changes(tmp_path)) == 3


def test_no_config_is_replaced_or_assigned_after_it_is_built() -> None:
    """Issue 11: one config, built once in ``build_config``; no ``replace`` of it, no field or worker
    assignment, no second construction anywhere in the package."""
    assert _config_changes() == []


@pytest.mark.coq
def test_config_json_is_the_config_main_built(tmp_path: Path, minif2f_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ``prove`` run: the object the CLI built is the one the driver runs and the workers get
    (not a copy), and config.json holds it exactly (``dataclasses.asdict``), model-server fields too."""
    from llemma_prover.cli.main import main
    from llemma_prover.workers import driver

    seen: dict[str, list[object]] = {"meta": [], "execute": [], "jobs": []}
    real_meta, real_execute, real_spec = driver.run_metadata, driver.execute, driver.ResolvedGenerator.spec

    def meta(cfg: RunConfig, *a: object, **k: object) -> dict[str, object]:
        seen["meta"].append(cfg)
        return real_meta(cfg, *a, **k)  # type: ignore[arg-type]

    def execute(cfg: RunConfig, *a: object, **k: object) -> object:
        seen["execute"].append(cfg)
        return real_execute(cfg, *a, **k)  # type: ignore[arg-type]

    def spec(self: driver.ResolvedGenerator, cfg: RunConfig) -> ProveSpec:
        seen["jobs"].append(cfg)
        return real_spec(self, cfg)

    monkeypatch.setattr(driver, "run_metadata", meta)
    monkeypatch.setattr(driver, "execute", execute)
    monkeypatch.setattr(driver.ResolvedGenerator, "spec", spec)
    out = tmp_path / "run"
    rc = main(["prove", "--generator", "bank", "--workers", "0", "--theorems", "mathd_algebra_176",
               "--data-dir", str(minif2f_dir), "--out", str(out), "--model-server", "auto",
               "--engine", "hf", "--time-budget", "20"])
    assert rc == 0
    (cfg,) = seen["meta"]
    assert seen["execute"][0] is cfg and all(c is cfg for c in seen["jobs"]) and seen["jobs"]
    assert isinstance(cfg, RunConfig)
    recorded = json.loads((out / "config.json").read_text(encoding="utf-8"))
    expected = json.loads(json.dumps(dataclasses.asdict(cfg)))
    generator = recorded.pop("generator")
    assert {k: generator[k] for k in expected.pop("generator")} == json.loads(
        json.dumps(dataclasses.asdict(cfg.generator)))
    assert {k: recorded[k] for k in expected} == expected
    assert recorded["serving"] is None and recorded["gpus_per_worker"] == 0.0  # bank: no model servers
    assert recorded["data_dir"] == str(minif2f_dir.resolve()) and recorded["out_dir"] == str(out.resolve())
    assert recorded["search"]["time_budget"] == 20.0 and recorded["workers"] == 0
