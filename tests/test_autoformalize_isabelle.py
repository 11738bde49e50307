"""Draft-Sketch-Prove on the Isabelle backend, against the fake Isabelle server (no Isabelle here).

The fake (tests/fixtures/fake_isabelle.py) speaks the real wire protocol; which proof method "works" on
which claim is scripted by an oracle file, so these tests check OUR loop: heuristics in order, a
timed-out method cancelled and recorded, Sledgehammer's suggestion parsed and re-checked, the filled
theory checked as a whole, records and proof files written, and the server process gone afterwards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_isabelle_client import make_fake

from llemma_prover.autoformalize.drafter import Draft
from llemma_prover.autoformalize.pipeline import autoformalize_theorem
from llemma_prover.backends.base import make_backend
from llemma_prover.backends.isabelle.automation import HEURISTICS
from llemma_prover.cli.main import main as cli_main
from llemma_prover.core.config import HolePolicy, ProverConfig
from llemma_prover.core.types import Reason, Status, Theorem
from llemma_prover.data.minif2f import load_split

SKETCH = """proof -
  (* squaring both sides *)
  have h2: "19 + 3 * y = 49" using assms sledgehammer
  then show ?thesis sledgehammer
qed"""

ORACLE = {
    "claims": {
        "19 + 3 * y = 49": {
            "auto": "Failed to finish proof",
            "simp": "hang",
            "(metis assms power2_eq_square real_sqrt_pow2)": "ok",
        },
        "y = 10": {"linarith": "ok"},
    },
    "sledgehammer": {"19 + 3 * y = 49": "by (metis assms power2_eq_square real_sqrt_pow2)"},
}

POLICY = HolePolicy(hole_time_limit=60.0, theorem_time_limit=120.0, sledgehammer_timeout=5.0)


@pytest.fixture(scope="module")
def isa_test(minif2f_dir: Path) -> dict[str, Theorem]:
    return {t.name: t for t in load_split(minif2f_dir, "isabelle", "test").theorems}


def test_heuristics_then_sledgehammer_fill_and_check(tmp_path, isa_test):
    exe = make_fake(tmp_path, ORACLE)
    backend = make_backend("isabelle", ProverConfig(executable=exe, tactic_timeout=1.0, check_timeout=10))
    with backend:
        out = autoformalize_theorem(
            isa_test["mathd_algebra_263"], [Draft(SKETCH)], "isabelle", backend, POLICY, "replay", 1
        )
        pid = backend.server_pid
    rec = out.record
    assert rec.status is Status.PROVED and rec.reason is Reason.PROVED, rec.extra["dsp"]["samples"][0][
        "message"
    ]
    h0, h1 = rec.extra["dsp"]["samples"][0]["holes"]
    # hole 1: every heuristic failed (simp timed out and was cancelled), Sledgehammer's proof was re-checked
    assert h0["closed_by"] == "by (metis assms power2_eq_square real_sqrt_pow2)"
    tried = [a["tactic"] for a in h0["attempts"]]
    assert tried[: len(HEURISTICS)] == list(HEURISTICS)
    assert tried[len(HEURISTICS)] == "sledgehammer"
    outcomes = {a["tactic"]: a["outcome"] for a in h0["attempts"]}
    assert outcomes["by simp"] == "timeout" and outcomes["by auto"] == "error"
    # hole 2: the 10th heuristic
    assert h1["closed_by"] == "by linarith"
    assert [a["tactic"] for a in h1["attempts"]][-1] == "by linarith"
    assert rec.check.ok and rec.check.checker.startswith("isabelle")
    assert "sledgehammer" not in rec.proof[0] and "sorry" not in rec.proof[0]
    assert out.proof_text.startswith("theory mathd_algebra_263") and out.proof_text.endswith("\nend\n")
    assert "using assms by (metis assms power2_eq_square real_sqrt_pow2)" in out.proof_text
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_unclosed_hole_and_broken_skeleton(tmp_path, isa_test):
    exe = make_fake(tmp_path, {"claims": {}})
    backend = make_backend("isabelle", ProverConfig(executable=exe, tactic_timeout=1.0))
    with backend:
        out = autoformalize_theorem(
            isa_test["mathd_numbertheory_185"],
            [Draft("sledgehammer"), Draft("proof -\n  frobnicate\n  show ?thesis sledgehammer\nqed")],
            "isabelle",
            backend,
            POLICY,
            "replay",
            2,
        )
    s0, s1 = out.record.extra["dsp"]["samples"]
    assert s0["status"] == "hole_unclosed"
    assert [a["tactic"] for a in s0["holes"][0]["attempts"]] == [*HEURISTICS, "sledgehammer"]
    assert s1["status"] == "step_failed" and "skeleton" in s1["message"] and "frobnicate" in s1["message"]
    assert out.record.status is Status.FAILED


def test_autoformalize_command_on_isabelle(tmp_path, minif2f_dir, monkeypatch):
    exe = Path(make_fake(tmp_path, ORACLE))
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    replay = tmp_path / "sk.jsonl"
    replay.write_text(json.dumps({"theorem": "mathd_algebra_263", "sketches": [SKETCH]}) + "\n")
    out = tmp_path / "run"
    rc = cli_main(
        [
            "autoformalize",
            "--backend",
            "isabelle",
            "--generator",
            "replay",
            "--replay-file",
            str(replay),
            "--data-dir",
            str(minif2f_dir),
            "--out",
            str(out),
            "--theorems",
            "mathd_algebra_263,mathd_algebra_107",
            "--tactic-timeout",
            "1",
            "--sledgehammer-timeout",
            "5",
        ]
    )
    assert rc == 0
    recs = {json.loads(x)["theorem"]: json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()}
    assert recs["mathd_algebra_263"]["status"] == "proved"
    assert recs["mathd_algebra_107"]["extra"]["dsp"]["no_sketch"] is True
    assert (out / "proofs" / "mathd_algebra_263.thy").read_text().startswith("theory mathd_algebra_263")
    # the fake server wrote its pid when it started; it must be gone now
    pid = int((tmp_path / "server.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
