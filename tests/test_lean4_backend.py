"""Lean 4 backend against the replay REPL, which answers only from real REPL transcripts.

No Lean toolchain runs here (see docs/lean4.md). The replay executable
(``python -m llemma_prover.testing.replay_repl``) serves, for each request, the reply the real REPL
recorded for the same request on the same state, and exits (status 3) on anything else; faults are
injected by withholding replies (hang) or exiting mid-request (crash).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from llemma_prover.backends.base import make_backend
from llemma_prover.backends.lean4 import Lean4Backend, Lean4Settings
from llemma_prover.backends.lean4.backend import (
    classify_tactic_reply,
    judge_proof_command,
    parse_axioms,
    proof_body,
)
from llemma_prover.backends.lean4.pool import PoolPolicy
from llemma_prover.backends.lean4.protocol import (
    COMPLETED,
    CommandResponse,
    Message,
    ProtocolError,
    ReplError,
    TacticResponse,
    encode_request,
    parse_command_response,
    parse_tactic_response,
)
from llemma_prover.backends.lean4.repl_process import ProcessPolicy, group_alive
from llemma_prover.core.config import ProverConfig
from llemma_prover.core.errors import (
    ProverCrashed,
    ProverDesync,
    ProverError,
    ProverStartError,
    RestartLimitExceeded,
)
from llemma_prover.core.types import Advanced, ProofFinished, TacticError, TacticTimeout, Theorem
from llemma_prover.testing.replay_repl import load_transcripts

REPO = Path(__file__).resolve().parents[1]
TRANSCRIPTS = Path(
    os.environ.get("LLEMMA_PROVER_LEAN_TRANSCRIPTS", REPO.parent / "shared/lean4_repl/transcripts")
)

pytestmark = pytest.mark.skipif(not TRANSCRIPTS.is_dir(), reason=f"no REPL transcripts at {TRANSCRIPTS}")


def thm(statement: str, header: str = "", name: str = "t") -> Theorem:
    return Theorem(name=name, split="test", system="lean4", header=header, statement=statement)


BRANCHING = thm("theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r :=", name="complex_and")
BRANCHING2 = thm("example (p q : Prop) : p ∧ q → q ∧ p :=", name="swap")
DEF_F = thm("def f : Nat :=", name="f")
MATHLIB_FOO = thm("theorem foo (x : Nat) : x = x :=", header="import Mathlib", name="foo")
MATHLIB_TEST = thm("theorem test : 0 < 1 :=", header="import Mathlib", name="test")


class Replay:
    """Builds backends that talk to the replay REPL, and reads what reached it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log = tmp / "requests.jsonl"
        self.backends: list[Lean4Backend] = []

    def backend(
        self,
        *faults: str,
        tactic_timeout: float = 2.0,
        recycle_after: int = 0,
        max_restarts: int = 25,
        warm_spare: bool = False,
    ) -> Lean4Backend:
        cmd = (
            sys.executable,
            "-m",
            "llemma_prover.testing.replay_repl",
            "--transcripts",
            str(TRANSCRIPTS),
            "--log",
            str(self.log),
            *faults,
        )
        settings = Lean4Settings(
            command=cmd,
            command_cwd=str(REPO),
            tactic_timeout=tactic_timeout,
            start_timeout=20.0,
            check_timeout=20.0,
            max_restarts=max_restarts,
            pool=PoolPolicy(
                start_timeout=20.0, recycle_after=recycle_after, recycle_rss_mb=0, warm_spare=warm_spare
            ),
            process=ProcessPolicy(address_space_mb=4096, rss_kill_mb=2048),
        )
        b = Lean4Backend(ProverConfig(), settings)
        self.backends.append(b)
        return b

    def requests(self) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def tactics_sent(self) -> list[str]:
        return [r["tactic"] for r in self.requests() if "tactic" in r]  # type: ignore[misc]


@pytest.fixture
def replay(tmp_path: Path):
    r = Replay(tmp_path)
    yield r
    for b in r.backends:
        b.close()


def _pgid(b: Lean4Backend) -> int:
    assert b._session is not None and b._session.process.pgid is not None
    return b._session.process.pgid


# --------------------------------------------------------------------------------------------
# start, steps, branching, Completed
# --------------------------------------------------------------------------------------------


def test_registered_by_name() -> None:
    b = make_backend("lean4", ProverConfig(tactic_timeout=7.0, executable="/nonexistent/repl"))
    assert isinstance(b, Lean4Backend) and b.name == "lean4"
    assert b.settings.tactic_timeout == 7.0 and b.settings.executable == "/nonexistent/repl"


def test_steps_to_completed_with_repl_goal_text(replay: Replay) -> None:
    with replay.backend() as b:
        root = b.start_theorem(BRANCHING)
        assert root.goals == ("p q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p ∧ r",)
        s1 = b.apply(root.state_id, "apply And.intro")
        assert isinstance(s1, Advanced)
        assert s1.goals == (
            "case left\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p",
            "case right\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ r",
        )
        assert s1.goal_text == "\n\n".join(s1.goals)
        s2 = b.apply(s1.state_id, "exact h1.left")
        s3 = b.apply(s2.state_id, "apply h2")  # type: ignore[union-attr]
        assert isinstance(s3, Advanced) and s3.goals == (
            "case right\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ q",
        )
        done = b.apply(s3.state_id, "exact h1.right")
        assert isinstance(done, ProofFinished)
        # a finished state cannot be extended
        again = b.apply(done.state_id, "rfl")
        assert isinstance(again, TacticError) and again.rejected
    assert replay.tactics_sent() == ["apply And.intro", "exact h1.left", "apply h2", "exact h1.right"]


def test_branching_from_earlier_states(replay: Replay) -> None:
    """proof_step: two different tactics on the root; the second branch is then finished."""
    with replay.backend() as b:
        root = b.start_theorem(DEF_F)
        assert root.goals == ("⊢ Nat",)
        a = b.apply(root.state_id, "apply Int.natAbs")
        h = b.apply(root.state_id, "have t : Nat := 42")
        assert isinstance(a, Advanced) and a.goals == ("⊢ Int",)
        assert isinstance(h, Advanced) and h.goals == ("t : Nat\n⊢ Nat",)
        assert len({root.state_id, a.state_id, h.state_id}) == 3
        done = b.apply(h.state_id, "exact t")
        assert isinstance(done, ProofFinished)


def test_mathlib_header_imported_once_per_process(replay: Replay) -> None:
    with replay.backend() as b:
        r1 = b.start_theorem(MATHLIB_FOO)
        assert r1.goals == ("x : ℕ\n⊢ x = x",)
        s = b.apply(r1.state_id, "induction x")
        assert isinstance(s, Advanced) and s.goals[0] == "case zero\n⊢ 0 = 0"
        s2 = b.apply(s.state_id, "next => rfl")
        assert isinstance(s2, Advanced) and len(s2.goals) == 1
        r2 = b.start_theorem(MATHLIB_TEST)
        assert r2.goals == ("⊢ 0 < 1",) and r2.state_id == 0
        with pytest.raises(KeyError):
            b.apply(5, "rfl")  # states of the previous theorem are forgotten
    reqs = replay.requests()
    assert [r for r in reqs if r.get("cmd") == "import Mathlib"] == [{"cmd": "import Mathlib"}]
    assert {r.get("env") for r in reqs if "cmd" in r and r["cmd"] != "import Mathlib"} == {0}


# --------------------------------------------------------------------------------------------
# errors, sorries, the empty-goals trap
# --------------------------------------------------------------------------------------------


def test_error_with_empty_goals_is_not_a_proof(replay: Replay) -> None:
    """invalid_tactic: the REPL answers goals [] + an error + 'Incomplete: contains sorry'."""
    with replay.backend() as b:
        root = b.start_theorem(thm("theorem my_theorem (x : Nat) : x = x :="))
        r = b.apply(root.state_id, "exact my_fake_premise")
        assert isinstance(r, TacticError) and not r.rejected
        assert "Unknown identifier `my_fake_premise`" in r.message
        root2 = b.start_theorem(thm("example : False :="))  # mathlib/20240209, no header
        r2 = b.apply(root2.state_id, "simpa using show False by done")
        assert isinstance(r2, TacticError) and "unsolved goals" in r2.message


def test_lean_error_reply_is_a_tactic_error(replay: Replay) -> None:
    with replay.backend() as b:
        root = b.start_theorem(DEF_F)
        r = b.apply(root.state_id, "exat 42")
        assert (
            isinstance(r, TacticError)
            and r.message.startswith("Lean error:")
            and "unknown tactic" in r.message
        )
        # the process is still healthy: the next tactic on the same state works
        assert isinstance(b.apply(root.state_id, "apply Int.natAbs"), Advanced)
        assert b.restarts == 0


def test_cheating_tactics_never_reach_the_repl(replay: Replay) -> None:
    with replay.backend() as b:
        root = b.start_theorem(MATHLIB_TEST)
        for tac in (
            "exact?",
            "sorry",
            "native_decide",
            "decide +native",
            "admit",
            "set_option debug.skipKernelTC true in rfl",
            "exact sorry",
            "rfl\naxiom cheat : False",
        ):
            r = b.apply(root.state_id, tac)
            assert isinstance(r, TacticError) and r.rejected, tac
        root = b.start_theorem(MATHLIB_FOO)
        r = b.apply(root.state_id, "induction x with\n| zero => sorry\n| succ x => sorry")
        assert isinstance(r, TacticError) and r.rejected
    assert replay.tactics_sent() == []


def test_lone_surrogate_is_a_tactic_error_not_an_exception(replay: Replay) -> None:
    """A tactic with a lone surrogate (no UTF-8 encoding) is refused as a value; the process is fine."""
    with replay.backend() as b:
        root = b.start_theorem(DEF_F)
        for tac in ("exact \udc80", "simp [\ud800]", "rfl -- \udfff"):
            r = b.apply(root.state_id, tac)
            assert isinstance(r, TacticError) and r.rejected and "surrogate" in r.message, tac
        assert isinstance(b.apply(root.state_id, "apply Int.natAbs"), Advanced)
        assert not b.check(DEF_F, ["exact \udc80"]).ok
        assert b.restarts == 0
    with pytest.raises(ProtocolError):
        encode_request({"tactic": "exact \udc80", "proofState": 0})


def _recorded_tactic_replies() -> list[tuple[str, dict[str, object]]]:
    out = []
    for name, entries in load_transcripts(TRANSCRIPTS).items():
        for e in entries:
            if "tactic" in e.request and "proofState" in e.request:
                out.append((name, e.reply))
    return out


def test_every_recorded_tactic_reply_is_classified_soundly() -> None:
    """Over every real tactic reply: finished iff proofStatus == Completed; empty goals never suffice."""
    replies = _recorded_tactic_replies()
    assert len(replies) >= 40
    seen = {"finished": 0, "advanced": 0, "error": 0, "empty_goals_not_completed": 0}
    for name, raw in replies:
        reply = parse_tactic_response(raw)
        if isinstance(reply, ReplError) and reply.unknown_id:
            # unknown_proof_state: the client named a state the REPL never issued: desync, not tactic error
            with pytest.raises(ProverDesync):
                classify_tactic_reply(reply, 0.0)
            seen["desync"] = seen.get("desync", 0) + 1
            continue
        out = classify_tactic_reply(reply, 0.0)
        if isinstance(reply, ReplError):
            assert isinstance(out, TacticError), name
            seen["error"] += 1
            continue
        assert isinstance(reply, TacticResponse)
        if reply.proof_status == COMPLETED and not reply.errors and not reply.sorries:
            assert isinstance(out, ProofFinished), name
            seen["finished"] += 1
        elif out is None:
            assert reply.goals and reply.proof_status == "Incomplete: open goals remain" and not reply.sorries
            seen["advanced"] += 1
        else:
            assert isinstance(out, TacticError), name
            seen["error"] += 1
        if not reply.goals and reply.proof_status != COMPLETED:
            assert isinstance(out, TacticError), name
            seen["empty_goals_not_completed"] += 1
    # the transcripts exercise every branch, including the trap (metavariables, kernel errors, sorry)
    assert all(v > 0 for v in seen.values()), seen
    assert seen["empty_goals_not_completed"] >= 8


def test_sorry_in_reply_is_an_error() -> None:
    """on_goal (Mathlib): goals remain, but the tactic created sorries -> rejected."""
    raw = next(r for n, r in _recorded_tactic_replies() if n.endswith("on_goal"))
    out = classify_tactic_reply(parse_tactic_response(raw), 0.0)
    assert isinstance(out, TacticError) and "sorry" in out.message


def test_command_replies_parse_and_whole_proof_verdicts() -> None:
    """Every recorded command reply parses; a whole-proof command is accepted only without error/sorry."""
    accepted, rejected = 0, 0
    for name, entries in load_transcripts(TRANSCRIPTS).items():
        for e in entries:
            if "cmd" not in e.request:
                continue
            reply = parse_command_response(e.reply)  # raises ProtocolError on anything unexpected
            if not isinstance(reply, CommandResponse):
                continue
            verdict = judge_proof_command(reply)
            has_sorry = bool(reply.sorries) or "sorry`" in json.dumps(e.reply)
            if reply.errors or has_sorry:
                assert verdict is not None, name
                rejected += 1
            else:
                assert verdict is None, name
                accepted += 1
    assert accepted >= 10 and rejected >= 30
    # e.g. calc.in: two `by sorry` steps -> sorries + the "declaration uses `sorry`" warning
    calc = load_transcripts(TRANSCRIPTS)["calc"][0]
    assert judge_proof_command(parse_command_response(calc.reply)) == "proof uses sorry"  # type: ignore[arg-type]
    old_style = CommandResponse(env=0, messages=(Message("warning", "declaration uses 'sorry'"),))
    assert judge_proof_command(old_style) == "proof uses sorry"


def test_statement_convention_enforced(replay: Replay) -> None:
    with replay.backend() as b, pytest.raises(ProverStartError, match=":="):
        b.start_theorem(thm("theorem x : True := by trivial"))


# --------------------------------------------------------------------------------------------
# timeouts, crashes, restarts, recycling, process groups
# --------------------------------------------------------------------------------------------


def test_timeout_kills_group_restarts_and_replays(replay: Replay, tmp_path: Path) -> None:
    with replay.backend(
        "--hang", "exact h1.left", "--once", str(tmp_path / "once"), "--spawn-child", tactic_timeout=1.5
    ) as b:
        root = b.start_theorem(BRANCHING)
        s1 = b.apply(root.state_id, "apply And.intro")
        assert isinstance(s1, Advanced)
        old_pgid = _pgid(b)
        t0 = time.monotonic()
        r = b.apply(s1.state_id, "exact h1.left")
        assert isinstance(r, TacticTimeout) and r.timeout == 1.5
        assert time.monotonic() - t0 < 10
        assert not group_alive(old_pgid), "the timed-out process group (with its grandchild) must be gone"
        assert b.restarts == 1
        # same tactic on the same (old-generation) state: a new process, the path replayed
        s2 = b.apply(s1.state_id, "exact h1.left")
        assert isinstance(s2, Advanced) and s2.goals == (
            "case right\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ r",
        )
        assert b.stats()["replayed_tactics"] == 1
        s3 = b.apply(s2.state_id, "apply h2")
        assert isinstance(b.apply(s3.state_id, "exact h1.right"), ProofFinished)  # type: ignore[union-attr]
        new_pgid = _pgid(b)
        assert new_pgid != old_pgid
    assert not group_alive(new_pgid)


def test_crash_mid_request_raises_then_recovers(replay: Replay, tmp_path: Path) -> None:
    with replay.backend("--exit", "apply h2", "--once", str(tmp_path / "once")) as b:
        root = b.start_theorem(BRANCHING)
        s1 = b.apply(root.state_id, "apply And.intro")
        s2 = b.apply(s1.state_id, "exact h1.left")  # type: ignore[union-attr]
        pgid = _pgid(b)
        with pytest.raises(ProverCrashed, match="exited"):
            b.apply(s2.state_id, "apply h2")  # type: ignore[union-attr]
        assert not group_alive(pgid) and b.restarts == 1
        s3 = b.apply(s2.state_id, "apply h2")  # type: ignore[union-attr]
        assert isinstance(s3, Advanced)
        assert b.stats()["replayed_tactics"] == 2  # apply And.intro, exact h1.left
        assert isinstance(b.apply(s3.state_id, "exact h1.right"), ProofFinished)


def test_request_not_in_transcripts_is_a_crash_not_an_answer(replay: Replay) -> None:
    with replay.backend() as b:
        root = b.start_theorem(DEF_F)
        with pytest.raises(ProverCrashed) as ei:
            b.apply(root.state_id, "exact 7")
        assert "not in transcripts" in ei.value.output_tail


def test_restart_limit(replay: Replay) -> None:
    with replay.backend("--hang", "exact 0", tactic_timeout=0.5, max_restarts=1) as b:
        root = b.start_theorem(DEF_F)
        assert isinstance(b.apply(root.state_id, "exact 0"), TacticTimeout)
        with pytest.raises(RestartLimitExceeded):
            b.apply(root.state_id, "exact 0")


def test_recycling_after_n_requests_keeps_states_valid(replay: Replay) -> None:
    with replay.backend(recycle_after=3) as b:
        root = b.start_theorem(BRANCHING)  # requests: (no header) start = 1
        s1 = b.apply(root.state_id, "apply And.intro")  # 2
        s2 = b.apply(s1.state_id, "exact h1.left")  # 3 -> recycled
        assert b._session is None
        s3 = b.apply(s2.state_id, "apply h2")  # type: ignore[union-attr]
        assert isinstance(s3, Advanced)
        assert b.stats()["replayed_tactics"] == 2
        assert isinstance(b.apply(s3.state_id, "exact h1.right"), ProofFinished)


def test_close_leaves_no_process(replay: Replay, tmp_path: Path) -> None:
    b = replay.backend("--spawn-child", warm_spare=True)
    b.start()
    b.start_theorem(BRANCHING)
    pgid = _pgid(b)
    pool = b._pool
    assert pool is not None
    b._pool_().prewarm("")  # a spare starting in the background is killed too
    b.close()
    b.close()  # idempotent
    assert not group_alive(pgid)
    assert pool.describe()["idle"] == 0 and pool.describe()["busy"] == 0


def test_missing_repl_is_a_clear_error(tmp_path: Path) -> None:
    from llemma_prover.core.errors import ProverUnavailable

    b = Lean4Backend(ProverConfig(), Lean4Settings(executable=str(tmp_path / "nope")))
    with pytest.raises(ProverUnavailable, match="lake"):
        b.start()
    b.close()


# --------------------------------------------------------------------------------------------
# re-check
# --------------------------------------------------------------------------------------------


def test_check_rejects_errors_and_cheats_and_unverified_axioms(replay: Replay) -> None:
    with replay.backend() as b:
        # incomplete.in: `def f : Nat := by apply Nat.succ` -> "unsolved goals"
        c = b.check(DEF_F, ["apply Nat.succ"])
        assert not c.ok and "unsolved goals" in c.message and c.checker == "lean4-repl"
        c = b.check(DEF_F, ["exact sorry"])
        assert not c.ok and "rejected" in c.message
        c = b.check(DEF_F, [])
        assert not c.ok
        # H20231020: the proof elaborates with no error; the #print axioms reply was never recorded,
        # so the replay cannot answer -> the proof must NOT be accepted
        header = json.loads((TRANSCRIPTS / "mathlib/H20231020.in").read_text().split("\n\n")[0])["cmd"]
        t = thm(
            "theorem mathd_numbertheory_188 : Nat.gcd 180 168 = 12 :=",
            header=header,
            name="mathd_numbertheory_188",
        )
        c = b.check(t, ["norm_num"])
        assert not c.ok and "could not run" in c.message
    reqs = replay.requests()
    # the compile process (a fresh one, with the header imported) ran the proof and was asked to
    # pickle its env; no '#print axioms' is ever sent to a process that ran the proof text
    assert reqs.count({"cmd": header}) == 1
    assert {"cmd": "theorem mathd_numbertheory_188 : Nat.gcd 180 168 = 12 := by norm_num", "env": 0} in reqs
    assert [r for r in reqs if "pickleTo" in r] and [r["env"] for r in reqs if "pickleTo" in r] == [1]
    assert not [r for r in reqs if str(r.get("cmd", "")).startswith("#print axioms")]


def test_parse_axioms_and_proof_text() -> None:
    # format of Lean's `#print axioms` (Lean.Elab.Print), as in Lean's tests/lean/run/collectAxioms.lean
    assert parse_axioms("'foo' depends on axioms: [propext, Classical.choice, Quot.sound]") == (
        "propext",
        "Classical.choice",
        "Quot.sound",
    )
    assert parse_axioms("'foo' depends on axioms: [propext,\n sorryAx,\n Quot.sound]", "foo") == (
        "propext",
        "sorryAx",
        "Quot.sound",
    )
    assert parse_axioms("'foo' does not depend on any axioms", "foo") == ()
    assert parse_axioms("unknown constant") is None
    # the whole text must be the report, on exactly the name asked about
    assert parse_axioms("'foo' does not depend on any axioms", "bar") is None
    assert parse_axioms("'foo' depends on axioms: [sorryAx]", "foo.bar") is None
    assert parse_axioms("note: 'foo' does not depend on any axioms") is None
    assert parse_axioms("'foo' does not depend on any axioms\n'foo' depends on axioms: [sorryAx]") is None
    b = Lean4Backend(ProverConfig())
    t = thm("theorem t (x : Nat) : x = x :=", header="import Mathlib\nopen Nat\n")
    want = "import Mathlib\nopen Nat\n\ntheorem t (x : Nat) : x = x := by rfl\n"
    assert b.dialect.proof_text(t, ["rfl"]) == want
    assert proof_body(["intro h", "cases h with\n| inl a => exact a"]) == (
        "\n  intro h\n  cases h with\n  | inl a => exact a"
    )


def test_prover_errors_carry_context(replay: Replay) -> None:
    with replay.backend() as b:
        root = b.start_theorem(DEF_F)
        with pytest.raises(ProverError) as ei:
            b.apply(root.state_id, "exact 8")
        assert ei.value.backend == "lean4" and ei.value.elapsed >= 0


def test_warm_spare_replaces_a_killed_process(replay: Replay, tmp_path: Path) -> None:
    with replay.backend(
        "--hang", "exact h1.left", "--once", str(tmp_path / "once"), tactic_timeout=1.0, warm_spare=True
    ) as b:
        root = b.start_theorem(BRANCHING)
        s1 = b.apply(root.state_id, "apply And.intro")
        assert isinstance(b.apply(s1.state_id, "exact h1.left"), TacticTimeout)  # type: ignore[union-attr]
        pool = b._pool
        assert pool is not None
        # the replacement was started in the background right after the kill
        assert pool.describe()["started"] == 2
        # on a loaded machine the spare may still be importing its header: wait for it (bounded), so the
        # next step shows whether the spare is used rather than how fast the machine is
        deadline = time.monotonic() + 60
        while pool.describe()["warming"] and time.monotonic() < deadline:
            time.sleep(0.05)
        s2 = b.apply(s1.state_id, "exact h1.left")  # type: ignore[union-attr]
        assert isinstance(s2, Advanced)
        # the warm spare served the step: apart from a new spare (warming or idle) the pool keeps for the
        # header, nothing else was started
        d = pool.describe()
        assert d["started"] - d["warming"] - d["idle"] == 2, d


def test_recycling_above_rss_limit(replay: Replay) -> None:
    b = replay.backend()
    b.settings = Lean4Settings(
        **{**b.settings.__dict__, "pool": PoolPolicy(start_timeout=20.0, recycle_rss_mb=1, warm_spare=False)}
    )
    with b:
        root = b.start_theorem(BRANCHING)
        s1 = b.apply(root.state_id, "apply And.intro")  # the replay REPL is > 1 MiB resident: recycled
        assert b._session is None
        s2 = b.apply(s1.state_id, "exact h1.left")  # type: ignore[union-attr]
        assert isinstance(s2, Advanced) and b.stats()["replayed_tactics"] == 1
        assert b.stats()["pool_recycled"] >= 1


def test_close_does_not_wait_for_a_header_import(replay: Replay) -> None:
    """A spare still importing its header (here: one that never answers) is killed by close()."""
    b = replay.backend("--hang-cmd", "import Mathlib", warm_spare=True)
    b.start()
    pool = b._pool
    assert pool is not None
    pool.prewarm("import Mathlib")
    deadline = time.monotonic() + 10
    while not any(p.pgid for p in pool._starting) and time.monotonic() < deadline:
        time.sleep(0.01)
    starting = list(pool._starting)
    assert starting and starting[0].pgid is not None
    t0 = time.monotonic()
    b.close()
    assert time.monotonic() - t0 < 10
    assert not group_alive(starting[0].pgid)


def test_repl_runs_in_the_configured_sandbox(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every REPL process is started through ``sandbox_for(config)``: wrapped for network isolation
    when this machine allows it, with a scrubbed environment."""
    monkeypatch.setenv("LLEMMA_TEST_SECRET_TOKEN", "must-not-leak")
    with replay.backend() as b:
        b.start_theorem(DEF_F)
        pgid = _pgid(b)
        leader = Path(f"/proc/{pgid}/cmdline").read_bytes().split(b"\0")
        if b.sandbox.network != "none":
            assert leader[0].endswith(b.sandbox.network.encode()), leader[:3]
        envs = [Path(f"/proc/{p}/environ").read_bytes() for p in _group(pgid)]
        assert envs and not any(b"LLEMMA_TEST_SECRET_TOKEN" in e for e in envs)
        assert b.sandbox.limits.address_space_mb == b.settings.process.address_space_mb


def _group(pgid: int) -> list[int]:
    from llemma_prover.backends.lean4.repl_process import group_members

    return group_members(pgid)


def test_replay_repl_dies_on_a_missing_pickle_like_the_pinned_repl(tmp_path: Path) -> None:
    """REPL v4.32.0 does not answer an unpickle of a missing file: the exception is uncaught and the
    process exits; the replay REPL does the same, and the client sees a crash with that stderr."""
    from llemma_prover.backends.lean4.repl_process import ReplProcess
    from llemma_prover.core.errors import ProverCrashed

    p = ReplProcess(
        [sys.executable, "-m", "llemma_prover.testing.replay_repl", "--transcripts", str(TRANSCRIPTS)],
        env={"PYTHONPATH": str(REPO)},
        policy=ProcessPolicy(address_space_mb=0),
    )
    p.spawn()
    pgid = p.pgid
    with pytest.raises(ProverCrashed, match="exited") as ei:
        p.request({"unpickleEnvFrom": str(tmp_path / "missing.olean")}, 20)
    assert "uncaught exception: no such file or directory" in ei.value.output_tail
    assert not p.alive() and pgid is not None and not group_alive(pgid)

