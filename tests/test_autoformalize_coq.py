"""Draft-Sketch-Prove on the real Coq (coqtop for hole filling, coqc for the final check).

* every Coq example of the shipped few-shot prompt compiles once automation fills its holes;
* a hand-written sketch for a real miniF2F problem: its holes are closed and coqc accepts the proof;
* a wrong sketch that stepwise filling accepts but the final coqc check rejects;
* a sketch whose hole no automation closes, and one whose structural step fails;
* the whole ``autoformalize`` command with sketches replayed from a file (and resume), and with a
  tiny randomly initialised model drafting the sketches.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import ProcessWatcher, cmdline, descendants, proc_stat

from llemma_prover.autoformalize.drafter import Draft
from llemma_prover.autoformalize.pipeline import autoformalize_theorem
from llemma_prover.autoformalize.prompts import load_dsp_prompt, split_formal
from llemma_prover.backends.base import make_backend
from llemma_prover.cli.main import main as cli_main
from llemma_prover.core.config import HolePolicy, ProverConfig
from llemma_prover.core.types import Reason, Status, Theorem
from llemma_prover.data.minif2f import load_split

pytestmark = pytest.mark.coq

POLICY = HolePolicy(hole_time_limit=30.0, theorem_time_limit=120.0)

SQRT_SKETCH = """Proof.
  intros y h0 h1.
  (* squaring both sides: 19 + 3y = 49 *)
  assert (h2 : 19 + 3 * y = 49).
  { rewrite <- (sqrt_sqrt (19 + 3 * y) h0). rewrite h1. hole. }
  (* subtract 19 and divide by 3 *)
  hole.
Qed."""


@pytest.fixture(scope="module")
def coq_test(minif2f_dir: Path) -> dict[str, Theorem]:
    ds = load_split(minif2f_dir, "coq", "test")
    return {t.name: t for t in ds.theorems}


@pytest.fixture(scope="module")
def backend():
    b = make_backend("coq", ProverConfig(tactic_timeout=3.0))
    with b:
        yield b


def _samples(rec):
    return rec.extra["dsp"]["samples"]


def test_prompt_examples_compile_with_our_coq(backend):
    prompt = load_dsp_prompt("coq")
    assert len(prompt.examples) >= 5
    for ex in prompt.examples:
        header, statement = split_formal(ex.formal)
        name = re.search(r"Theorem\s+(\w+)", statement).group(1)
        thm = Theorem(name=name, split="prompt", system="coq", header=header, statement=statement)
        out = autoformalize_theorem(thm, [Draft(ex.sketch)], "coq", backend, POLICY, "prompt", 1)
        rec = out.record
        assert rec.status is Status.PROVED, (name, _samples(rec))
        assert rec.check is not None and rec.check.ok and rec.check.checker == "coqchk"
        assert all(h["status"] == "closed" for h in _samples(rec)[0]["holes"])
        # the proof file compiles on its own with a plain coqc run, independent of the pipeline
        _coqc_ok(out.proof_text, name)


def _coqc_ok(text: str, name: str, tmp: Path | None = None) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "Check.v"
        f.write_text(text + f"\nPrint Assumptions {name}.\n")
        res = subprocess.run(["coqc", str(f)], capture_output=True, text=True, timeout=120, cwd=d)
        assert res.returncode == 0, res.stderr + res.stdout


def test_hand_written_sketch_for_real_problem_is_filled_and_checked(backend, coq_test):
    thm = coq_test["mathd_algebra_263"]
    out = autoformalize_theorem(thm, [Draft(SQRT_SKETCH)], "coq", backend, POLICY, "replay", 1)
    rec = out.record
    assert rec.status is Status.PROVED and rec.reason is Reason.PROVED, _samples(rec)
    holes = _samples(rec)[0]["holes"]
    assert [h["status"] for h in holes] == ["closed", "closed"]
    assert all(h["closed_by"] for h in holes)
    # what closed each hole is in the proof, wrapped so that it must close the hole
    assert f"solve [ {holes[0]['closed_by']} ]" in rec.proof
    assert rec.check.ok and rec.check.bad_axioms == ()
    assert "Admitted" not in out.proof_text and "admit" not in out.proof_text
    assert rec.time.check > 0 and rec.time.prover > 0
    _coqc_ok(out.proof_text, "mathd_algebra_263")


class _LyingStepper:
    """Wraps the real Coq backend but accepts every step: a stand-in for a hole filler that is wrong.

    ``check`` and ``dialect.proof_text`` are the real backend's (coqc + Print Assumptions), so this shows
    that a filled proof counts only if the independent check accepts it, whatever the filling loop
    believed."""

    def __init__(self, real):
        self.real = real
        self.dialect = real.dialect
        self.n = 0

    def start_theorem(self, theorem):
        return self.real.start_theorem(theorem)

    def apply(self, state_id, tactic):
        from llemma_prover.core.types import Advanced, ProofFinished

        self.n += 1
        if tactic.startswith("solve ["):
            return ProofFinished(state_id=self.n, elapsed=0.0)
        return Advanced(state_id=self.n, goals=("?",), elapsed=0.0)

    def check(self, theorem, proof):
        return self.real.check(theorem, proof)

    @property
    def restarts(self):
        return 0


def test_wrong_sketch_is_rejected_by_the_final_check(backend, coq_test):
    thm = coq_test["mathd_algebra_263"]
    wrong = "intros y h0 h1. assert (h2 : 19 + 3 * y = 48) by hole. hole."  # 19 + 3y is 49, not 48
    out = autoformalize_theorem(thm, [Draft(wrong)], "coq", _LyingStepper(backend), POLICY, "replay", 1)
    rec = out.record
    s = _samples(rec)[0]
    assert [h["status"] for h in s["holes"]] == ["closed", "closed"]  # the (lying) filler "closed" both...
    assert s["status"] == "check_failed"  # ...but the independent coqc check says no
    assert rec.status is Status.FAILED and rec.reason is Reason.CHECK_FAILED
    assert rec.check is not None and not rec.check.ok and rec.check.checker == "coqchk"
    assert "coqc (proof file) exit" in rec.check.message
    assert rec.proof is None and out.proof_text is None


def test_sketch_smuggling_is_refused_before_the_prover(backend, coq_test):
    thm = coq_test["imo_1959_p1"]
    bad = [
        "fix IH 1. intros n. specialize (IH n). hole.",  # a circular proof
        "intros. admit.",
        "intros n. Admitted.",
        "Axiom cheat : False. destruct cheat.",
        "intros. exact_no_check I.",
    ]
    out = autoformalize_theorem(thm, [Draft(b) for b in bad], "coq", backend, POLICY, "replay", len(bad))
    samples = _samples(out.record)
    assert [x["status"] for x in samples] == ["parse_error"] * len(bad)
    assert all(x["check"] is None and x["holes"] == [] for x in samples)


def test_hole_that_no_automation_closes(backend, coq_test):
    thm = coq_test["mathd_algebra_263"]
    wrong_claim = "intros y h0 h1. assert (h2 : 19 + 3 * y = 48) by hole. hole."
    out = autoformalize_theorem(
        thm, [Draft(wrong_claim)], "coq", backend, HolePolicy(hole_time_limit=60.0), "replay", 1
    )
    rec = out.record
    s = _samples(rec)[0]
    assert s["status"] == "hole_unclosed" and rec.status is Status.FAILED
    first, second = s["holes"]
    assert first["status"] == "unclosed" and first["closed_by"] is None
    assert len(first["attempts"]) >= 20  # every ranked tactic was tried and recorded
    assert {a["outcome"] for a in first["attempts"]} <= {"error", "timeout"}
    assert any(a["message"] for a in first["attempts"] if a["outcome"] == "error")
    assert second["status"] == "not_attempted"
    assert s["check"] is None  # nothing to check


def test_failing_structural_step_and_refused_sketch(backend, coq_test):
    thm = coq_test["mathd_algebra_263"]
    out = autoformalize_theorem(
        thm,
        [Draft("intros y h0 h1. rewrite no_such_lemma. hole."), Draft("intros. admit.")],
        "coq",
        backend,
        POLICY,
        "replay",
        2,
    )
    s0, s1 = _samples(out.record)
    assert s0["status"] == "step_failed" and "no_such_lemma" in s0["message"]
    assert s1["status"] == "parse_error" and "admit" in s1["message"]
    assert out.record.extra["dsp"]["n"] == 2 and out.record.extra["dsp"]["correct"] == 0


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------


def _results(out: Path) -> dict[str, dict]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {json.loads(x)["theorem"]: json.loads(x) for x in lines}


@pytest.mark.slow
def test_command_with_replayed_sketches_and_resume(tmp_path, minif2f_dir, capsys):
    replay = tmp_path / "sketches.jsonl"
    replay.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {
                    "theorem": "mathd_algebra_263",
                    "sketches": ["intros y h0 h1. assert (h2 : 19 + 3 * y = 48) by hole. hole.", SQRT_SKETCH],
                },
                {"theorem": "imo_1959_p1", "sketches": ["intros n. admit."]},
                {"theorem": "mathd_numbertheory_185", "sketches": ["intros n h0. hole."]},
            ]
        )
        + "\n"
    )
    out = tmp_path / "run"
    argv = [
        "autoformalize",
        "--split",
        "minif2f-test",
        "--backend",
        "coq",
        "--generator",
        "replay",
        "--replay-file",
        str(replay),
        "--samples",
        "2",
        "--data-dir",
        str(minif2f_dir),
        "--out",
        str(out),
        "--theorems",
        "mathd_algebra_263,imo_1959_p1,mathd_numbertheory_185,amc12b_2002_p2",
        "--tactic-timeout",
        "3",
        "--hole-time-limit",
        "30",
        "--workers",
        "2",
    ]
    before = descendants(os.getpid())  # e.g. the module's own backend fixture
    watcher = ProcessWatcher(os.getpid())
    try:
        assert cli_main(argv) == 0
    finally:
        watcher.stop()
    started = {p: v for p, v in watcher.matching("coqidetop").items() if p not in before}
    assert started, "the worker processes ran coqidetop"

    def left(needle: str, timeout: float) -> list[str]:
        return [x for x in watcher.alive(needle, timeout=timeout) if int(x.split()[0]) not in before]

    assert left("coqidetop", 15) == []
    assert left("coqc", 5) == []
    # the work ran on Ray workers (how many of the two took a theorem depends on which was up first:
    # the pool hands a job to whichever worker is ready) ...
    assert len(watcher.matching("ray::Worker")) >= 1
    assert left("ray::Worker", 30) == []  # ... and are gone
    res = _results(out)
    assert set(res) == {"mathd_algebra_263", "imo_1959_p1", "mathd_numbertheory_185", "amc12b_2002_p2"}
    a = res["mathd_algebra_263"]
    assert a["status"] == "proved" and a["generator"] == "replay"
    assert [s["status"] for s in a["extra"]["dsp"]["samples"]] == ["hole_unclosed", "proved"]
    assert a["extra"]["dsp"]["n"] == 2 and a["extra"]["dsp"]["correct"] == 1
    assert res["imo_1959_p1"]["reason"] == "search_exhausted"
    assert res["imo_1959_p1"]["extra"]["dsp"]["samples"][0]["status"] == "parse_error"
    assert res["mathd_numbertheory_185"]["status"] == "proved"
    assert res["amc12b_2002_p2"]["extra"]["dsp"]["no_sketch"] is True
    assert res["amc12b_2002_p2"]["status"] == "failed"
    # proof files of proved problems compile on their own
    for name in ("mathd_algebra_263", "mathd_numbertheory_185"):
        _coqc_ok((out / "proofs" / f"{name}.v").read_text(), name)
    summary = (out / "summary.md").read_text()
    assert "pass@1" in summary and "| 4 | 2 | 37.5% | 50.0% | 2 |" in summary
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["generator"]["name"] == "replay" and cfg["data_hash"] and cfg["drafter"]["samples"] == 2
    assert cfg["sandbox"] and cfg["prover_settings"] and cfg["time_budget_covers"]  # the shared provenance
    printed = capsys.readouterr().out
    assert "pass@1 37.5%" in printed
    # the same command again resumes: nothing runs twice
    before = (out / "results.jsonl").read_text()
    assert cli_main(argv) == 0
    assert (out / "results.jsonl").read_text() == before


@pytest.mark.slow
@pytest.mark.model
def test_command_baseline_none_and_tiny_model(tmp_path, minif2f_dir):
    pytest.importorskip("torch")
    import torch

    from llemma_prover.lm.synthetic import TINY_LLAMA_SHAPE, save_random_llama

    torch.set_num_threads(1)
    names = "mathd_numbertheory_185,mathd_algebra_33"
    out_none = tmp_path / "none"
    assert (
        cli_main(
            [
                "autoformalize",
                "--generator",
                "none",
                "--data-dir",
                str(minif2f_dir),
                "--out",
                str(out_none),
                "--theorems",
                names,
                "--tactic-timeout",
                "2",
                "--hole-time-limit",
                "20",
            ]
        )
        == 0
    )
    res = _results(out_none)
    assert res["mathd_numbertheory_185"]["status"] == "proved"
    assert res["mathd_numbertheory_185"]["proof"] == ["solve [ intros; lia ]"]
    assert res["mathd_algebra_33"]["extra"]["dsp"]["samples"][0]["status"] == "hole_unclosed"

    model_dir = save_random_llama(tmp_path / "tiny", TINY_LLAMA_SHAPE, seed=0)
    out_lm = tmp_path / "lm"
    assert (
        cli_main(
            [
                "autoformalize",
                "--generator",
                "llemma",
                "--model",
                str(model_dir),
                "--device",
                "cpu",
                "--temperature",
                "1.0",
                "--samples",
                "2",
                "--seed",
                "3",
                "--max-new-tokens",
                "16",
                "--data-dir",
                str(minif2f_dir),
                "--out",
                str(out_lm),
                "--theorems",
                names,
                "--tactic-timeout",
                "2",
                "--hole-time-limit",
                "10",
                "--hammer",
                "off",
            ]
        )
        == 0
    )
    res = _results(out_lm)
    for rec in res.values():
        assert rec["generator"] == "llemma"
        assert rec["time"]["model"] > 0
        samples = rec["extra"]["dsp"]["samples"]
        assert len(samples) == 2
        # random weights write random text: refused or failing sketches, each recorded with a reason
        for s in samples:
            assert s["status"] in {
                "parse_error",
                "step_failed",
                "hole_unclosed",
                "incomplete",
                "check_failed",
                "proved",
                "prover_error",
            }
            assert s["message"] or s["status"] == "proved"
            assert s["score"] <= 0
    cfg = json.loads((out_lm / "config.json").read_text())
    assert cfg["generator"]["describe"]["model"] == str(model_dir)
    assert cfg["generator"]["describe"]["decoding"] == "sampling(T=1.0)"


@pytest.mark.slow
def test_worker_killed_mid_theorem_is_retried_and_nothing_is_lost(coq_test):
    """SIGKILL a Ray worker while it fills a hole: its theorem is retried once by a new worker, the theorem
    it had not started yet is handed over, every theorem gets exactly one record, and no process is left."""
    import signal
    import threading
    import time as _time

    from llemma_prover.autoformalize.pipeline import run_split
    from llemma_prover.core.config import AutoformalizeConfig, DrafterConfig

    slow, quick = coq_test["amc12a_2020_p4"], coq_test["mathd_numbertheory_185"]
    cfg = AutoformalizeConfig(
        workers=1,
        drafter=DrafterConfig(name="none"),
        holes=HolePolicy(hole_time_limit=25.0),
        prover=ProverConfig(tactic_timeout=3.0),
    )
    written = []
    before = descendants(os.getpid())
    watcher = ProcessWatcher(os.getpid())
    killed: list[int] = []

    def killer() -> None:
        deadline = _time.monotonic() + 120
        while _time.monotonic() < deadline and not killed:
            # the processes as they are now (a Ray worker's title becomes ray::Worker.run only once it runs
            # a job, after the watcher first recorded it)
            now = {p: cmdline(p) for p in descendants(os.getpid()) - before if proc_stat(p)}
            workers = [p for p, cmd in now.items() if "ray::Worker.run" in cmd]
            coqtops = [p for p, cmd in now.items() if "coqidetop" in cmd]
            if workers and coqtops:
                _time.sleep(2.0)  # well inside the first theorem's hole filling
                try:
                    os.kill(workers[0], signal.SIGKILL)
                except ProcessLookupError:  # it finished in the meantime: look again
                    continue
                killed.append(workers[0])
                return
            _time.sleep(0.2)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    try:
        run_split(cfg, [slow, quick], lambda t: ([Draft("hole.")], 0.0), written.append)
    finally:
        th.join(5)
        watcher.stop()
    assert killed, "the worker was killed"
    recs = {o.record.theorem: o.record for o in written}
    assert sorted(recs) == sorted([slow.name, quick.name]) and len(written) == 2
    assert recs[slow.name].attempts == 2  # retried once after the kill
    assert recs[quick.name].attempts == 1 and recs[quick.name].status is Status.PROVED
    left = [x for x in watcher.alive("coqidetop", timeout=20) if int(x.split()[0]) not in before]
    assert left == []
    assert [x for x in watcher.alive("ray::Worker", timeout=30) if int(x.split()[0]) not in before] == []


def test_coqhammer_closes_a_hole_and_axioms_are_judged_by_the_original_header(backend, coq_test):
    from llemma_prover.backends.coq.automation import hammer_tactics_installed

    if not hammer_tactics_installed():
        pytest.skip("CoqHammer (Debian libcoq-hammer) is not installed")
    thm = coq_test["mathd_algebra_76"]  # only sauto closes it (measured: none of the other tactics does)
    out = autoformalize_theorem(
        thm, [Draft("hole.")], "coq", backend, HolePolicy(hole_time_limit=60.0, use_hammer=True), "none", 1
    )
    rec = out.record
    assert rec.status is Status.PROVED, _samples(rec)
    assert _samples(rec)[0]["holes"][0]["closed_by"] == "intros; sauto"
    assert (
        out.proof_text.startswith("(* llemma-prover")
        and "From Hammer Require Import Tactics." in out.proof_text
    )
    assert rec.check.ok and rec.check.bad_axioms == () and rec.extra["dsp"]["hammer"] is True
    _coqc_ok(out.proof_text, "mathd_algebra_76")
