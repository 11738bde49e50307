"""``llemma-prover doctor --backend coq`` against the real coqtop/coqc, and the checklist machinery."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llemma_prover.cli.main import main
from llemma_prover.core.config import ProverConfig
from llemma_prover.doctor.checks import Checklist, Outcome, Verdict
from llemma_prover.doctor.coq import run_coq_checks

needs_coq = pytest.mark.skipif(shutil.which("coqtop") is None, reason="coqtop not installed")

COQ_CHECKS = [
    "coqtop",
    "coqc",
    "coqidetop",
    "sandbox rlimits",
    "sandbox network",
    "sandbox process tree",
    "header and statement load",
    "tactic step",
    "tactic error",
    "proof finished",
    "tactic timeout",
    "recovery after timeout",
    "re-check accepts a proof",
    "re-check rejects Admitted",
    "re-check rejects axiom",
    "Coquelicot",
    "CoqHammer",
]


@pytest.mark.coq
@pytest.mark.slow
@needs_coq
def test_doctor_coq_passes_for_real(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "doctor.json"
    rc = main(["doctor", "--backend", "coq", "--json", str(out)])
    report = json.loads(out.read_text())
    failed = [c for c in report["checks"] if c["outcome"] == "fail"]
    assert rc == 0 and report["ok"], failed
    assert [c["name"] for c in report["checks"]] == COQ_CHECKS
    # a warning is allowed only for network isolation and cgroups (CI machines may forbid both)
    warned = {c["name"] for c in report["checks"] if c["outcome"] != "pass"}
    assert warned <= {"sandbox network", "sandbox process tree", "coqidetop"}
    assert report["elapsed_s"] < 120
    table = capsys.readouterr().out
    assert "re-check rejects Admitted" in table and "all checks passed" in table


@pytest.mark.coq
@needs_coq
def test_missing_coqtop_fails_with_a_remedy_and_skips_what_needs_it(tmp_path: Path) -> None:
    cl = Checklist("coq", deadline=float("inf"))
    run_coq_checks(cl, ProverConfig(executable=str(tmp_path / "no" / "coqtop")))
    by = {c.name: c for c in cl.checks}
    assert by["coqtop"].outcome is Outcome.FAIL and "not found" in by["coqtop"].seen
    assert "scripts/setup.sh" in by["coqtop"].remedy
    assert by["header and statement load"].outcome is Outcome.SKIP
    assert "coqtop did not pass" in by["header and statement load"].seen


def test_checklist_exception_is_a_failure_and_prerequisites_skip() -> None:
    cl = Checklist("x", deadline=float("inf"))

    def boom() -> Verdict:
        raise RuntimeError("the component broke")

    assert cl.run("a", "works", "fix a", boom) is None
    assert cl.run("b", "works", "fix b", lambda: Verdict(True, "fine", 42), needs=["a"]) is None
    assert cl.run("c", "works", "fix c", lambda: Verdict(True, "fine", 42)) == 42
    assert cl.run("d", "works", "fix d", lambda: Verdict(False, "odd", otherwise=Outcome.WARN)) is None
    a, b, c, d = cl.checks
    assert a.outcome is Outcome.FAIL and "RuntimeError: the component broke" in a.seen and a.remedy == "fix a"
    assert b.outcome is Outcome.SKIP and c.outcome is Outcome.PASS and c.remedy == ""
    assert d.outcome is Outcome.WARN


def test_checklist_deadline_marks_the_rest_not_run() -> None:
    now = [0.0]
    cl = Checklist("x", deadline=10.0, clock=lambda: now[0])

    def slow() -> Verdict:
        now[0] += 11.0
        return Verdict(True, "done")

    cl.run("a", "", "", slow)
    cl.run("b", "", "", lambda: Verdict(True, "never"))
    assert cl.checks[0].outcome is Outcome.PASS and cl.checks[0].elapsed == 11.0
    assert cl.checks[1].outcome is Outcome.FAIL and "budget" in cl.checks[1].seen


def test_bad_options_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--backend", "none", "--budget", "0"]) == 2
    assert "--budget" in capsys.readouterr().err
