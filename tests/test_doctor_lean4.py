"""``doctor --backend lean4`` against the replay REPL (real recorded transcripts) and against a missing
or broken REPL. No Lean runs here; ``lean --version`` is a stub printing the transcripts' toolchain."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from llemma_prover.doctor import lean4 as dlean
from llemma_prover.doctor.checks import Checklist, Outcome

REPO = Path(__file__).resolve().parents[1]
TRANSCRIPTS = Path(
    os.environ.get("LLEMMA_PROVER_LEAN_TRANSCRIPTS", REPO.parent / "shared/lean4_repl/transcripts")
)
FIXTURE = REPO / "tests" / "fixtures" / "lean4_doctor"

pytestmark = pytest.mark.skipif(not TRANSCRIPTS.is_dir(), reason=f"no REPL transcripts at {TRANSCRIPTS}")

LEAN_CHECKS = [
    "REPL found",
    "Lean version",
    "start by sorry",
    "sorry warning recognised",
    "both sorry spellings",
    "steps to proofStatus Completed",
    "tactic error",
    "Mathlib header under the memory cap",
    "#print axioms framing",
    "backend proves complex_and",
    "timeout and restart",
]


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def lean_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stub ``lean`` printing the version the transcripts were recorded with (v4.33.0-rc2)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(
        bin_dir / "lean", "#!/bin/sh\necho 'Lean (version 4.33.0-rc2, x86_64-unknown-linux-gnu, Release)'\n"
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return bin_dir


def replay_repl(tmp_path: Path) -> Path:
    """The replay REPL as one executable, serving the real transcripts plus the doctor fixture."""
    served = tmp_path / "transcripts"
    shutil.copytree(TRANSCRIPTS, served)
    shutil.copytree(FIXTURE, served / "doctor")
    return executable(
        tmp_path / "repl",
        f"#!/bin/sh\nexec {sys.executable} -m llemma_prover.testing.replay_repl "
        f"--transcripts {served} --hang '{dlean.SLEEP_TACTIC}' --log {tmp_path / 'requests.jsonl'}\n",
    )


def test_doctor_requests_are_the_recorded_ones() -> None:
    recorded = json.loads((TRANSCRIPTS / "mathlib/H20231020.in").read_text().split("\n\n")[0])["cmd"]
    assert recorded == dlean.HEADER
    assert dlean.BRANCHING in (TRANSCRIPTS / "proof_branching.in").read_text()
    assert dlean.DEF_F in (TRANSCRIPTS / "unknown_tactic.in").read_text()


def test_lean4_checks_pass_on_the_replay_repl(tmp_path: Path, lean_on_path: Path) -> None:
    repl = replay_repl(tmp_path)
    cl = Checklist("lean4", float("inf"))
    dlean.run_lean4_checks(cl, str(repl))
    assert [c.name for c in cl.checks] == LEAN_CHECKS
    failed = [c for c in cl.checks if c.outcome is not Outcome.PASS]
    assert not failed, failed
    by = {c.name: c for c in cl.checks}
    assert "4.33.0-rc2" in by["Lean version"].seen
    assert "declaration uses `sorry`" in by["sorry warning recognised"].seen
    assert (
        "'Completed'" in by["steps to proofStatus Completed"].seen
        and " ms" in by["steps to proofStatus Completed"].seen
    )
    assert "RLIMIT_AS" in by["Mathlib header under the memory cap"].seen
    assert "propext" in by["#print axioms framing"].seen
    assert (
        "TacticTimeout" in by["timeout and restart"].seen and "restarts 1" in by["timeout and restart"].seen
    )
    sent = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert {"tactic": dlean.SLEEP_TACTIC, "proofState": 0} in sent


def test_missing_repl_fails_with_how_to_build_it(tmp_path: Path) -> None:
    cl = Checklist("lean4", float("inf"))
    dlean.run_lean4_checks(cl, str(tmp_path / "no" / "repl"))
    by = {c.name: c for c in cl.checks}
    assert by["REPL found"].outcome is Outcome.FAIL and "no such file" in by["REPL found"].seen
    assert "lake build repl" in by["REPL found"].remedy
    assert by["Lean version"].outcome is Outcome.SKIP
    assert list(by) == ["REPL found", "Lean version"]


def test_broken_repl_and_old_lean_fail_with_remedies(tmp_path: Path, lean_on_path: Path) -> None:
    executable(lean_on_path / "lean", "#!/bin/sh\necho 'Lean (version 4.9.0, Release)'\n")
    broken = executable(tmp_path / "repl", "#!/bin/sh\necho 'error: unknown package Mathlib' >&2\nexit 1\n")
    cl = Checklist("lean4", float("inf"))
    dlean.run_lean4_checks(cl, str(broken))
    by = {c.name: c for c in cl.checks}
    assert by["REPL found"].outcome is Outcome.PASS
    assert by["Lean version"].outcome is Outcome.FAIL and "4.9.0" in by["Lean version"].seen
    start = by["start by sorry"]
    assert (
        start.outcome is Outcome.FAIL and "exited" in start.seen and "unknown package Mathlib" in start.seen
    )
    assert by["both sorry spellings"].outcome is Outcome.PASS  # our own detection, independent of the REPL
    assert by["backend proves complex_and"].outcome is Outcome.SKIP
    assert all(by[n].outcome is Outcome.SKIP for n in ("steps to proofStatus Completed", "tactic error"))


def test_leandojo_without_the_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import llemma_prover.doctor.leandojo as doctor_leandojo
    from llemma_prover.doctor.leandojo import run_leandojo_checks

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "lean_dojo" else real(n, *a))
    monkeypatch.setattr(doctor_leandojo, "lean_dojo_version", lambda: None)
    cl = Checklist("leandojo", float("inf"))
    run_leandojo_checks(cl)
    by = {c.name: c for c in cl.checks}
    remedy = by["lean_dojo package"].remedy
    assert by["lean_dojo package"].outcome is Outcome.FAIL
    assert "pip install 'llemma-prover[leandojo]'" in remedy and "\n" not in remedy
    # a release older than the adapter's floor fails the same way
    monkeypatch.setattr(doctor_leandojo, "lean_dojo_version", lambda: (2, 2, 0))
    monkeypatch.setattr(importlib.util, "find_spec", real)
    cl = Checklist("leandojo", float("inf"))
    run_leandojo_checks(cl)
    old = {c.name: c for c in cl.checks}["lean_dojo package"]
    assert old.outcome is Outcome.FAIL and "2.2.0 is older than 4.20" in old.seen
    assert by["git"].outcome is Outcome.PASS  # git is installed here


def test_cli_exit_status_and_json_for_a_missing_repl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llemma_prover.cli.main import main

    out = tmp_path / "r.json"
    rc = main(["doctor", "--backend", "lean4", "--lean-repl", str(tmp_path / "nope"), "--json", str(out)])
    report = json.loads(out.read_text())
    assert rc == 1 and not report["ok"] and report["counts"]["fail"] == 1
    assert report["checks"][0]["remedy"].startswith("build the REPL")
    assert "1 check(s) FAILED" in capsys.readouterr().out


def test_doctor_table_shows_the_leandojo_remedy_verbatim(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``doctor --backend leandojo`` without lean-dojo: the printed table keeps ``[leandojo]`` (rich markup
    would swallow it as a style tag) and the remedy is the one-line install command."""
    import llemma_prover.doctor.leandojo as doctor_leandojo
    from llemma_prover.cli.main import main

    monkeypatch.setattr(doctor_leandojo, "lean_dojo_version", lambda: None)
    main(["doctor", "--backend", "leandojo"])
    out = capsys.readouterr().out
    assert "pip install 'llemma-prover[leandojo]'" in out

