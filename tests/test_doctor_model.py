"""Doctor model and GPU checks: a real tiny random Llama on CPU (hf engine); vLLM and the GPU, which
cannot run here, through stand-ins, and their failures with remedies."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pytest

from llemma_prover.cli.main import main
from llemma_prover.core.config import GeneratorConfig
from llemma_prover.doctor import DoctorOptions
from llemma_prover.doctor import model as dmodel
from llemma_prover.doctor.checks import Checklist, Outcome
from llemma_prover.doctor.gpu import run_gpu_checks
from llemma_prover.serving.config import vllm_installed


@pytest.fixture
def torch_one_thread():  # type: ignore[no-untyped-def]
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def by_name(cl: Checklist) -> dict[str, Any]:
    return {c.name: c for c in cl.checks}


@pytest.mark.model
def test_tiny_random_llama_on_cpu_passes(tmp_path: Path, torch_one_thread: None) -> None:
    out = tmp_path / "doctor.json"
    rc = main(["doctor", "--backend", "none", "--engine", "hf", "--model", "random:tiny", "--device", "cpu",
               "--k", "4", "--json", str(out)])
    report = json.loads(out.read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert rc == 0, report
    assert checks["model loads"]["outcome"] == "pass" and "random Llama tiny" in checks["model loads"]["seen"]
    assert checks["beam search"]["outcome"] == "pass" and "4 distinct of 4" in checks["beam search"]["seen"]
    assert checks["sampling"]["outcome"] in ("pass", "warn")
    if not vllm_installed():
        assert checks["vllm and hf agree"]["outcome"] == "skip"
    # no GPU here: a warning for the hf engine, not a failure
    assert checks["torch sees a GPU"]["outcome"] in ("warn", "pass")


def test_explicit_vllm_without_vllm_fails_with_a_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dmodel, "vllm_installed", lambda: False)
    cl = Checklist("model", float("inf"))
    dmodel.run_model_checks(cl, DoctorOptions(backend="none", engine="vllm", model="random:tiny"))
    c = by_name(cl)
    assert c["vllm engine available"].outcome is Outcome.FAIL
    assert "pip install 'vllm>=0.10,<0.34'" in c["vllm engine available"].remedy
    assert c["model loads"].outcome is Outcome.SKIP and c["beam search"].outcome is Outcome.SKIP


class FakeEngine:
    def __init__(self, pairs: list[tuple[str, float]]) -> None:
        self.pairs = pairs
        self.gen = GeneratorConfig()
        self.closed = False

    def run(self, requests: list[tuple[str, int]]) -> list[list[tuple[str, float]]]:
        return [list(self.pairs) for _ in requests]

    def describe(self) -> dict[str, Any]:
        return {"engine": "fake", "device": "cuda"}

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_engines(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[str, float]]]:
    """vllm 'installed', a GPU 'visible', engines that answer canned candidates per engine name."""
    import torch

    answers: dict[str, list[tuple[str, float]]] = {}
    built: list[FakeEngine] = []

    def build(engine: str, gen: Any, server: Any) -> FakeEngine:
        e = FakeEngine(answers[engine])
        built.append(e)
        return e

    monkeypatch.setattr(dmodel, "vllm_installed", lambda: True)
    monkeypatch.setattr(dmodel, "_build", build)
    monkeypatch.setattr(dmodel, "_configs", lambda o, engine, t: (GeneratorConfig(), None, f"fake {engine}"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    fake_vllm = types.ModuleType("vllm")
    fake_vllm.__version__ = "0.33.0"  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "vllm", fake_vllm)
    answers["_built"] = built  # type: ignore[assignment]
    return answers


GOOD = [("lia", -0.1), ("ring", -0.5), ("nia", -0.7), ("auto", -1.0)]


def test_vllm_checks_pass_and_engines_agree(fake_engines: dict[str, Any]) -> None:
    fake_engines["vllm"] = GOOD
    fake_engines["hf"] = [("lia", -0.12), ("ring", -0.4), ("omega", -0.9), ("nia", -1.2)]
    cl = Checklist("model", float("inf"))
    dmodel.run_model_checks(cl, DoctorOptions(backend="none", engine="vllm", model="m", k=4))
    c = by_name(cl)
    assert [x.outcome for x in cl.checks] == [Outcome.PASS] * 5, cl.checks
    assert "3/4 shared" in c["vllm and hf agree"].seen
    assert all(e.closed for e in fake_engines["_built"])


def test_vllm_beams_merged_after_the_marker_and_disagreement_fail(fake_engines: dict[str, Any]) -> None:
    fake_engines["vllm"] = GOOD[:3]  # only 3 distinct tactics for k = 4
    fake_engines["hf"] = [("ring", -0.3), ("lia", -0.4)]
    cl = Checklist("model", float("inf"))
    dmodel.run_model_checks(cl, DoctorOptions(backend="none", engine="vllm", model="m", k=4))
    c = by_name(cl)
    assert c["beam search"].outcome is Outcome.FAIL and "3 distinct of 4" in c["beam search"].seen
    assert "no stop strings" in c["beam search"].remedy
    assert c["sampling"].outcome is Outcome.WARN  # fewer distinct samples than k: a warning
    assert c["vllm and hf agree"].outcome is Outcome.SKIP  # needs a passing beam check

    fake_engines["vllm"] = GOOD
    cl = Checklist("model", float("inf"))
    dmodel.run_model_checks(cl, DoctorOptions(backend="none", engine="vllm", model="m", k=4))
    agree = by_name(cl)["vllm and hf agree"]
    assert agree.outcome is Outcome.FAIL and "vllm best ['lia'], hf best ['ring']" in agree.seen


def test_non_finite_scores_fail() -> None:
    v = dmodel._judge([("lia", float("nan")), ("ring", -1.0)], 2, strict=True)
    assert not v.ok and v.otherwise is Outcome.FAIL
    assert not dmodel._judge([("lia", 0.5), ("ring", -1.0)], 2, strict=False).ok  # log-prob > 0


def test_gpu_missing_is_a_warning_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cl = Checklist("gpu", float("inf"))
    run_gpu_checks(cl, required=False)
    assert [(c.name, c.outcome) for c in cl.checks] == [("torch sees a GPU", Outcome.WARN)]
    cl = Checklist("gpu", float("inf"))
    run_gpu_checks(cl, required=True)
    (c,) = cl.checks
    assert c.outcome is Outcome.FAIL and "CUDA build of torch" in c.remedy


def test_slow_matmul_fails_with_a_remedy(monkeypatch: pytest.MonkeyPatch, torch_one_thread: None) -> None:
    """The rate check itself, run on CPU tensors standing in for the GPU (far below the threshold)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: types.SimpleNamespace(name="Stand-in GPU", total_memory=80 * 2**30))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    real_randn = torch.randn
    monkeypatch.setattr(torch, "randn", lambda *a, device=None, **kw: real_randn(*a, **kw))
    cl = Checklist("gpu", float("inf"))
    run_gpu_checks(cl, required=True, size=64)
    c = by_name(cl)
    assert c["torch sees a GPU"].outcome is Outcome.PASS and "Stand-in GPU" in c["torch sees a GPU"].seen
    rate = c["bf16 matmul rate"]
    assert rate.outcome is Outcome.FAIL and "TFLOP/s" in rate.seen and "nvidia-smi" in rate.remedy


def test_no_engine_comparison_on_a_large_random_model(fake_engines: dict[str, Any]) -> None:
    fake_engines["hf"] = GOOD
    cl = Checklist("model", float("inf"))
    dmodel.run_model_checks(cl, DoctorOptions(backend="none", engine="hf", model="random:llemma-7b", k=4))
    agree = by_name(cl)["vllm and hf agree"]
    assert agree.outcome is Outcome.SKIP and "saved to disk" in agree.seen
