"""Isabelle server client + backend, against the fake server in tests/fixtures/fake_isabelle.py.

The fake speaks the documented wire protocol (password line, short/long messages, OK/ERROR, async tasks
with NOTE/FINISHED/FAILED, cancel) on 127.0.0.1; it is not a prover (see its docstring). No real
Isabelle runs here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from llemma_prover.backends.base import make_backend
from llemma_prover.backends.isabelle.automation import HEURISTICS, sledgehammer_suggestions
from llemma_prover.backends.isabelle.client import (
    IsabelleConnection,
    IsabelleServer,
    ServerAddress,
    TaskTimeout,
)
from llemma_prover.backends.isabelle.protocol import MessageBuffer, Position, ProverMessage, encode
from llemma_prover.backends.isabelle.session import IsabelleSession
from llemma_prover.backends.isabelle.theory import validate_proof
from llemma_prover.backends.process import group_alive
from llemma_prover.core.config import ProverConfig
from llemma_prover.core.errors import ProverStartError, ProverUnavailable
from llemma_prover.core.types import ProofFinished, TacticError, TacticTimeout, Theorem

FAKE = Path(__file__).parent / "fixtures" / "fake_isabelle.py"

THM = Theorem(
    name="aime_1983_p2",
    split="test",
    system="isabelle",
    header="theory aime_1983_p2 imports Complex_Main\nbegin\n",
    statement=(
        'theorem aime_1983_p2:\n  fixes x p ::real and f :: "real \\<Rightarrow> real"\n'
        '  assumes h0: "0 < p \\<and> p < 15"\n      and h1: "p \\<le> x \\<and> x \\<le> 15"\n'
        '      and h2: "f x = abs (x - p) + abs (x - 15) + abs (x - p - 15)" \n'
        '    shows "15 \\<le> f x"'
    ),
)
GOAL = "15 \\<le> f x"


def make_fake(tmp_path: Path, oracle: dict) -> str:
    """An ``isabelle`` executable (shell wrapper) running the fake server with ``oracle``."""
    opath = tmp_path / "oracle.json"
    oracle = {**oracle, "pidfile": str(tmp_path / "server.pid")}
    opath.write_text(json.dumps(oracle))
    exe = tmp_path / "isabelle"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} --oracle {opath} "$@"\n')
    exe.chmod(0o755)
    return str(exe)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# protocol (pure)
# ---------------------------------------------------------------------------------------------


def test_encode_short_and_long_messages_round_trip():
    buf = MessageBuffer()
    buf.feed(encode("echo", {"a": 1}))
    buf.feed(encode("use_theories", {"text": "line1\nline2"}))
    long = encode("echo", "x" * 5000)
    assert long.split(b"\n", 1)[0].isdigit()
    buf.feed(long[:10])
    m1 = buf.pop()
    m2 = buf.pop()
    assert (m1.name, m1.json()) == ("echo", {"a": 1})
    assert (m2.name, m2.json()) == ("use_theories", {"text": "line1\nline2"})
    assert buf.pop() is None  # incomplete long message waits for more bytes
    buf.feed(long[10:])
    m3 = buf.pop()
    assert m3.name == "echo" and m3.json() == "x" * 5000
    assert buf.pop() is None


def test_long_message_with_optional_terminator_and_glued_argument():
    buf = MessageBuffer()
    body = b'FINISHED {"task": "t1",\n "ok": true}'
    buf.feed(
        str(len(body)).encode() + b"\r\n" + body + b"\r\n"
    )  # terminator after a long message is optional
    buf.feed(b'OK{"task": "t2"}\r\n')  # the separator may be empty
    m1, m2 = buf.pop(), buf.pop()
    assert (m1.name, m1.json()) == ("FINISHED", {"task": "t1", "ok": True})
    assert (m2.name, m2.json()) == ("OK", {"task": "t2"})
    assert buf.pop() is None


def test_address_line_parses():
    a = ServerAddress.parse('server "isabelle" = 127.0.0.1:4711 (password "f00-ba5")')
    assert a == ServerAddress(name="isabelle", host="127.0.0.1", port=4711, password="f00-ba5")
    assert ServerAddress.parse("Welcome") is None


def test_sledgehammer_suggestions_parsed_from_messages():
    msgs = [
        ProverMessage("writeln", "Sledgehammering...", Position(line=12)),
        ProverMessage("writeln", "cvc4: Try this: by (metis h0 h1) (23 ms)", Position(line=12)),
        ProverMessage("writeln", "Try this: using h2 by linarith (4 ms)", Position(line=12)),
        ProverMessage("writeln", "Try this: by simp (1 ms)", Position(line=30)),
    ]
    assert sledgehammer_suggestions(msgs, line=12) == ["by (metis h0 h1)", "using h2 by linarith"]
    assert HEURISTICS[0] == "by auto" and "by (auto simp: field_simps)" in HEURISTICS


@pytest.mark.parametrize(
    "proof,bad",
    [
        ("by auto", None),
        ('have "x = 1" sorry', "sorry"),
        ("oops", "oops"),
        ("ML \\<open>error 1\\<close>", "ML"),
        ("by simp\nend\ntheory X imports Main begin", "end"),
        ('axiomatization where ax: "False"', "axiomatization"),
        ('using h0 by (simp add: "sorry")', None),  # inside a quoted term it is only text
        ("by auto (* unbalanced", "comment"),
    ],
)
def test_validate_proof_refuses_cheats(proof, bad):
    reason = validate_proof(proof)
    if bad is None:
        assert reason is None
    else:
        assert reason is not None and bad in reason


# ---------------------------------------------------------------------------------------------
# client + fake server processes
# ---------------------------------------------------------------------------------------------


def test_client_handshake_commands_tasks_and_cleanup(tmp_path):
    exe = make_fake(tmp_path, {"claims": {}})
    server = IsabelleServer(executable=exe, start_timeout=30)
    addr = server.start()
    pid = server.pid
    assert pid is not None and pid_alive(pid)
    assert addr.host == "127.0.0.1"
    try:
        # wrong password: rejected
        bad = IsabelleConnection(ServerAddress(addr.name, addr.host, addr.port, "wrong"))
        with pytest.raises(ProverStartError):
            bad.connect()
        conn = IsabelleConnection(addr)
        conn.connect()
        assert conn.server_info["isabelle_id"] == "fake"
        assert conn.echo({"k": [1, 2]}) == {"k": [1, 2]}
        notes = []
        sid_task = conn.task("session_start", {"session": "HOL"}, timeout=10, on_note=notes.append)
        assert sid_task.ok and sid_task.result["session_id"]
        assert notes and notes[0]["message"].startswith("Starting")
        failed = conn.task("session_start", {"session": "NoSuchSession"}, timeout=10)
        assert not failed.ok and "Bad session" in failed.message
        stop = conn.session_stop(sid_task.result["session_id"])
        assert stop.ok
        conn.close()
    finally:
        server.close()
    assert not pid_alive(pid) and not group_alive(pid)  # the whole process group, reaped


@pytest.mark.parametrize("order", ["ok_first", "failed_first"])
def test_cancel_reads_ok_and_failed_in_either_order(tmp_path, order):
    """``cancel``: the server's ``OK`` (command loop) and the task's ``FAILED`` "Interrupt" (task thread)
    come in either order; both are read, so the next command gets its own reply."""
    exe = make_fake(tmp_path, {"claims": {GOAL: {"simp": "hang"}}, "cancel_order": order})
    (tmp_path / f"{THM.name}.thy").write_text(f"{THM.header}\n{THM.statement}\nby simp\n\nend\n")
    server = IsabelleServer(executable=exe, start_timeout=30)
    addr = server.start()
    try:
        conn = IsabelleConnection(addr)
        conn.connect()
        sid = conn.session_start("HOL")
        for _ in range(2):  # twice: a reply left unread by the first cancel would answer the echo below
            with pytest.raises(TaskTimeout):
                conn.use_theories(sid, [THM.name], str(tmp_path), timeout=0.5)
            assert conn.echo({"after": order}) == {"after": order}
        assert conn.session_stop(sid).ok
        conn.close()
    finally:
        server.close()


def test_missing_executable_and_silent_server(tmp_path):
    with pytest.raises(ProverUnavailable):
        IsabelleServer(executable=str(tmp_path / "no-such-isabelle")).start()
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\necho 'not an address'\nsleep 30\n")
    silent.chmod(0o755)
    srv = IsabelleServer(executable=str(silent), start_timeout=5)
    with pytest.raises(ProverStartError):
        srv.start()
    assert srv.pid is None  # closed (process group killed) on failure


def test_backend_apply_check_timeout_and_no_leftover_process(tmp_path):
    exe = make_fake(tmp_path, {"claims": {GOAL: {"(auto simp: field_simps)": "ok", "simp": "hang"}}})
    backend = make_backend("isabelle", ProverConfig(executable=exe, tactic_timeout=1.5, check_timeout=10))
    with backend:
        root = backend.start_theorem(THM)
        assert GOAL in root.goal_text
        pid = backend.server_pid
        assert pid is not None and pid_alive(pid)
        # a method that fails: an error with a position inside the step
        r = backend.apply(root.state_id, "by blast")
        assert isinstance(r, TacticError) and "line 10" in r.message and not r.rejected
        # a method that hangs: cancelled after the timeout, and the connection stays usable
        t0 = time.monotonic()
        r = backend.apply(root.state_id, "by simp")
        assert isinstance(r, TacticTimeout) and time.monotonic() - t0 < 10
        r = backend.apply(root.state_id, "by (auto simp: field_simps)")
        assert isinstance(r, ProofFinished)
        # untrusted text never reaches the prover
        r = backend.apply(root.state_id, "sorry")
        assert isinstance(r, TacticError) and r.rejected
        r = backend.apply(root.state_id, "by simp \udc80")  # a lone surrogate: a value, not an exception
        assert isinstance(r, TacticError) and r.rejected and "surrogate" in r.message
        ok = backend.check(THM, ["by (auto simp: field_simps)"])
        assert ok.ok and ok.checker.startswith("isabelle")
        assert not backend.check(THM, ["by blast"]).ok
        cheat = backend.check(THM, ["sorry"])
        assert not cheat.ok and "refused" in cheat.message
        assert backend.dialect.proof_text(THM, ["by auto"]).endswith("by auto\n\nend\n")
        assert backend.restarts == 0
    assert not pid_alive(pid)


def test_session_recovers_after_server_is_killed(tmp_path):
    exe = make_fake(tmp_path, {"claims": {GOAL: {"auto": "ok"}}})
    sess = IsabelleSession(executable=exe, start_timeout=30)
    try:
        text = f"{THM.header}\n{THM.statement}\nby auto\n\nend\n"
        assert sess.check_theory(THM.name, text, timeout=10).ok
        pid = sess.server_pid
        os.killpg(pid, signal.SIGKILL)
        time.sleep(0.2)
        with pytest.raises(Exception) as ei:
            sess.check_theory(THM.name, text, timeout=10)
        assert "isabelle" in str(ei.value)
        # next check starts a fresh server
        assert sess.check_theory(THM.name, text, timeout=10).ok
        assert sess.restarts == 1
        assert sess.server_pid != pid
    finally:
        newpid = sess.server_pid
        sess.close()
    assert newpid is not None and not pid_alive(newpid)


def test_fake_server_listens_on_loopback_only(tmp_path):
    exe = make_fake(tmp_path, {"claims": {}})
    server = IsabelleServer(executable=exe, start_timeout=30)
    addr = server.start()
    try:
        assert addr.host == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", addr.port), timeout=5):
            pass
    finally:
        server.close()


def test_prove_command_on_isabelle_checks_whole_proofs(tmp_path, minif2f_dir, monkeypatch):
    """``prove --backend isabelle``: the bank's methods are checked as whole proofs, then re-checked."""
    from llemma_prover.cli.main import main as cli_main

    exe = Path(make_fake(tmp_path, {"claims": {"(2 * n) mod 5 = 1": {"presburger": "ok"}}}))
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "run"
    rc = cli_main(
        [
            "prove",
            "--backend",
            "isabelle",
            "--generator",
            "bank",
            "--workers",
            "0",
            "--data-dir",
            str(minif2f_dir),
            "--out",
            str(out),
            "--theorems",
            "mathd_numbertheory_185",
            "--tactic-timeout",
            "2",
        ]
    )
    assert rc == 0
    rec = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert rec["status"] == "proved" and rec["proof"] == ["by presburger"]
    assert rec["check"]["ok"] and rec["check"]["checker"] == "isabelle use_theories"
    assert (out / "proofs" / "mathd_numbertheory_185.thy").read_text().rstrip().endswith("end")
    pid = int((tmp_path / "server.pid").read_text())
    assert not pid_alive(pid)
