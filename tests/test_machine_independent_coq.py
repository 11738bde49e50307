"""Proofs that do not depend on the speed of the machine that replays them (issue 21, item 2).

The bank runs expensive tactics as ``timeout N (T)``: the search may, the artifact may not. The
record, the proof file and the independent check all hold ``T``; a ``timeout N`` inside a tactic
(``first [timeout 2 (lia) | nia]``, as a model may write) goes too, found by Coq's lexical rules, and
a proof that needed it to fall through fails its check. The last test slows the machine
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
from dataclasses import replace
from pathlib import Path

import pytest

from llemma_prover.backends.base import backend_class, make_backend
from llemma_prover.backends.coq.recheck import Rechecker, final_tactics, without_timeout
from llemma_prover.backends.coq.sentences import InvalidTactic, validate_tactic
from llemma_prover.backends.sandbox import Sandbox
from llemma_prover.core.config import ProverConfig, RunConfig
from llemma_prover.core.types import CheckResult, Reason, SearchOutcome, Status, Theorem, TimeSplit
from llemma_prover.workers.job import UNWRAPPED, WRAPPER_NOTE, JobResult, complete_check, finish_record

#: about 0.3 s of CPU (unary arithmetic in the kernel): ten times that at a 10 % quota
SLOW = "reflexivity"
SLOW_STATEMENT = "Theorem thm : Nat.mul 200 200 = 40000."
WRAPPED = ["timeout 1 (" + SLOW + ")"]
#: the same step behind a timeout inside the tactic (``first``'s fall-through: ``idtac`` proves nothing)
NESTED_SLOW = f"first [timeout 1 ({SLOW}) | idtac]"
THM = Theorem(name="thm", split="u", system="coq", header="", statement=SLOW_STATEMENT)


def test_artifact_proof_has_no_wall_clock_wrapper() -> None:
    coq = backend_class("coq").dialect
    proof = ["intros", "timeout 2 (timeout 3 (intros; lia))", "timeout 2 (a); (b)"]
    got = coq.artifact_proof(proof)
    # the whole-tactic wrapper goes (nested ones too), and so does a timeout inside a tactic
    assert got == ["intros", "intros; lia", "(a); (b)"]
    assert coq.artifact_proof(got) == got  # idempotent: what is recorded is what is checked
    assert without_timeout("timeout 2 (timeout 3 (lia))") == "lia"
    assert final_tactics(got) == final_tactics(proof)


@pytest.mark.parametrize(("tactic", "artifact"), [
    ("first [timeout 2 (lia) | nia]", "first [(lia) | nia]"),
    ("try timeout 1 nia; lia", "try nia; lia"),
    ("solve [timeout 3 auto]", "solve [auto]"),
    ("timeout 2 lia", "lia"),
    ("try (timeout 1_000 (timeout 2 nia))", "try ((nia))"),
    ("timeout (* why *) 2\n\t(lia)", "(lia)"),  # a comment between the keyword and its number
    ("timeout 0x10 lia", "lia"),
    ("let n := 2 in timeout n lia", "let n := 2 in lia"),  # an Ltac variable for the number
    ("lia.", "lia."),
])
def test_every_timeout_tactical_goes(tactic: str, artifact: str) -> None:
    assert without_timeout(tactic) == artifact
    assert without_timeout(artifact) == artifact  # idempotent
    assert final_tactics([tactic]) == [validate_tactic(artifact)]


@pytest.mark.parametrize("tactic", [
    'idtac "timeout 2"; lia',  # a string
    '(* timeout 2 (lia) *) lia',  # a comment
    '(* "*)" timeout 2 *) lia',  # a string inside a comment (Coq's rule: still the comment)
    "apply my_timeout; apply timeout_2",  # longer names
    "apply M.timeout 2",  # a qualified name
    "exact (@timeout 2)",  # a term
    "destruct timeout as [a b]",  # a hypothesis named timeout
    "intros timeout",
])
def test_timeout_that_is_not_the_tactical_is_untouched(tactic: str) -> None:
    assert without_timeout(tactic) == tactic


@pytest.mark.parametrize("tactic", ["Timeout 2 lia", "try Timeout 2 lia", "lia; Timeout 1 nia",
                                    "first [Timeout 2 (lia) | nia]"])
def test_the_timeout_command_is_no_tactic(tactic: str) -> None:
    with pytest.raises(InvalidTactic, match="Timeout"):
        validate_tactic(tactic)
    with pytest.raises(InvalidTactic):
        final_tactics([tactic])


#: a tactic that never ends (and grows slowly: a few hundred MB in 5 s)
DIVERGES = "repeat (assert True by exact I)"
def test_a_deferred_check_says_the_proof_depended_on_its_wrapper() -> None:
    """The batching checker's path (``check=False``, then ``complete_check``): the same note."""
    coq = backend_class("coq")
    outcome = SearchOutcome(reason=Reason.PROVED, proof=("intros", "try timeout 1 nia; lia"), expansions=2,
                            nodes=3, time=TimeSplit(total=1.0, prover=1.0))
    rec = finish_record(THM, coq, RunConfig(), "bank", outcome, time.monotonic(), check=False)  # type: ignore[arg-type]
    assert rec.proof == ("intros", "try nia; lia") and rec.extra[UNWRAPPED] == 1 and rec.check is None
    pending = JobResult(rec, None, None, "v", unchecked=rec.proof)
    failed = CheckResult(ok=False, checker="coqchk", elapsed=1.0, message="coqc (proof file) exit 1")
    done = complete_check(THM, pending, failed, coq)
    assert done.record.status is Status.FAILED and done.record.reason is Reason.CHECK_FAILED
    assert done.record.check is not None and done.record.check.message == (
        f"{WRAPPER_NOTE} (1 step(s) without their `timeout`): coqc (proof file) exit 1")
    passed = complete_check(THM, pending, replace(failed, ok=True, message=""), coq)
    assert passed.record.status is Status.PROVED and passed.record.check is not None
    assert passed.record.check.message == ""


LIA = Theorem(name="nested", split="u", system="coq", header="From Coq Require Import Lia.",
              statement="Theorem nested : forall n m : nat, n + m = m + n.")
#: nested wrappers (and a string and a comment that say "timeout"), as a model could write them
NESTED = ['try timeout 2 (intros n m); idtac "timeout 2"',
          "first [timeout 3 (lia) | (* timeout 1 *) nia]"]


@pytest.mark.coq
def test_nested_wrappers_are_stripped_and_checked() -> None:
    outcome = SearchOutcome(reason=Reason.PROVED, proof=tuple(NESTED), expansions=2, nodes=3,
                            time=TimeSplit(total=1.0, prover=1.0))
    with make_backend("coq", ProverConfig(tactic_timeout=5.0)) as b:
        rec = finish_record(LIA, b, RunConfig(), "bank", outcome, time.monotonic())
        assert rec.status is Status.PROVED, rec.check
        assert rec.proof == ('try (intros n m); idtac "timeout 2"', "first [(lia) | (* timeout 1 *) nia]")
        assert rec.extra[UNWRAPPED] == 2
        text = b.dialect.proof_text(LIA, rec.proof)
    # no timeout tactical in the proof file: only the string and the comment still say the word
    assert text.count("timeout") == 2 and '"timeout 2"' in text and "(* timeout 1 *)" in text


@pytest.mark.coq
def test_a_proof_that_needs_its_inner_timeout_is_not_proved() -> None:
    """``first [timeout 1 (D) | T]`` with a ``D`` that never ends (each ``assert`` is progress, so
    ``repeat`` goes on; plain ``coqc`` proves the wrapped sentence in about 1 s): the search's proof
    held only because the wrapper gave up on ``D``. Without it the check runs into its deadline (a
    small one here) and the proof is not recorded as proved."""
    t = Theorem(name="t", split="u", system="coq", header="", statement="Theorem t : 2 + 2 = 4.")
    step = f"first [timeout 1 ({DIVERGES}) | reflexivity]"
    outcome = SearchOutcome(reason=Reason.PROVED, proof=(step,), expansions=1, nodes=2,
                            time=TimeSplit(total=1.0, prover=1.0))
    with make_backend("coq", ProverConfig(tactic_timeout=5.0, check_timeout=5.0)) as b:
        t0 = time.monotonic()
        rec = finish_record(t, b, RunConfig(), "bank", outcome, time.monotonic())
        assert time.monotonic() - t0 < 120
        assert rec.status is Status.FAILED and rec.reason is Reason.CHECK_FAILED
        assert rec.proof == (f"first [({DIVERGES}) | reflexivity]",)
        assert rec.check is not None and not rec.check.ok
        assert rec.check.message.startswith(WRAPPER_NOTE), rec.check.message
    # the other branch alone, with no wrapper to strip, is a proof (the default deadline: under load
    # an honest check can take longer than the 5 s above)
    with make_backend("coq", ProverConfig(tactic_timeout=5.0)) as b:
        ok = finish_record(t, b, RunConfig(), "bank", replace(outcome, proof=("reflexivity",)),
                           time.monotonic())
        assert ok.status is Status.PROVED and UNWRAPPED not in ok.extra, ok.check


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
        # a timeout inside a tactic: on the slow machine the wrapped branch gives up and the proof is
        # left unfinished; the artifact's exported file, without the wrapper, still passes
        nested_wrapped = coq.proof_text(THM, ["idtac"]).replace("( idtac\n)", f"( {NESTED_SLOW}\n)")
        nested = coq.proof_text(THM, coq.artifact_proof([NESTED_SLOW]))
        assert "timeout 1" in nested_wrapped and "timeout" not in nested
        assert _coqc(tmp_path, nested_wrapped).returncode != 0
        replay = _coqc(tmp_path, nested)
        assert replay.returncode == 0, replay.stdout + replay.stderr
