"""``prove --workers 2`` on real Ray (loopback only) with real Coq: kill -9 of a coqtop, kill -9 of a
worker actor (its theorem is retried on a fresh worker), and nothing left running afterwards."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ProcessWatcher, cli_command, cli_env, descendants
from test_e2e_prove import PROOFS, SLOW_THEOREMS, read_records, write_replay

pytestmark = [pytest.mark.ray, pytest.mark.coq, pytest.mark.slow]

NAMES = [*SLOW_THEOREMS, *PROOFS]


def _listening_addresses(pids: set[int]) -> list[str]:
    out = subprocess.run(["ss", "-ltnupH"], capture_output=True, text=True, timeout=30).stdout
    addrs = []
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            addrs.append(line.split()[4])
    return addrs


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return ""


def _is_loopback(addr: str) -> bool:
    host = addr.rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "::1", "::ffff:127.0.0.1") or host.startswith("127.")


def _start(tmp_path: Path, out: Path) -> tuple[subprocess.Popen[str], ProcessWatcher]:
    replay = write_replay(tmp_path / "replay.jsonl")
    args = ("--generator", "replay", "--replay-file", str(replay), "--theorems", ",".join(NAMES),
            "--workers", "2", "--out", str(out), "--tactic-timeout", "1.5")
    proc = subprocess.Popen(cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    return proc, ProcessWatcher(proc.pid)


def _wait_for(pred, proc: subprocess.Popen[str], timeout: float = 240.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    return None


def _check_complete(out: Path) -> dict[str, dict]:
    recs = read_records(out)
    assert sorted(r["theorem"] for r in recs) == sorted(NAMES)  # each exactly once, none lost
    by_name = {r["theorem"]: r for r in recs}
    for n in PROOFS:
        assert by_name[n]["status"] == "proved" and by_name[n]["check"]["ok"], by_name[n]
    for n in SLOW_THEOREMS:
        r = by_name[n]
        assert r["status"] == "failed", (r["reason"], r["error"], r["restarts"], r["extra"])
    return by_name


def test_two_workers_loopback_and_coqtop_killed(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, watcher = _start(tmp_path, out)
    try:
        # two workers busy at once, each with its own coqtop
        def two_coqtops() -> list[int]:
            live = [p for p in descendants(proc.pid) if _comm(p).startswith(("coqtop", "coqidetop"))]
            return live if len(live) >= 2 else []

        coqtops = _wait_for(two_coqtops, proc)
        assert coqtops, "never saw two coqtop processes at once"
        addrs = _listening_addresses(descendants(proc.pid) | {proc.pid})
        assert addrs, "Ray should be listening on something"
        assert all(_is_loopback(a) for a in addrs), f"non-loopback listeners: {addrs}"
        os.kill(coqtops[0], signal.SIGKILL)  # a prover dies mid-run
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.stop()
    assert proc.returncode == 0, stderr
    _check_complete(out)
    assert watcher.alive("coqidetop", timeout=15) == []
    assert watcher.alive("coqtop", timeout=0) == []
    assert watcher.alive("ray::", timeout=30) == [], "Ray worker processes left behind"
    assert watcher.alive("raylet", timeout=30) == []


def test_worker_actor_killed_theorem_retried(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, watcher = _start(tmp_path, out)
    try:
        def busy_worker() -> int | None:
            for p in descendants(proc.pid):
                try:
                    cmd = Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                # a worker proving a theorem, with a prover running (so there is something to clean up)
                if cmd.startswith("ray::Worker.run") and any(
                    _comm(c).startswith(("coqtop", "coqidetop")) for c in descendants(p)
                ):
                    return p
            return None

        victim = _wait_for(busy_worker, proc)
        assert victim, "never saw a busy worker"
        time.sleep(0.5)  # let the worker record its prover child
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.stop()
    assert proc.returncode == 0, stderr
    by_name = _check_complete(out)
    retried = [r for r in by_name.values() if r["attempts"] == 2]
    assert len(retried) == 1, [(r["theorem"], r["attempts"]) for r in by_name.values()]
    assert watcher.alive("coqidetop", timeout=15) == []
    assert watcher.alive("coqtop", timeout=0) == [], "the dead worker's coqtop was left running"
    assert watcher.alive("ray::", timeout=30) == []
