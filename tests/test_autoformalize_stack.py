"""Autoformalize on the shared stack (issue 20, item 5): outcomes are enums recorded as the strings old
runs hold, Coq's library folder is asked for in one place, the worker recipe is the shared one."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from llemma_prover.autoformalize.drafter import Draft
from llemma_prover.autoformalize.fill import (
    Attempt,
    AttemptOutcome,
    FillResult,
    FillStatus,
    HoleReport,
    HoleStatus,
)
from llemma_prover.autoformalize.pipeline import SampleOutcome, SampleStatus, run_sample
from llemma_prover.core.config import GeneratorConfig
from llemma_prover.core.records import TheoremRecord

PACKAGE = Path(__file__).resolve().parents[1] / "llemma_prover"


def test_sample_record_holds_the_old_strings() -> None:
    hole = HoleReport(index=0, text="hole.", claim="x = 1", status=HoleStatus.UNCLOSED,
                      attempts=(Attempt("lia", AttemptOutcome.ERROR, 0.5, "no"),
                                Attempt("nia", AttemptOutcome.TIMEOUT, 5.0)))
    fill = FillResult(FillStatus.HOLE_UNCLOSED, (hole,), None, 5.5, "hole 1 not closed")
    out = SampleOutcome(0, "hole.", 0.0, SampleStatus.of_fill(fill.status), fill.message, fill)
    d = json.loads(json.dumps(out.to_dict()))
    assert d["status"] == "hole_unclosed" and type(out.to_dict()["status"]) is str
    assert d["holes"][0]["status"] == "unclosed"
    assert [a["outcome"] for a in d["holes"][0]["attempts"]] == ["error", "timeout"]
    assert all(type(a["outcome"]) is str for a in out.to_dict()["holes"][0]["attempts"])
    assert not out.proved


def test_every_fill_ending_but_filled_is_a_sample_ending() -> None:
    for status in FillStatus:
        if status is FillStatus.FILLED:
            with pytest.raises(ValueError):
                SampleStatus.of_fill(status)
        else:
            assert SampleStatus.of_fill(status).value == status.value


def test_old_records_still_read() -> None:
    """A record written before the enums (statuses as strings) reads back, its samples unchanged."""
    line = json.dumps({
        "theorem": "t", "split": "minif2f-test", "family": "algebra", "backend": "coq", "generator": "none",
        "status": "failed", "reason": "search_exhausted", "proof": None,
        "extra": {"dsp": {"n": 1, "correct": 0, "samples": [{"index": 0, "status": "hole_unclosed",
                                                              "holes": [{"status": "unclosed"}]}]}},
    })
    rec = TheoremRecord.from_json(line)
    assert rec.extra["dsp"]["samples"][0]["status"] == SampleStatus.HOLE_UNCLOSED.value


def test_a_sketch_that_does_not_parse_is_a_parse_error_value() -> None:
    out = run_sample(0, Draft("Admitted."), None, "coq", None, None, 0.0)  # type: ignore[arg-type]
    assert out.status is SampleStatus.PARSE_ERROR and out.fill is None


def test_coq_library_folder_is_asked_for_in_one_place() -> None:
    """``coqc -where`` runs in ``backends/coq/automation.py:coq_where`` alone."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value == "-where":
                found.append(path.relative_to(PACKAGE).as_posix())
    assert found == ["backends/coq/automation.py"]


def test_coq_where_names_the_installed_library() -> None:
    from llemma_prover.backends.coq.automation import coq_where
    from llemma_prover.core.errors import ConfigError

    assert (coq_where() / "theories" / "Init" / "Prelude.vo").is_file()
    with pytest.raises(ConfigError, match="is Coq installed"):
        coq_where("no-such-coqc-here")


def test_the_shared_backend_recipe_starts_and_closes_a_real_prover() -> None:
    """``BackendSpec`` (the fill jobs' worker recipe, shared with ``prove``'s ``start_backend``)."""
    from llemma_prover.core.config import ProverConfig
    from llemma_prover.core.types import ProofFinished, Theorem
    from llemma_prover.workers.job import BackendSpec

    spec = BackendSpec("coq", ProverConfig(warm_spare=False))
    backend = spec.setup()
    try:
        root = backend.start_theorem(Theorem(name="t", split="test", system="coq", header="",
                                             statement="Theorem t : 1 + 1 = 2."))
        assert isinstance(backend.apply(root.state_id, "reflexivity."), ProofFinished)
    finally:
        spec.teardown(backend)


def test_config_json_has_the_shape_of_prove_s() -> None:
    """``autoformalize``'s config.json carries every provenance key ``prove``'s does (one shared helper),
    and the keys ``RunDir`` compares on resume."""
    from llemma_prover.autoformalize.pipeline import run_metadata
    from llemma_prover.core.config import AutoformalizeConfig, RunConfig
    from llemma_prover.workers.driver import ResolvedGenerator
    from llemma_prover.workers.driver import run_metadata as prove_metadata

    af = run_metadata(AutoformalizeConfig(), {"name": "none"}, "requested", ["f"], "h", ["x"])
    pr = prove_metadata(RunConfig(workers=0), ResolvedGenerator("bank", "bank"), ["f"], "h", ["x"])
    shared = {"data_hash", "data_files", "packages", "git_commit", "sandbox", "prover_settings", "command",
              "started_at", "host", "time_budget_covers", "split", "backend", "prover", "generator"}
    assert shared <= af.keys() and shared <= pr.keys()
    assert af["sandbox"] == pr["sandbox"] and af["prover_settings"] == pr["prover_settings"]
    assert {"name", "replay_file"} <= af["generator"].keys()
    assert af["time_budget_covers"] != pr["time_budget_covers"]


def test_autoformalize_is_planned_by_the_shared_plan() -> None:
    """``plan_autoformalize`` resolves ``auto`` with ``prove``'s ``resolve_auto`` (a model on a GPU
    machine, else the ``none`` drafter; the fallback when the model failed) and takes the backend's
    time policy from ``backend_policy``, as ``plan_run`` does."""
    from llemma_prover.core.config import DrafterConfig, HolePolicy, RunConfig
    from llemma_prover.workers.plan import (
        AutoformalizeRequest,
        Machine,
        RunRequest,
        backend_policy,
        plan_autoformalize,
        plan_run,
    )

    def plan(machine: Machine, name: str = "auto", backend: str = "coq", timeout: float | None = None):
        req = AutoformalizeRequest(backend=backend, split="minif2f-test", drafter=DrafterConfig(name=name),
                                   holes=HolePolicy(), hammer="off", tactic_timeout=timeout)
        return plan_autoformalize(req, machine)

    cfg, why = plan(Machine(gpus=0))
    assert (cfg.drafter.name, why) == ("none", "auto: no GPU found") and not cfg.holes.use_hammer
    assert cfg.out_dir.endswith("dsp-minif2f-test-coq-none")
    assert plan(Machine(gpus=1))[0].drafter.name == "llemma"
    failed = Machine(gpus=1, llemma_failed="llemma could not load (x)")
    assert plan(failed)[0].drafter.name == "none" and plan(failed)[1] == "auto: llemma could not load (x)"
    assert plan(Machine(gpus=1), "none")[1] == "requested"
    for backend in ("coq", "lean4", "isabelle"):
        af, _ = plan(Machine(), "none", backend)
        pr: RunConfig = plan_run(RunRequest(backend=backend, generator=GeneratorConfig(name="bank"),
                                            split="minif2f-test", workers=0), Machine())
        assert af.prover == pr.prover == backend_policy(backend)[0], backend
    assert plan(Machine(), "none", "lean4", 7.0)[0].prover.tactic_timeout == 7.0
