"""The prove run's batching checker (``workers/checker.py``) on real coqc/coqchk, hostile cases first.

* one hostile proof inside an honest batch fails alone, the honest ones pass (one batch, same verdicts
  and axioms as ``check`` one by one);
* a batch whose checker processes are killed while it runs passes nothing;
* a run killed while its proofs wait for or go through their check records none of them as proved, and
  its resume proves them again, each checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import ProcessWatcher, cli_command, cli_env, descendants, proc_stat

from llemma_prover.backends.base import make_backend
from llemma_prover.backends.coq.backend import CoqBackend
from llemma_prover.core.types import CheckResult, Theorem
from llemma_prover.workers.checker import BatchChecker, Pending

pytestmark = pytest.mark.coq

REALS = "Require Import Coq.Reals.Reals.\nRequire Import Lra.\nOpen Scope R_scope.\n"
DOTS = "pose (m := 0)... "


def _thm(name: str, statement: str, header: str = REALS) -> Theorem:
    return Theorem(name=name, split="test", system="coq", header=header, statement=statement)


def _collect(checker_backend: CoqBackend, proofs: list[tuple[Theorem, tuple[str, ...]]],
             batch_size: int = 8) -> tuple[list[tuple[str, CheckResult, int]], list[int]]:
    got: list[tuple[str, CheckResult, int]] = []
    lock = threading.Lock()

    def on_checked(p: Pending, verdict: CheckResult, size: int) -> None:
        with lock:
            got.append((p.theorem.name, verdict, size))

    with BatchChecker(checker_backend, on_checked, batch_size=batch_size) as checker:
        for theorem, proof in proofs:
            checker.submit(Pending(theorem, proof))
        checker.header_done(REALS)
    return got, checker.batches


def test_a_hostile_proof_in_an_honest_batch_fails_alone() -> None:
    honest = [
        (_thm("h1", "Theorem h1 (x : R) (h : x = 1) : x + 1 = 2."), ("subst; lra",)),
        (_thm("h2", "Theorem h2 (x : R) : x * 1 = x."), ("intros; ring",)),
        (_thm("h3", "Theorem h3 (x y : R) (h : x = y) : y = x."), ("intros; lra",)),
    ]
    hostile = [
        # a smuggled axiom (as if the tactic filter had been fooled)
        (_thm("bad1", "Theorem bad1 (x : R) : x = x + 1."),
         (DOTS + "Axiom cheat : False", "exfalso; exact cheat")),
        # printed fake text, then a goal given up
        (_thm("bad2", "Theorem bad2 (x : R) : x = x + 1."),
         ('idtac "Closed under the global context"', "admit")),
        # a false statement the tactic does not prove
        (_thm("bad3", "Theorem bad3 (x : R) : x = x + 1."), ("intros; lra",)),
    ]
    mixed = [honest[0], hostile[0], honest[1], hostile[1], hostile[2], honest[2]]
    backend = make_backend("coq", CoqBackend.setup.default_config())
    assert isinstance(backend, CoqBackend)
    try:
        got, batches = _collect(backend, mixed)
        verdicts = {name: v for name, v, _ in got}
        assert batches == [6] and {size for _, _, size in got} == {6}  # one batch of all six
        assert {n for n, v in verdicts.items() if v.ok} == {"h1", "h2", "h3"}, {
            n: v.message[:200] for n, v in verdicts.items()}
        # the same verdicts and axioms as the check one by one
        for theorem, proof in mixed:
            alone = backend.check(theorem, proof)
            assert alone.ok == verdicts[theorem.name].ok
            if alone.ok:
                assert alone.axioms == verdicts[theorem.name].axioms
                assert "ClassicalDedekindReals.sig_forall_dec" in " ".join(alone.axioms)
        shares = {round(v.elapsed, 6) for v in verdicts.values()}
        assert len(shares) == 1 and shares.pop() > 0  # each proof's elapsed is its share of the batch
    finally:
        backend.close()


def _kill_while(names: tuple[str, ...], stop: threading.Event, killed: list[str]) -> None:
    """Kill (SIGKILL, by pid) every descendant of this test process named in ``names`` until ``stop``."""
    me = os.getpid()
    while not stop.is_set():
        for pid in descendants(me):
            st = proc_stat(pid)
            if st is not None and st[2] in names:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(st[2])
                except ProcessLookupError:
                    pass
        stop.wait(0.02)


def test_a_batch_whose_checker_processes_die_passes_nothing() -> None:
    proofs = [
        (_thm("h1", "Theorem h1 (x : R) (h : x = 1) : x + 1 = 2."), ("subst; lra",)),
        (_thm("h2", "Theorem h2 (x : R) : x * 1 = x."), ("intros; ring",)),
    ]
    backend = make_backend("coq", CoqBackend.setup.default_config())
    assert isinstance(backend, CoqBackend)
    stop, killed = threading.Event(), []  # type: ignore[var-annotated]
    killer = threading.Thread(target=_kill_while, args=(("coqchk",), stop, killed), daemon=True)
    try:
        killer.start()
        got, batches = _collect(backend, proofs)
    finally:
        stop.set()
        killer.join(5)
        backend.close()
    assert killed, "no coqchk was seen to kill"
    assert batches == [2] and len(got) == 2
    assert [v.ok for _, v, _ in got] == [False, False], [v.message for _, v, _ in got]


def _records(out: Path) -> list[dict[str, object]]:
    path = out / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_resume_after_a_kill_mid_batch_checks_again(tmp_path: Path) -> None:
    """The run is killed (its whole process group, SIGKILL) as soon as its checker runs coqchk: no
    record says proved; the resumed run proves both theorems again, each with a passing check."""
    data = tmp_path / "data"
    (data / "coq").mkdir(parents=True)
    rows = [
        {"name": "batch_a", "split": "test", "header": REALS,
         "statement": "Theorem batch_a (x : R) (h : x = 1) : x + 1 = 2."},
        {"name": "batch_b", "split": "test", "header": REALS,
         "statement": "Theorem batch_b (x : R) : x * 1 = x."},
    ]
    (data / "coq" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    replay = tmp_path / "proofs.jsonl"
    replay.write_text(json.dumps({"theorem": "batch_a", "tactics": ["subst; lra"]}) + "\n"
                      + json.dumps({"theorem": "batch_b", "tactics": ["intros; ring"]}) + "\n")
    out = tmp_path / "run"
    cmd = cli_command("--generator", "replay", "--replay-file", str(replay), "--data-dir", str(data),
                      "--split", "minif2f-test", "--workers", "0", "--out", str(out))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                            start_new_session=True)
    watcher = ProcessWatcher(proc.pid, interval=0.02)
    try:
        deadline = time.monotonic() + 600
        while not watcher.matching("coqchk") and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before its check ran: " + proc.stderr.read()[-2000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        watcher.stop()
        for pid, (start, _, _) in watcher.seen.items():  # what the killed run started, by pid
            st = proc_stat(pid)
            if st is not None and st[1] == start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    killed = _records(out)
    assert not [r for r in killed if r["status"] == "proved"], killed

    done = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    records = {str(r["theorem"]): r for r in _records(out)}
    assert set(records) == {"batch_a", "batch_b"}
    for r in records.values():
        assert r["status"] == "proved" and r["check"]["ok"], r  # type: ignore[index]
        assert r["extra"]["check_batch"] >= 1  # type: ignore[index]
        assert (out / "proofs" / f"{r['theorem']}.v").exists()
