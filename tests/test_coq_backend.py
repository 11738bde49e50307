"""The Coq backend against the real coqidetop/coqc (marker ``coq``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import data_dir as conftest_data_dir

from llemma_prover.backends.base import make_backend
from llemma_prover.backends.coq import CoqBackend
from llemma_prover.backends.coq.header import prepare_header
from llemma_prover.backends.coq.ide import Goal
from llemma_prover.backends.coq.states import goal_text, goal_texts
from llemma_prover.backends.coq.step import split_selector
from llemma_prover.core import procfs
from llemma_prover.core.config import ProverConfig
from llemma_prover.core.errors import ProverStartError, RestartLimitExceeded
from llemma_prover.core.types import Advanced, ProofFinished, TacticError, TacticTimeout, Theorem

pytestmark = pytest.mark.coq
if shutil.which("coqtop") is None or shutil.which("coqc") is None:
    pytestmark = [pytest.mark.coq, pytest.mark.skip(reason="coqtop/coqc not installed")]

REPO = Path(__file__).resolve().parents[1]
DATA = conftest_data_dir()
LONG = "do 1000000000 idtac"  # runs for minutes; nothing else in it can fail


def _load(split: str) -> dict[str, Theorem]:
    out = {}
    with open(DATA / "coq" / f"{split}.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            out[r["name"]] = Theorem(
                name=r["name"], split=split, system="coq", header=r["header"], statement=r["statement"]
            )
    return out


@pytest.fixture(scope="module")
def test_split() -> dict[str, Theorem]:
    return _load("test")


@pytest.fixture(scope="module")
def valid_split() -> dict[str, Theorem]:
    return _load("valid")


_alive = procfs.is_alive  # exists and is not a zombie


def _pids(backend: CoqBackend) -> list[int]:
    return [t.proc.pid for t in (backend._pool.top, backend._pool.spare) if t is not None]


def _backend(**kw) -> CoqBackend:
    b = make_backend("coq", ProverConfig(**{"tactic_timeout": 2.0, **kw}))
    assert isinstance(b, CoqBackend)
    return b


SIMPLE = Theorem(
    name="simple",
    split="unit",
    system="coq",
    header="Require Import Arith.\n",
    statement="Theorem simple : forall n m : nat, n + 0 = n /\\ m = m.",
)


def test_steps_errors_and_finished(test_split):
    th = test_split["mathd_algebra_107"]
    with _backend() as b:
        root = b.start_theorem(th)
        assert root.state_id == 0
        assert "forall x y : R" in root.goal_text and "(ID" not in root.goal_text
        s1 = b.apply(0, "intros x y h")
        assert isinstance(s1, Advanced) and s1.state_id != 0
        assert "h : x ^ 2 + 8 * x + y ^ 2 - 6 * y = 0" in s1.goal_text
        err = b.apply(s1.state_id, "lia.")
        assert isinstance(err, TacticError) and not err.rejected and "Error" in err.message
        bad = b.apply(s1.state_id, "apply nonexistent_lemma")
        assert isinstance(bad, TacticError) and "nonexistent_lemma" in bad.message
        done = b.apply(s1.state_id, "nra")
        assert isinstance(done, ProofFinished)
        # a second proof-closing tactic from the same state (coqtop prints nothing for it by itself)
        again = b.apply(0, "intros; nra.")
        assert isinstance(again, ProofFinished) and again.state_id != done.state_id
        assert b.tactics_to(done.state_id) == ["intros x y h", "nra"]
        check = b.check(th, b.tactics_to(done.state_id))
        assert check.ok, check.message
        assert set(check.axioms) <= {
            "ClassicalDedekindReals.sig_forall_dec",
            "FunctionalExtensionality.functional_extensionality_dep",
        }


def test_rejected_tactics_never_reach_coqtop(test_split):
    with _backend() as b:
        b.start_theorem(test_split["mathd_algebra_107"])
        top = b._pool.top
        assert top is not None
        before = top.proc.requests
        for t in [
            "Admitted.",
            "admit.",
            "intros. nra.",
            "Qed.",
            "Abort.",
            "- lia",
            "Require Import Classical.",
            "intros x; give_up",
            "Timeout 1 lia",
            "lia\uff0e",
        ]:
            r = b.apply(0, t)
            assert isinstance(r, TacticError) and r.rejected, t
        assert top.proc.requests == before
        assert b._pool.top is top and b.stats()["rejected"] == 10


def test_multiple_goals_and_branching():
    with _backend() as b:
        b.start_theorem(SIMPLE)
        s1 = b.apply(0, "intros n m")
        assert isinstance(s1, Advanced)
        s2 = b.apply(s1.state_id, "split")
        assert isinstance(s2, Advanced) and len(s2.goals) == 2
        # Coq's goal records in coqtop's layout: the first goal with its hypotheses, then conclusions
        assert s2.goals[0] == "n, m : nat\n============================\nn + 0 = n"
        assert s2.goals[1] == "m = m"
        s3 = b.apply(s2.state_id, "reflexivity")  # n + 0 = n is not syntactic
        assert isinstance(s3, TacticError)
        s3 = b.apply(s2.state_id, "auto with arith")
        assert isinstance(s3, Advanced) and len(s3.goals) == 1 and s3.goals[0].endswith("=\nm = m")
        # expand an earlier state after a deeper one: BackTo + replay
        other = b.apply(0, "intros a b")
        assert isinstance(other, Advanced) and "a, b : nat" in other.goal_text
        deep = b.apply(s3.state_id, "reflexivity")  # needs intros n m; split; auto replayed
        assert isinstance(deep, ProofFinished)
        stats = b.stats()
        assert stats["replayed_tactics"] >= 3 and stats["backtos"] >= 2
        # the same state twice: states are persistent and independent
        again = b.apply(s2.state_id, "split")
        assert isinstance(again, TacticError)
        both = b.apply(s2.state_id, "all: auto with arith")
        assert isinstance(both, ProofFinished)
        assert b.check(SIMPLE, b.tactics_to(deep.state_id)).ok


def test_timeout_replaces_process_and_states_survive():
    with _backend(tactic_timeout=1.0) as b:
        b.start_theorem(SIMPLE)
        s1 = b.apply(0, "intros n m")
        s2 = b.apply(s1.state_id, "split")
        assert isinstance(s2, Advanced)
        pid = b._pool.top.proc.pid
        t0 = time.monotonic()
        r = b.apply(s2.state_id, LONG)
        assert isinstance(r, TacticTimeout) and r.timeout == 1.0
        assert time.monotonic() - t0 < 1.0 + 2.0 + 1.0
        assert b._pool.top is None and not _alive(pid)
        assert b.restarts == 0 and b.stats()["timeouts"] == 1
        done = b.apply(s2.state_id, "all: auto with arith")
        assert isinstance(done, ProofFinished)
        assert b._pool.top.proc.pid != pid
        assert b.stats()["spare_used"] == 0 and b.stats()["replayed_tactics"] >= 2
        # after a first replacement a spare (header loaded) is kept: the second timeout promotes it
        assert b._pool.spare is not None
        spare_pid = b._pool.spare.proc.pid
        assert isinstance(b.apply(s2.state_id, LONG), TacticTimeout)
        assert isinstance(b.apply(s2.state_id, "all: auto with arith"), ProofFinished)
        assert b._pool.top.proc.pid == spare_pid and b.stats()["spare_used"] == 1


def test_sigstop_is_caught_by_the_client_deadline():
    with _backend(tactic_timeout=1.0) as b:
        b.start_theorem(SIMPLE)
        s1 = b.apply(0, "intros n m")
        pid = b._pool.top.proc.pid
        os.killpg(pid, signal.SIGSTOP)  # the whole group: under bwrap the prover is a child of pid
        r = b.apply(s1.state_id, "split")
        assert isinstance(r, TacticTimeout)
        assert not _alive(pid)
        s2 = b.apply(s1.state_id, "split")
        assert isinstance(s2, Advanced) and len(s2.goals) == 2


def test_kill_9_mid_tactic_costs_that_candidate_then_recovers():
    # the process dies while a tactic runs: that candidate fails (a value), the process is replaced,
    # and no restart is counted (one bad candidate costs one candidate, issue 10 point 5)
    with _backend(tactic_timeout=30.0) as b:
        b.start_theorem(SIMPLE)
        s1 = b.apply(0, "intros n m")
        pid = b._pool.top.proc.pid
        killer = threading.Timer(0.5, os.kill, args=(pid, signal.SIGKILL))
        killer.start()
        try:
            r = b.apply(s1.state_id, LONG)
        finally:
            killer.cancel()
        assert isinstance(r, TacticError) and "prover failed on this tactic" in r.message
        assert b.restarts == 0 and not _alive(pid) and b.stats()["candidate_crashes"] == 1
        s2 = b.apply(s1.state_id, "split")
        assert isinstance(s2, Advanced) and len(s2.goals) == 2


def test_restart_limit():
    # a prover that cannot be started again (here: the executable now exits at once) costs one
    # restart per attempt; past max_restarts the theorem ends (RestartLimitExceeded -> prover_crash)
    with _backend(max_restarts=0, warm_spare=False) as b:
        b.start_theorem(SIMPLE)
        b._ide_executable = shutil.which("false") or "/bin/false"
        os.killpg(b._pool.top.proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while b._pool.top.ide.alive and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(ProverStartError):
            b.apply(0, "intros n m")
        assert b.restarts == 1
        with pytest.raises(RestartLimitExceeded):
            b.apply(0, "intros n m")


def test_recycling_keeps_states_valid():
    with _backend(recycle_after=4, warm_spare=False) as b:
        b.start_theorem(SIMPLE)
        s = b.apply(0, "intros n m")
        pids = {b._pool.top.proc.pid}
        for _ in range(6):
            r = b.apply(s.state_id, "split")
            assert isinstance(r, Advanced) and len(r.goals) == 2
            pids.add(b._pool.top.proc.pid)
        assert len(pids) >= 2 and b.stats()["recycles"] >= 1 and b.restarts == 0


def test_bad_header_or_statement_is_a_start_error():
    with _backend() as b:
        bad = Theorem(
            name="x",
            split="u",
            system="coq",
            header="Require Import NoSuchLib.\n",
            statement="Theorem x : True.",
        )
        with pytest.raises(ProverStartError):
            b.start_theorem(bad)
        wrong = Theorem(
            name="y", split="u", system="coq", header="", statement="Theorem y : undefined_thing."
        )
        with pytest.raises(ProverStartError):
            b.start_theorem(wrong)
        # the backend is still usable
        assert b.start_theorem(SIMPLE).goals


def test_close_leaves_no_process(test_split):
    b = _backend(warm_spare=True, tactic_timeout=1.0)
    b.start_theorem(test_split["mathd_algebra_107"])
    b.apply(0, "intros x y h")
    assert isinstance(b.apply(0, LONG), TacticTimeout)  # a replacement: from now on a spare is kept
    b.apply(0, "intros x y h")
    pids = _pids(b)
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    b.close()
    b.close()
    assert not any(_alive(p) for p in pids)
    for p in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(p, 0)


def test_check_rejects_wrong_and_unfinished_proofs(test_split):
    th = test_split["mathd_algebra_107"]
    with _backend() as b:
        wrong = b.check(th, ["intros x y h", "lia"])
        assert not wrong.ok and "coqc (proof file) exit" in wrong.message
        unfinished = b.check(th, ["intros x y h"])
        assert not unfinished.ok
        smuggled = b.check(th, ["intros x y h", "admit"])
        assert not smuggled.ok and "rejected" in smuggled.message
        text = b.dialect.proof_text(th, ["intros x y h", "nra"])
        assert text.endswith("Proof.\n( intros x y h\n).\n( nra\n).\nQed.\n")  # recheck.tactic_sentence


def test_axiom_audit_header_axioms_library_axioms_and_smuggled_ones():
    header = "Require Import Classical.\nAxiom cheat : False.\n"
    th = Theorem(
        name="t_ax",
        split="u",
        system="coq",
        header=header,
        statement="Theorem t_ax : forall P : Prop, P \\/ ~ P.",
    )
    with _backend() as b:
        # an axiom the header declares
        r = b.check(th, ["destruct cheat"])
        assert r.ok and r.axioms == ("LlemmaCheck.cheat",), r
        # a library axiom the header brings in (Require Classical): coqchk -o of the header alone
        r = b.check(th, ["exact classic"])
        assert r.ok and r.axioms == ("Classical_Prop.classic",), r
        # the same proof text with an axiom that the header does not bring in
        text = b.dialect.proof_text(th, ["destruct smuggled"]).replace(
            "Theorem t_ax", "Axiom smuggled : False.\nTheorem t_ax"
        )
        r = b.rechecker.check_file(  # the kernel steps alone (Coq's structure parse refuses it anyway)
            text, header=prepare_header(header), statement=th.statement, name="t_ax", timeout=120,
            parse_structure=False,
        )
        assert not r.ok and r.bad_axioms == ("LlemmaCheck.smuggled",), r


def test_valid_split_header_with_parameter_and_axiom(valid_split):
    th = valid_split["amc12a_2016_p3"]
    with _backend() as b:
        root = b.start_theorem(th)
        assert root.goals


def test_goal_text_and_selectors():
    expected = "x : R\n============================\nx = x"
    assert goal_text(Goal(hyps=("x :  R",), concl="x\n  =  x")) == expected
    assert goal_text(Goal(hyps=(), concl="True")) == "============================\nTrue"
    two = (Goal(hyps=("x : R",), concl="x = x"), Goal(hyps=("x : R",), concl="True"))
    assert goal_texts(two) == ("x : R\n============================\nx = x", "True")
    # one layout (backends/coq/layout.py): the selector normalised, the body stripped
    assert split_selector("2: lia") == ("2:", "lia")
    assert split_selector("all:auto") == ("all:", "auto")
    assert split_selector("1 - 2 , 4 : lia") == ("1-2, 4:", "lia")
    assert split_selector("[H]: exact I") == ("[H]:", "exact I")
    assert split_selector("lia") == ("", "lia")
    assert split_selector("x := 1") == ("", "x := 1")


def test_same_header_reuses_the_process_and_states_do_not_leak(test_split):
    a, b_ = test_split["mathd_algebra_107"], test_split["mathd_algebra_24"]
    assert prepare_header(a.header) == prepare_header(b_.header)
    with _backend(warm_spare=False) as b:
        b.start_theorem(a)
        s = b.apply(0, "intros x y h")
        assert isinstance(s, Advanced)
        pid = b._pool.top.proc.pid
        root = b.start_theorem(b_)
        assert b._pool.top.proc.pid == pid and b.stats()["process_starts"] == 0
        assert "x / 50 = 40" in root.goal_text and "y" not in root.goal_text
        with pytest.raises(KeyError):
            b.apply(s.state_id, "nra")  # a state of the previous theorem
        done = b.apply(0, "intros x h; lra")
        assert isinstance(done, ProofFinished)
        # the first theorem again, on the same process, from its root
        root = b.start_theorem(a)
        assert b._pool.top.proc.pid == pid and "forall x y : R" in root.goal_text
        assert isinstance(b.apply(0, "intros; nra"), ProofFinished)
        # another header: the same process, back to the prelude, the new header's sentences added
        b.start_theorem(SIMPLE)
        assert b._pool.top.proc.pid == pid and b.stats()["process_starts"] == 0


def _thm(name: str, header: str, statement: str) -> Theorem:
    return Theorem(name=name, split="unit", system="coq", header=header, statement=statement)


def test_another_header_goes_back_to_the_shared_sentences_and_nothing_leaks():
    """A header change keeps the process: ``Edit_at`` the state after the sentences both headers
    begin with (the prelude at least), then the new ones; what the old header declared is gone."""
    leaky = _thm("t1", "Require Import Reals.\nDefinition llemma_leak := 1%nat.\n",
                 "Theorem t1 : llemma_leak = 1%nat.")
    reals = _thm("t2", "Require Import Reals.\nOpen Scope R_scope.\n", "Theorem t2 : 1 + 1 = 2.")
    other = _thm("t3", "Require Import Arith.\n", "Theorem t3 : 2 + 2 = 4.")
    with _backend(warm_spare=False) as b:
        b.start_theorem(leaky)
        assert isinstance(b.apply(0, "reflexivity"), ProofFinished)
        top = b._pool.top
        pid, after_reals = top.proc.pid, top.header_sentences[0]
        assert after_reals[0] == "Require Import Reals."
        b.start_theorem(reals)
        top = b._pool.top
        assert top.proc.pid == pid and b.stats()["process_starts"] == 0
        assert top.header_sentences[0] == after_reals  # the shared Require was kept, not run again
        assert [t for t, _ in top.header_sentences] == ["Require Import Reals.", "Open Scope R_scope."]
        assert isinstance(b.apply(0, "pose llemma_leak"), TacticError)  # the old header's definition is gone
        assert isinstance(b.apply(0, "lra"), ProofFinished)  # R_scope is open: 1 + 1 = 2 in R
        b.start_theorem(other)
        assert b._pool.top.proc.pid == pid and b._pool.top.header_sentences[0][0] == "Require Import Arith."
        assert isinstance(b.apply(0, "reflexivity"), ProofFinished)
        b.start_theorem(leaky)  # and back
        assert b._pool.top.proc.pid == pid
        assert isinstance(b.apply(0, "reflexivity"), ProofFinished)


def test_a_header_that_does_not_load_is_a_start_error_and_the_next_one_loads():
    with _backend(warm_spare=False) as b:
        with pytest.raises(ProverStartError, match="header did not load"):
            b.start_theorem(_thm("bad", "Require Import NoSuchLibraryAnywhere.\n", "Theorem bad : True."))
        b.start_theorem(SIMPLE)
        assert b._pool.top.header_state is not None


def test_rss_cap_recycles_the_process():
    # a cap below coqtop's resident memory: the process is replaced (not a restart), states survive
    with _backend(recycle_rss_mb=1, warm_spare=False) as b:
        b.start_theorem(SIMPLE)
        s = b.apply(0, "intros n m")
        first = b._pool.top.proc.pid
        for _ in range(12):
            r = b.apply(s.state_id, "split")
            assert isinstance(r, Advanced) and len(r.goals) == 2
        assert b.stats()["recycles"] >= 1 and b._pool.top.proc.pid != first and b.restarts == 0


def test_missing_executable_is_prover_unavailable():
    from llemma_prover.core.errors import ProverUnavailable

    b = make_backend("coq", ProverConfig(executable="/nonexistent/coqtop"))
    with pytest.raises(ProverUnavailable):
        b.start()
    with pytest.raises(ProverUnavailable):
        b.start_theorem(SIMPLE)
    b.close()


def test_reused_process_opens_a_statement_that_only_warns():
    """A statement with large nat literals makes coqtop print a warning; opened in a process that
    already served a theorem with the same header, the warning was all it printed (``Show`` fixes it)."""
    header = "Require Import Arith.\n"
    first = Theorem("reuse_a", "valid", "coq", header, "Theorem reuse_a : (17 * 18) mod 4 = 2.")
    statement = "Theorem reuse_b (n : nat) :\n  123 * n + 17 = 39500 -> n = 321."
    second = Theorem("reuse_b", "valid", "coq", header, statement)
    b = _backend()
    try:
        assert "mod 4 = 2" in b.start_theorem(first).goals[0]
        root = b.start_theorem(second)
        assert "n : nat" in root.goals[0] and root.goals[0].endswith("n = 321")
    finally:
        b.close()


def test_recheck_of_a_coquelicot_proof_ignores_the_header_warnings():
    """Coquelicot's import warns on stderr (coercion paths); the warning must not be read as an entry
    of ``Print Assumptions`` (it was, once coqc ran on pipes: every such proof was rejected)."""
    header = "Require Import Reals.\nRequire Import Coquelicot.Coquelicot.\nOpen Scope R_scope.\n"
    thm = Theorem("coq_warn", "valid", "coq", header, "Theorem coq_warn (x : R) : x + 0 = x.")
    b = _backend()
    try:
        ok = b.check(thm, ["lra"])
        assert ok.ok, ok
        assert not b.check(thm, ["admit"]).ok
    finally:
        b.close()
