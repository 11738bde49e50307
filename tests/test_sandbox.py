"""The sandbox around prover processes, checked on the live coqtop through /proc."""

from __future__ import annotations

import os

import pytest

from llemma_prover.backends.base import make_backend
from llemma_prover.backends.sandbox import Limits, Sandbox, sandbox_for
from llemma_prover.core.config import ProverConfig
from llemma_prover.core.types import Advanced, Theorem

THM = Theorem(name="sb", split="test", system="coq", header="", statement="Theorem sb : 1 + 1 = 2.")


def _limits(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/limits") as fh:
        for line in fh.readlines()[1:]:
            out[line[:26].strip()] = line[26:47].strip()
    return out


def _prover_pid(pgid: int, name: str) -> int:
    """The member of process group ``pgid`` that runs ``name`` (under bwrap it is a grandchild)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[-1].split()
            exe = os.path.basename(os.readlink(f"/proc/{entry}/exe"))
        except OSError:
            continue
        if int(fields[2]) == pgid and exe.startswith(name):
            return int(entry)
    raise AssertionError(f"no {name} in process group {pgid}")


def test_describe_and_wrap() -> None:
    sb = Sandbox(network="unshare", limits=Limits(address_space_mb=100))
    assert sb.wrap(["coqtop"]) == ["unshare", "--net", "--", "coqtop"]
    assert Sandbox().wrap(["coqtop"]) == ["coqtop"]
    d = sb.describe()
    assert d["network_isolation"] == "unshare" and d["rlimits"]["address_space_mb"] == 100  # type: ignore[index]
    env = sb.env(base={"PATH": "/bin", "SECRET_TOKEN": "x", "HOME": "/root"})
    assert env == {"PATH": "/bin"}


def test_rlimits_mode_never_isolates_the_network() -> None:
    assert sandbox_for(ProverConfig(sandbox="rlimits")).network == "none"


@pytest.mark.coq
def test_coqtop_runs_confined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    cfg = ProverConfig(memory_limit_mb=3000)
    with make_backend("coq", cfg) as backend:
        root = backend.start_theorem(THM)
        assert isinstance(backend.apply(root.state_id, "simpl"), Advanced)
        sandbox = backend.sandbox  # type: ignore[attr-defined]
        pid = _prover_pid(backend._pool.top.proc.pgid, "coq")  # type: ignore[attr-defined]
        limits = _limits(pid)
        assert limits["Max address space"] == str(3000 * 1024 * 1024)
        assert limits["Max core file size"] == "0"
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read().decode()
        assert "SECRET_TOKEN" not in environ
        cwd = os.readlink(f"/proc/{pid}/cwd")
        assert cwd != os.getcwd() and "llemma-prover-" in cwd
        if sandbox.network != "none":
            assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        # the machine we test on has bubblewrap (scripts/setup.sh installs it) and allows it as root;
        # say so if that ever changes
        assert sandbox.network == "bwrap", sandbox.describe()
        assert sandbox.describe()["filesystem_confined"] is True
        assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
        assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
