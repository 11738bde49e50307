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
        pid = backend._top.proc.pid  # type: ignore[attr-defined]
        sandbox = backend.sandbox  # type: ignore[attr-defined]
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
        # the machine we test on allows `unshare --net` (root); say so if that ever changes
        assert sandbox.network in ("unshare", "bwrap"), sandbox.describe()
