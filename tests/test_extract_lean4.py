"""Lean 4 proof steps from the REPL's ``allTactics``/``infotree`` output, on recorded real transcripts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from llemma_prover.backends.lean4.repl_process import ReplProcess
from llemma_prover.extract.lean4 import (
    extract_file,
    parse_goals,
    steps_from_all_tactics,
    steps_from_infotree,
    traced_theorems,
)
from llemma_prover.testing.replay_repl import load_transcripts

REPO = Path(__file__).resolve().parents[1]
TRANSCRIPTS = Path(
    os.environ.get("LLEMMA_PROVER_LEAN_TRANSCRIPTS", REPO.parent / "shared/lean4_repl/transcripts")
)

pytestmark = pytest.mark.skipif(not TRANSCRIPTS.is_dir(), reason="Lean 4 REPL transcripts not found")

FIELDS = {"library", "file", "theorem", "statement", "step", "goals_before", "tactic", "goals_after", "split",
          "state_before", "state_after", "pos", "end_pos"}


def recorded(name: str, i: int = 0) -> tuple[dict, dict]:  # type: ignore[type-arg]
    e = load_transcripts(TRANSCRIPTS)[name][i]
    return e.request, e.reply


def test_parse_goals() -> None:
    assert parse_goals("x y z : Nat\n⊢ x + y = y + x") == [{"hyps": ["x y z : Nat"],
                                                             "concl": "x + y = y + x"}]
    assert parse_goals("no goals") == []
    two = parse_goals("case h\nP : Prop\n⊢ P\n\ncase g\n⊢ True")
    assert two == [{"hyps": ["P : Prop"], "concl": "P", "case": "h"},
                   {"hyps": [], "concl": "True", "case": "g"}]


def test_file_with_all_tactics() -> None:
    req, reply = recorded("file2")
    source = (TRANSCRIPTS / "file2.lean").read_text()
    steps = steps_from_all_tactics(reply, source, library="test", file=req["path"])
    assert len(steps) == 1
    s = steps[0]
    assert set(s) >= FIELDS
    assert s["theorem"] == "h" and s["statement"].startswith("theorem h (x y z : Nat)")
    assert s["tactic"] == "rw [Nat.add_assoc, Nat.add_comm y, h1]"
    assert s["goals_before"] == [{"hyps": ["x y z : Nat"], "concl": "x + y + (z + a) = x + (z + b + y)"}]
    assert s["state_after"] == "no goals" and s["goals_after"] == []  # the file compiled without errors
    assert s["pos"] == [7, 2] and s["end_pos"] == [7, 40]
    th = traced_theorems(steps)
    assert th[0]["full_name"] == "h" and th[0]["traced_tactics"][0]["state_before"].startswith("x y z : Nat")


def test_state_after_is_the_next_tactics_state() -> None:
    req, reply = recorded("all_tactics")
    steps = steps_from_all_tactics(reply, req["cmd"], library="test", file="cmd")
    assert [s["tactic"] for s in steps] == ["have t := 37", "exact t"]
    assert steps[0]["state_after"] == "t : Nat\n⊢ Nat" == steps[1]["state_before"]
    assert steps[0]["goals_after"] == [{"hyps": ["t : Nat"], "concl": "Nat"}]
    assert steps[1]["state_after"] == "no goals" and steps[0]["theorem"] == "f"


def test_sorry_leaves_the_state_after_unknown_and_nested_tactics_are_skipped() -> None:
    req, reply = recorded("calc")
    steps = steps_from_all_tactics(reply, req["cmd"], library="test", file="cmd")
    assert [s["tactic"].split("\n")[0] for s in steps][0] == "calc"
    assert steps[0]["goals_before"] == [{"hyps": [], "concl": "3 = 5"}]
    # the declaration uses sorry: no step claims the proof was finished
    assert all(s["state_after"] != "no goals" or s["state_before"] == "no goals" for s in steps)
    assert steps[0]["state_after"] is None


def test_infotree_gives_goals_after() -> None:
    req, reply = recorded("infotree")
    steps = steps_from_infotree(reply, req["cmd"], library="test", file="cmd")
    assert len(steps) == 1 and steps[0]["tactic"] == "constructor" and steps[0]["theorem"] == "f"
    assert steps[0]["goals_before"] == [{"hyps": ["h : Int"], "concl": "Nat"}]
    assert steps[0]["state_after"] == "no goals"
    req, reply = recorded("infotree_theorem")
    steps = steps_from_infotree(reply, req["cmd"], library="test", file="cmd")
    assert [s["tactic"] for s in steps][:1] == ["exact h"] and steps[0]["theorem"] == "show_p"
    assert steps[0]["goals_before"] == [{"hyps": ["p : Prop", "h : p"], "concl": "p"}]


def test_through_the_repl_process(tmp_path: Path) -> None:
    """The request is sent to a REPL process (here the replay of real transcripts) and its reply used."""
    argv = [sys.executable, "-m", "llemma_prover.testing.replay_repl", "--transcripts", str(TRANSCRIPTS)]
    repl = ReplProcess(argv, cwd=str(Path(__file__).resolve().parents[1]),
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    repl.spawn()
    try:
        steps = extract_file(repl, "test/file.lean", (TRANSCRIPTS / "file.lean").read_text(),
                             library="test", file="file.lean", timeout=30)
    finally:
        repl.kill()
    assert [(s["theorem"], s["tactic"], s["state_after"]) for s in steps] == [("h", "exact rfl", "no goals")]
    assert steps[0]["goals_before"] == [{"hyps": [], "concl": "f + g = 39"}]
