"""``extract --backend coq``: proof steps replayed in real coqidetop, dependencies, resume, card, splits."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env

from llemma_prover.backends.sandbox import Sandbox
from llemma_prover.extract.coq_replay import FileJob, is_structural, is_tactic, replay_file
from llemma_prover.extract.sources import coq_stdlib, dependency_order, file_split, jobs_for, library_source

pytestmark = [
    pytest.mark.coq,
    pytest.mark.skipif(shutil.which("coqidetop.opt") is None, reason="coqidetop not installed"),
]

MINI = Path(__file__).resolve().parent / "fixtures" / "coq_extract" / "Mini"


def extract(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "llemma_prover.cli.main", "extract", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=cli_env())


def read_steps(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]


def test_sentence_kinds() -> None:
    for s in ("-", "--", "+", "***", "{", "}", "2: {", "[x]: {"):
        assert is_structural(s) and not is_tactic(s), s
    for s in ("intros.", "rewrite <- H.", "2: lia.", "all: auto.", "(intros; auto)."):
        assert is_tactic(s), s
    for s in ("Proof.", "Proof using Hf.", "Qed.", "Show.", "Hint Resolve x."):
        assert not is_tactic(s), s


def test_splits_are_deterministic_by_file() -> None:
    assert file_split("coq-stdlib", "Arith/PeanoNat.v") == file_split("coq-stdlib", "Arith/PeanoNat.v")
    stdlib = jobs_for(coq_stdlib())
    counts = {s: sum(1 for j in stdlib if j.split == s) for s in ("train", "valid", "test")}
    assert counts["valid"] > 10 and counts["test"] > 10 and counts["train"] > 450, counts
    # the rule stated in the card
    h = int.from_bytes(hashlib.sha256(b"coq-stdlib/Arith/PeanoNat.v").digest()[:4], "big") % 1000
    want = "test" if h < 50 else "valid" if h < 100 else "train"
    assert file_split("coq-stdlib", "Arith/PeanoNat.v") == want
    assert len(stdlib) > 500 and any(j.rel == "Init/Logic.v" and "-noinit" in j.args for j in stdlib)


def test_dependency_order_puts_requirements_first() -> None:
    assert dependency_order(str(MINI), "Mini", ["Uses.v", "Base.v"]) == ["Base.v", "Uses.v"]


def test_replays_an_installed_stdlib_file_step_by_step() -> None:
    root = coq_stdlib().root
    job = FileJob("coq-stdlib", "Arith/Between.v", f"{root}/Arith/Between.v", (), "train")
    res = replay_file(job, sandbox=Sandbox())
    assert res.failure is None, res.message
    assert res.proofs >= 19 and len(res.steps) > res.proofs
    first = res.steps[0]
    assert first["theorem"] == "bet_eq" and first["statement"].startswith("Lemma bet_eq")
    # section variables are hypotheses, goals as Coq reports them
    assert first["goals_before"] == [{"hyps": ["P, Q : nat -> Prop"],
                                      "concl": "forall k l, l = k -> between k l"}]
    for s in res.steps:
        assert set(s) >= {"library", "file", "theorem", "statement", "step", "goals_before", "tactic",
                          "goals_after", "split"}
        assert s["tactic"] and not s["tactic"].endswith(".")


def test_cli_extracts_a_library_with_dependencies_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "data"
    res = extract(str(MINI), "--workers", "0", "--out", str(out))
    assert res.returncode == 0, res.stderr
    steps = read_steps(out)
    by = {}
    for s in steps:
        by.setdefault((s["file"], s["theorem"]), []).append(s)
    # bullets and braces are not steps, but the tactics under them are, on the focused goal
    swap = [s["tactic"] for s in by[("Base.v", "and_swap")]]
    assert swap == ["intros A B H", "destruct H as [HA HB]", "split", "exact HB", "exact HA"]
    assert by[("Base.v", "and_swap")][3]["goals_before"] == [{"hyps": ["A, B : Prop", "HA : A", "HB : B"],
                                                               "concl": "B"}]
    assert by[("Base.v", "and_swap")][2]["goals_after"][1]["concl"] == "A"
    assert [s["tactic"] for s in by[("Base.v", "two")]] == ["exact 2"]  # Defined
    # Proof using, Variable/Context of a section
    f2 = by[("Base.v", "f_twice")]
    assert [s["tactic"] for s in f2] == ["intro x", "rewrite Hf", "apply Hf"]
    assert "Hf : forall x : T, f x = x" in f2[0]["goals_before"][0]["hyps"]
    assert [s["tactic"] for s in by[("Base.v", "by_ltac")]] == ["crush"]  # Ltac defined before the proof
    assert ("Base.v", "unfinished") not in by  # Admitted: skipped
    assert [s["tactic"] for s in by[("Uses.v", "uses_base")]][-2:] == ["apply plus_zero", "reflexivity"]
    assert [s["step"] for s in by[("Base.v", "plus_zero")]] == [0, 1, 2, 3]
    card = json.loads((out / "card.json").read_text())
    c = card["counts"]
    assert c["files"] == 2 and c["files_failed"] == 0 and c["proofs"] == 6 and c["admitted_skipped"] == 1
    assert c["steps"] == len(steps) == card["steps_lines"]
    assert card["steps_sha256"] == hashlib.sha256((out / "steps.jsonl").read_bytes()).hexdigest()
    assert card["contamination"]["checked"] and card["contamination"]["clean"] is True
    assert card["sources"][0]["logical"] == "Mini" and not card["sources"][0]["installed"]
    # a rerun skips finished files and gives the same data
    again = extract(str(MINI), "--workers", "0", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "2 done already" in again.stderr
    card2 = json.loads((out / "card.json").read_text())
    assert card2["steps_sha256"] == card["steps_sha256"]
    assert len(card2["time"]["runs"]) == 2 and card2["time"]["runs"][1]["files_done_before"] == 2
    assert card2["time"]["wall_seconds_all_runs"] >= card["time"]["wall_seconds"]
    # asking for other files in the same folder is refused
    other = extract("--coq-stdlib", "--limit", "1", "--workers", "0", "--out", str(out))
    assert other.returncode == 2 and "another --out" in other.stderr


def test_a_file_that_stops_keeps_its_earlier_proofs(tmp_path: Path) -> None:
    lib = tmp_path / "Broken"
    lib.mkdir()
    (lib / "B.v").write_text(
        "Lemma ok : True.\nProof. exact I. Qed.\n\nLemma bad : 1 = 2.\nProof.\n  reflexivity.\nQed.\n"
        "Lemma never : True.\nProof. exact I. Qed.\n")
    job = jobs_for(library_source(lib))[0]
    res = replay_file(job, sandbox=Sandbox())
    assert res.failure == "coq_error" and res.line == 6 and res.proofs == 1 and res.interrupted == 1
    assert [s["theorem"] for s in res.steps] == ["ok"]


@pytest.mark.ray
def test_cli_on_ray_workers(tmp_path: Path) -> None:
    out = tmp_path / "data"
    res = extract("--coq-stdlib", "--match", "Arith/(Between|Peano_dec)", "--workers", "2",
                          "--out", str(out), "--skip-contamination")
    assert res.returncode == 0, res.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["counts"]["files"] == 2 and card["counts"]["files_failed"] == 0
    assert card["counts"]["proofs"] >= 20 and card["time"]["workers"] == 2
    assert card["contamination"] == {"checked": False, "reason": "--skip-contamination"}



@pytest.mark.ray
@pytest.mark.slow
def test_a_worker_killed_mid_file_is_retried_on_the_generic_pool(tmp_path: Path) -> None:
    """extract runs on ``workers/pool.py``: SIGKILL the Ray worker while it replays a file; that file is
    replayed again by a fresh worker (not recorded as a crash), the other file is done too, every file
    is stored once, and no coqidetop is left."""
    import os
    import re
    import signal
    import threading
    import time

    from conftest import ProcessWatcher, cmdline, descendants, proc_stat

    from llemma_prover.extract.run import ExtractDir, ReplayOptions
    from llemma_prover.workers.extract_job import run_jobs

    jobs = [j for j in jobs_for(coq_stdlib()) if re.search(r"Lists/ListSet\.v$|Arith/Between\.v$", j.key)]
    assert len(jobs) == 2
    out = ExtractDir(tmp_path / "data")
    before = descendants(os.getpid())
    watcher = ProcessWatcher(os.getpid())
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not killed:
            now = {p: cmdline(p) for p in descendants(os.getpid()) - before if proc_stat(p)}
            workers = [p for p, cmd in now.items() if "ray::Worker.run" in cmd]
            if workers and any("coqidetop" in cmd for cmd in now.values()):
                try:
                    os.kill(workers[0], signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(workers[0])
                return
            time.sleep(0.05)

    results: list[object] = []
    th = threading.Thread(target=killer, daemon=True)
    th.start()
    try:
        run_jobs(jobs, out, ReplayOptions(), Sandbox(), workers=1, on_result=results.append)
    finally:
        th.join(5)
        watcher.stop()
    assert killed, "the worker was killed"
    assert sorted(r.key for r in results) == sorted(j.key for j in jobs)  # type: ignore[attr-defined]
    for j in jobs:
        summary = out.summary(j.key)
        assert summary["failure"] is None and summary["proofs"] > 0, summary
    left = [x for x in watcher.alive("coqidetop", timeout=20) if int(x.split()[0]) not in before]
    assert left == []
