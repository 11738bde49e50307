"""``prove --ray-address`` on a real two-node Ray cluster started with ``ray start`` and Ray 2.60's defaults
(token authentication on, the token in ``~/.ray/auth_token``), loopback only: a run across both
nodes, then a run during which one node's raylet is killed -- its theorems are retried on the
surviving node, every theorem is recorded exactly once and the solved set is the clean run's.

Each node is a ``ray start --block`` in its own process group, stopped by killing that group (never
``ray stop``: other Ray clusters may run on this machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ProcessWatcher, cli_command, cli_env, descendants
from test_e2e_prove import PROOFS, SLOW_THEOREMS, read_records, write_replay
from test_ray_workers import _is_loopback, _listening_addresses

from llemma_prover.core import procfs

pytestmark = [pytest.mark.ray, pytest.mark.coq, pytest.mark.slow]

RAY = str(Path(sys.executable).parent / "ray")
NODE_SHIM = str(Path(__file__).parent / "ray_loopback_node.py")
NAMES = [*SLOW_THEOREMS, *PROOFS]
#: seconds for both nodes to be up and registered (Ray's own start-up, on a loaded machine)
CLUSTER_START_S = 180.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    watcher: ProcessWatcher
    log: Path

    @property
    def pgid(self) -> int:
        return self.proc.pid

    def members(self) -> set[int]:
        return {self.proc.pid} | descendants(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after a grace period."""
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while procfs.group_members(self.pgid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not procfs.group_members(self.pgid):
                break
        self.proc.wait(timeout=10)
        self.watcher.stop()


@dataclass
class Cluster:
    address: str
    home: Path
    head: Node
    node: Node

    def env(self, **extra: str) -> dict[str, str]:
        env = cli_env(HOME=str(self.home), **extra)
        for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
            env.pop(var, None)  # Ray's defaults: the token file in ~/.ray, nothing else
        return env


def _start_node(argv: list[str], env: dict[str, str], log: Path) -> Node:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return Node(proc, ProcessWatcher(proc.pid), log)


def _alive_nodes(cluster_env: dict[str, str], address: str) -> int:
    code = ("import ray; from llemma_prover.workers.cluster import ray_init; "
            f"ray_init({address!r}, 1); print(sum(1 for n in ray.nodes() if n['Alive']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=cluster_env)
    return int(r.stdout.split()[-1]) if r.returncode == 0 and r.stdout.split() else 0


#: Ray gives a node 30 s to register (hard-coded in ``ray/_private/node.py``), and its raylet 15-30 s
#: for its agents to start; on a loaded machine that can pass, so a node that timed out during
#: start-up is started once more
START_ATTEMPTS = 2


def _start_until_up(argv: list[str], env: dict[str, str], log: Path, up: object) -> Node:
    for attempt in range(1, START_ATTEMPTS + 1):
        node = _start_node(argv, env, log)
        deadline = time.monotonic() + CLUSTER_START_S
        while node.proc.poll() is None and time.monotonic() < deadline:
            if up(node):  # type: ignore[operator]
                return node
            time.sleep(0.5)
        text = log.read_text(errors="replace")
        node.stop()
        if "timed out during startup" not in text or attempt == START_ATTEMPTS:
            pytest.fail(f"ray start did not come up: {text[-3000:]}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # short paths: Ray's Unix sockets live under the temp dir (limit ~107 characters)
    root = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))
    home = root / "home"
    home.mkdir()
    base = cli_env(HOME=str(home), RAY_USAGE_STATS_ENABLED="0")
    for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
        base.pop(var, None)
    # what a user does once: a token in ~/.ray/auth_token, which `ray start --head` then requires
    subprocess.run([RAY, "get-auth-token", "--generate"], env=base, capture_output=True, timeout=60,
                   check=True)
    assert (home / ".ray" / "auth_token").is_file()
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--disable-usage-stats", "--num-cpus=1", f"--temp-dir={root / 't'}",
              f"--dashboard-agent-listen-port={_free_port()}"]
    head: Node | None = None
    node: Node | None = None
    try:
        head = _start_until_up(
            [sys.executable, NODE_SHIM, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
             "--include-dashboard=false", f"--ray-client-server-port={_free_port()}", *common],
            {**base, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}, root / "head.log",
            lambda n: b"Ray runtime started" in n.log.read_bytes())
        assert b"Token authentication is enabled" in head.log.read_bytes(), head.log.read_text()[-3000:]
        c = Cluster(address, home, head, head)
        # a joining node must be told to use the token (Ray does not turn it on for `--address`)
        node = _start_until_up(
            [sys.executable, NODE_SHIM, "start", f"--address={address}", "--node-ip-address=127.0.0.1",
             *common],
            # cluster mode on for the joining node whatever this process's environment says (ray_env() of
            # an earlier test in the same session sets it off, and `ray start --address` then refuses)
            {**base, "RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}, root / "node.log",
            lambda n: b"Ray runtime started" in n.log.read_bytes() and _alive_nodes(c.env(), address) >= 2)
        c.node = node
        yield c
    finally:
        for n in (node, head):
            if n is not None:
                n.stop()
        shutil.rmtree(root, ignore_errors=True)


def _prove(c: Cluster, tmp_path: Path, out: Path) -> tuple[subprocess.Popen[str], ProcessWatcher]:
    replay = write_replay(tmp_path / "replay.jsonl")
    args = ("--generator", "replay", "--replay-file", str(replay), "--theorems", ",".join(NAMES),
            "--workers", "2", "--ray-address", c.address, "--out", str(out), "--tactic-timeout", "1.5")
    proc = subprocess.Popen(cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=c.env())
    return proc, ProcessWatcher(proc.pid)


def _workers_in(node: Node) -> list[int]:
    """Ray worker processes of ``node`` running a job (``ray::Worker.run``)."""
    return [p for p in node.members() if procfs.cmdline(p).startswith("ray::Worker.run")]


def _busy(node: Node) -> list[int]:
    """Workers of ``node`` with a prover running under them."""
    return [w for w in _workers_in(node) if any(_is_prover(procfs.cmdline(k)) for k in descendants(w))]


def _is_prover(cmd: str) -> bool:
    """A Coq step prover (coqidetop since issue 10; coqtop before)."""
    return cmd.startswith(("coqidetop", "coqtop")) or " coqidetop" in cmd


def _solved(out: Path) -> tuple[list[dict], set[str]]:
    recs = read_records(out)
    assert sorted(r["theorem"] for r in recs) == sorted(NAMES), "each theorem exactly once"
    return recs, {r["theorem"] for r in recs if r["status"] == "proved" and r["check"]["ok"]}


def test_prove_across_two_nodes(cluster: Cluster, tmp_path: Path) -> None:
    proc, watcher = _prove(cluster, tmp_path, tmp_path / "run")
    used = {"head": False, "node": False}
    try:
        while proc.poll() is None:
            used["head"] = used["head"] or bool(_busy(cluster.head))
            used["node"] = used["node"] or bool(_busy(cluster.node))
            time.sleep(0.2)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.stop()
    assert proc.returncode == 0, stderr[-3000:]
    assert "InvalidAuthToken" not in stderr and "cannot join" not in stderr, stderr[-3000:]
    assert used == {"head": True, "node": True}, f"theorems did not run on both nodes: {used}"
    _recs, solved = _solved(tmp_path / "run")
    assert solved == set(PROOFS)
    addrs = _listening_addresses(cluster.head.members() | cluster.node.members())
    assert addrs and all(_is_loopback(a) for a in addrs), f"non-loopback listeners: {addrs}"


def test_raylet_killed_theorems_retried_on_the_survivor(cluster: Cluster, tmp_path: Path) -> None:
    """Runs after the clean run (the node is lost for good): kill -9 of the node's raylet while a worker
    there proves a theorem."""
    proc, watcher = _prove(cluster, tmp_path, tmp_path / "run")
    try:
        deadline = time.monotonic() + 240
        while not _busy(cluster.node):
            assert proc.poll() is None and time.monotonic() < deadline, "no worker got busy on the node"
            time.sleep(0.1)
        time.sleep(0.5)  # let the worker record its prover child
        raylets = [p for p in cluster.node.members() if (st := procfs.stat(p)) and st.comm == "raylet"]
        assert len(raylets) == 1, raylets
        os.kill(raylets[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.stop()
    assert proc.returncode == 0, stderr[-3000:]
    recs, solved = _solved(tmp_path / "run")
    assert solved == set(PROOFS), "not the clean run's solved set"
    retried = [r for r in recs if r["attempts"] == 2]
    assert retried and all(r["status"] != "error" for r in recs), [(r["theorem"], r["attempts"],
                                                                    r["status"]) for r in recs]
    # the lost node's worker and its prover are gone (the driver reaps provers a dead worker left)
    assert cluster.node.watcher.alive("coqidetop", timeout=30) == [], "the dead worker's prover was left"
    assert cluster.node.watcher.alive("ray::Worker", timeout=60) == []
