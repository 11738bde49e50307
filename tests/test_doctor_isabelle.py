"""``doctor --backend isabelle`` against the fake Isabelle server (tests/fixtures/fake_isabelle.py, the
documented wire protocol; no Isabelle can run here), and with Isabelle missing."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

from llemma_prover.doctor import isabelle as disa
from llemma_prover.doctor.checks import Checklist, Outcome

FAKE = Path(__file__).parent / "fixtures" / "fake_isabelle.py"
CHECKS = ["isabelle executable", "server handshake", "session start", "use_theories error with position",
          "proof finished", "sorry rejected", "Sledgehammer"]


def fake_isabelle(tmp_path: Path, oracle: dict, version: str = "Isabelle2025-2") -> Path:
    """An ``isabelle`` wrapper: ``version`` prints a release name, everything else runs the fake."""
    opath = tmp_path / "oracle.json"
    opath.write_text(json.dumps({**oracle, "pidfile": str(tmp_path / "server.pid")}))
    exe = tmp_path / "isabelle"
    exe.write_text(f'#!/bin/sh\nif [ "$1" = version ]; then echo "{version}"; exit 0; fi\n'
                   f'exec {sys.executable} {FAKE} --oracle {opath} "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def run(exe: str) -> dict[str, object]:
    cl = Checklist("isabelle", float("inf"))
    disa.run_isabelle_checks(cl, exe)
    return {c.name: c for c in cl.checks}


def test_isabelle_checks_pass_on_the_fake_server(tmp_path: Path) -> None:
    exe = fake_isabelle(tmp_path, {"claims": {disa.GOAL: {"simp": "ok"}},
                                   "sledgehammer": {disa.GOAL: "by simp"}})
    by = run(str(exe))
    assert list(by) == CHECKS
    assert all(c.outcome is Outcome.PASS for c in by.values()), by  # type: ignore[attr-defined]
    assert "Isabelle2025-2" in by["isabelle executable"].seen  # type: ignore[attr-defined]
    assert "127.0.0.1" in by["server handshake"].seen  # type: ignore[attr-defined]
    assert "line" in by["use_theories error with position"].seen  # type: ignore[attr-defined]
    assert "re-check: ok=False" in by["sorry rejected"].seen  # type: ignore[attr-defined]
    assert "by simp" in by["Sledgehammer"].seen  # type: ignore[attr-defined]


def test_old_release_fails_with_a_remedy(tmp_path: Path) -> None:
    exe = fake_isabelle(tmp_path, {"claims": {disa.GOAL: {"simp": "ok"}}}, version="Isabelle2021-1")
    by = run(str(exe))
    version = by["isabelle executable"]
    assert version.outcome is Outcome.FAIL and "Isabelle2021-1" in version.seen  # type: ignore[attr-defined]
    assert "Isabelle2025-2" in version.remedy  # type: ignore[attr-defined]
    assert by["server handshake"].outcome is Outcome.SKIP  # type: ignore[attr-defined]


def test_no_sledgehammer_suggestion_fails(tmp_path: Path) -> None:
    exe = fake_isabelle(tmp_path, {"claims": {disa.GOAL: {"simp": "ok"}}})
    hammer = run(str(exe))["Sledgehammer"]
    assert hammer.outcome is Outcome.FAIL and "components" in hammer.remedy  # type: ignore[attr-defined]


def test_missing_isabelle_fails_with_how_to_install(tmp_path: Path) -> None:
    by = run(str(tmp_path / "no" / "isabelle"))
    assert by["isabelle executable"].outcome is Outcome.FAIL  # type: ignore[attr-defined]
    assert "isabelle.in.tum.de" in by["isabelle executable"].remedy  # type: ignore[attr-defined]
    assert all(by[n].outcome is Outcome.SKIP for n in CHECKS[1:])  # type: ignore[attr-defined]
