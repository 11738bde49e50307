"""Proofs that do not depend on the speed of the machine that replays them (issue 21, item 2).

The bank runs expensive tactics as ``timeout N (T)``: the search may, the artifact may not. The
record, the proof file and the independent check all hold ``T``. The last test slows the machine
down for real (a cgroup v1 ``cpu`` group with a 10 % quota, this test process and everything it starts
inside it): the wrapped proof then fails under plain ``coqc`` (the wrapper's wall clock runs out), while
the independent check of the recorded proof and a plain ``coqc`` of the exported file still pass.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llemma_prover.backends.base import backend_class, make_backend
from llemma_prover.backends.coq.recheck import Rechecker, final_tactics, without_timeout
from llemma_prover.backends.sandbox import Sandbox
from llemma_prover.core.config import ProverConfig, RunConfig
from llemma_prover.core.types import Reason, SearchOutcome, Status, Theorem, TimeSplit
from llemma_prover.workers.job import finish_record

#: about 0.3 s of CPU (unary arithmetic in the kernel): ten times that at a 10 % quota
SLOW = "reflexivity"
SLOW_STATEMENT = "Theorem thm : Nat.mul 200 200 = 40000."
WRAPPED = ["timeout 1 (" + SLOW + ")"]
THM = Theorem(name="thm", split="u", system="coq", header="", statement=SLOW_STATEMENT)


def test_artifact_proof_has_no_wall_clock_wrapper() -> None:
    coq = backend_class("coq").dialect
    proof = ["intros", "timeout 2 (timeout 3 (intros; lia))", "timeout 2 (a); (b)"]
    got = coq.artifact_proof(proof)
    # the whole-tactic wrapper goes (nested ones too); a timeout that is not around the whole tactic stays
    assert got == ["intros", "intros; lia", "timeout 2 (a); (b)"]
    assert coq.artifact_proof(got) == got  # idempotent: what is recorded is what is checked
    assert without_timeout("timeout 2 (timeout 3 (lia))") == "lia"
    assert final_tactics(got) == final_tactics(proof)


@pytest.mark.coq
def test_the_record_holds_the_proof_that_was_checked() -> None:
    outcome = SearchOutcome(reason=Reason.PROVED, proof=tuple(WRAPPED), expansions=1, nodes=2,
                            time=TimeSplit(total=1.0, prover=1.0))
    with make_backend("coq", ProverConfig(tactic_timeout=2.0)) as b:
        rec = finish_record(THM, b, RunConfig(), "bank", outcome, time.monotonic())
        assert rec.status is Status.PROVED, rec.check
        assert rec.proof == (SLOW,)
        text = b.dialect.proof_text(THM, rec.proof)
    assert "timeout" not in text and text.endswith(f"Proof.\n( {SLOW}\n).\nQed.\n")


def _cpu_cgroup_dir() -> Path | None:
    """This process's cgroup v1 ``cpu`` directory, when it is there and writable."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            d = Path("/sys/fs/cgroup/cpu") / path.lstrip("/")
            return d if (d / "cgroup.procs").exists() and os.access(d, os.W_OK) else None
    return None


@contextlib.contextmanager
def _throttled(cpus: float) -> Iterator[None]:
    """This process (and all it starts meanwhile) in a new cgroup allowed ``cpus`` CPUs."""
    home = _cpu_cgroup_dir()
    if home is None:
        pytest.skip("no writable cgroup v1 cpu controller here")
    group = home / f"llemma-slow-{os.getpid()}-{secrets.token_hex(4)}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text(str(int(cpus * 100000)))
        (group / "cgroup.procs").write_text(str(os.getpid()))
        try:
            yield
        finally:
            (home / "cgroup.procs").write_text(str(os.getpid()))
    finally:
        for _ in range(50):  # children that outlived the block leave it when they exit
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _coqc(tmp: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp / "Replay.v").write_text(text, encoding="utf-8")
    return subprocess.run(["coqc", "-q", "Replay.v"], cwd=tmp, capture_output=True, text=True, timeout=600)


@pytest.mark.coq
def test_proofs_recheck_on_a_slowed_machine(tmp_path: Path) -> None:
    coq = backend_class("coq").dialect
    artifact = coq.artifact_proof(WRAPPED)
    exported = coq.proof_text(THM, artifact)
    wrapped_file = exported.replace(f"( {SLOW}\n)", f"( {WRAPPED[0]}\n)")
    assert "timeout 1" in wrapped_file and "timeout" not in exported
    with _throttled(0.1):
        # the machine is slow enough to break the wrapper: what the artifact must not depend on
        wrapped = _coqc(tmp_path, wrapped_file)
        assert wrapped.returncode != 0 and "Tactic timeout" in wrapped.stdout + wrapped.stderr, wrapped
        # the recorded proof passes the independent check, and its exported file plain coqc
        rechecker = Rechecker(sandbox=Sandbox.detect())
        try:
            res = rechecker.check(header="", statement=SLOW_STATEMENT, tactics=artifact, name="thm",
                                  timeout=600)
        finally:
            rechecker.close()  # its warm parser leaves the slowed group before the group is removed
        assert res.ok, res.message
        replay = _coqc(tmp_path, exported)
        assert replay.returncode == 0, replay.stdout + replay.stderr
