"""End to end with the real coqidetop/coqc: ``prove --workers 0`` (no Ray), interruption and resume."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import networkx as nx
import pytest
from conftest import ProcessWatcher, cli_command, cli_env, default_sigint, run_cli

from llemma_prover.data.minif2f import sha256_files

pytestmark = [pytest.mark.coq, pytest.mark.slow]

#: known short proofs (the replay generator offers them) of easy miniF2F-test problems
PROOFS = {
    "mathd_algebra_142": ["intros.", "lra."],
    "mathd_algebra_160": ["intros.", "lra."],
    "mathd_algebra_171": ["intros H.", "rewrite H.", "lra."],
    "mathd_algebra_176": ["ring."],
}
#: a tactic that runs until the tactic timeout: makes a theorem take a few seconds (the prover is
#: killed and replaced on each timeout)
SLOW = "do 1000000000 (try fail)."
SLOW_THEOREMS = ["aime_1983_p1", "aime_1983_p2", "imo_1959_p1"]


def write_replay(path: Path, slow: list[str] = SLOW_THEOREMS) -> Path:
    lines = [json.dumps({"theorem": n, "tactics": t}) for n, t in PROOFS.items()]
    lines += [json.dumps({"theorem": n, "tactics": ["intros.", SLOW]}) for n in slow]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]


def test_prove_in_process_with_replay(tmp_path: Path, minif2f_dir: Path) -> None:
    replay = write_replay(tmp_path / "replay.jsonl", slow=[])
    names = [*PROOFS, "aime_1983_p1"]  # the last one has no replay tactics: it cannot be proved
    out = tmp_path / "run"
    cmd = cli_command("--generator", "replay", "--replay-file", str(replay), "--theorems", ",".join(names),
                      "--workers", "0", "--out", str(out), "--time-budget", "60")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    watcher = ProcessWatcher(proc.pid)
    stdout, stderr = proc.communicate(timeout=600)
    watcher.stop()
    assert proc.returncode == 0, stderr
    assert "generator: replay" in stderr and f"run directory: {out}" in stderr
    assert "mathd_algebra" in stdout and "4/5" in stdout  # the summary table
    assert watcher.matching("coqidetop"), "the run did not use coqidetop"
    assert watcher.alive("coqidetop", timeout=10) == [], "coqidetop left behind after the CLI exited"

    recs = {r["theorem"]: r for r in read_records(out)}
    assert set(recs) == set(names) and len(read_records(out)) == len(names)
    for name in PROOFS:
        r = recs[name]
        assert r["status"] == "proved" and r["reason"] == "proved", r
        assert r["check"]["ok"] is True and r["check"]["bad_axioms"] == []
        assert r["proof"] and r["generator"] == "replay" and r["family"] == "mathd_algebra"
        assert r["time"]["total"] >= r["time"]["prover"] > 0 and r["time"]["check"] > 0
        proof_file = (out / "proofs" / f"{name}.v").read_text()
        assert f"Theorem {name}" in proof_file and "Qed." in proof_file
        # each tactic is written as ``( body\n).`` (recheck.py: a line that opens with a parenthesis
        # can only parse as a tactic)
        assert f"( {r['proof'][-1].rstrip('.')}\n)." in proof_file
    fail = recs["aime_1983_p1"]
    assert fail["status"] == "failed" and fail["proof"] is None and fail["check"] is None
    assert not (out / "proofs" / "aime_1983_p1.v").exists()

    # traces: networkx node-link JSON with the proof path
    trace = json.loads((out / recs["mathd_algebra_171"]["trace"]).read_text())
    g = nx.node_link_graph(trace, edges="edges")
    assert g.graph["proved"] is True and g.graph["proof"] == recs["mathd_algebra_171"]["proof"]
    assert g.nodes[0]["goals"]

    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format_version"] == 1 and cfg["split"] == "minif2f-test" and cfg["backend"] == "coq"
    assert cfg["data_hash"] == sha256_files([minif2f_dir / "coq" / "test.jsonl"])
    assert cfg["generator"]["name"] == "replay" and cfg["generator"]["note"]
    assert cfg["packages"]["ray"] and cfg["git_commit"] and cfg["command"][0] == "llemma-prover"
    assert cfg["search"]["time_budget"] == 60 and cfg["search"]["candidates"] == 32  # llemma defaults
    assert "| **all** | 4/5 | 80.0% |" in (out / "summary.md").read_text()
    assert "mathd_algebra_176: proved" in (out / "run.log").read_text()

    # the same command again: nothing to do, same records, same summary
    again = run_cli("--generator", "replay", "--replay-file", str(replay), "--theorems", ",".join(names),
                    "--workers", "0", "--out", str(out), "--time-budget", "60")
    assert again.returncode == 0, again.stderr
    assert "5 already done, 0 to run" in again.stderr
    assert len(read_records(out)) == len(names)


def test_interrupt_then_resume(tmp_path: Path) -> None:
    replay = write_replay(tmp_path / "replay.jsonl")
    names = [*SLOW_THEOREMS, *PROOFS]
    out = tmp_path / "run"
    args = ("--generator", "replay", "--replay-file", str(replay), "--theorems", ",".join(names),
            "--workers", "0", "--out", str(out), "--tactic-timeout", "1.5")
    proc = subprocess.Popen(cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(),
                            preexec_fn=default_sigint)
    watcher = ProcessWatcher(proc.pid)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and results.read_text().count("\n") >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    watcher.stop()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert watcher.alive("coqidetop", timeout=10) == []
    first = read_records(out)
    assert 1 <= len(first) < len(names)
    kept = results.read_text()

    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    assert f"{len(first)} already done" in res.stderr
    recs = read_records(out)
    assert sorted(r["theorem"] for r in recs) == sorted(names)  # every theorem exactly once
    assert results.read_text().startswith(kept)  # earlier records untouched
    by_name = {r["theorem"]: r for r in recs}
    assert all(by_name[n]["status"] == "proved" for n in PROOFS)
    assert all(by_name[n]["status"] == "failed" for n in SLOW_THEOREMS)


def test_prove_with_bank_generator_and_its_budgets(tmp_path: Path) -> None:
    """The default generator on a CPU machine: ``auto`` resolves to ``bank`` with BANK_SEARCH budgets."""
    from llemma_prover.core.config import BANK_SEARCH

    # minif2f-valid problems: the bank is chosen on valid, and no test-split outcome may steer it
    names = ["mathd_numbertheory_101", "mathd_algebra_123"]
    out = tmp_path / "run"
    res = run_cli("--split", "minif2f-valid", "--theorems", ",".join(names), "--workers", "0",
                  "--out", str(out), env=cli_env(CUDA_VISIBLE_DEVICES=""))
    assert res.returncode == 0, res.stderr
    assert "generator: bank (auto: no GPU found, using bank)" in res.stderr
    recs = {r["theorem"]: r for r in read_records(out)}
    assert set(recs) == set(names)
    for r in recs.values():
        assert r["status"] == "proved" and r["check"]["ok"] and r["generator"] == "bank", r
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["generator"]["name"] == "bank" and "no GPU" in cfg["generator"]["note"]
    assert cfg["search"]["candidates"] == BANK_SEARCH.candidates
    assert cfg["search"]["max_expansions"] == BANK_SEARCH.max_expansions
    assert cfg["search"]["time_budget"] == BANK_SEARCH.time_budget
    # explicit flags win over the bank's defaults
    out2 = tmp_path / "run2"
    res = run_cli("--split", "minif2f-valid", "--theorems", names[0], "--workers", "0", "--out", str(out2),
                  "--generator", "bank", "--max-expansions", "3")
    assert res.returncode == 0, res.stderr
    cfg2 = json.loads((out2 / "config.json").read_text())
    assert cfg2["search"]["max_expansions"] == 3 and cfg2["search"]["candidates"] == BANK_SEARCH.candidates
