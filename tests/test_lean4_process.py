"""ReplProcess: deadline reads, stderr draining, memory cap, desync, group kill.

These drive the process layer with small Python children that misbehave the way a broken prover
process can (garbage on stdout, a flood on stderr, runaway memory); the replies they do send are
real recorded REPL replies. Protocol behaviour itself is tested on the transcripts elsewhere.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from llemma_prover.backends.lean4.protocol import CommandResponse, parse_command_response
from llemma_prover.backends.lean4.repl_process import ProcessPolicy, ReplProcess, ReplTimeout, group_alive
from llemma_prover.core.errors import ProverCrashed, ProverDesync, ProverStartError

REPO = Path(__file__).resolve().parents[1]
TRANSCRIPTS = Path(
    os.environ.get("LLEMMA_PROVER_LEAN_TRANSCRIPTS", REPO.parent / "shared/lean4_repl/transcripts")
)
RECORDED = TRANSCRIPTS / "mathlib/exact.expected.out"


def child(code: str, **policy: object) -> ReplProcess:
    p = ReplProcess(
        [sys.executable, "-c", textwrap.dedent(code)], policy=ProcessPolicy(address_space_mb=0, **policy)
    )  # type: ignore[arg-type]
    p.spawn()
    return p


@pytest.mark.skipif(not RECORDED.is_file(), reason="no REPL transcripts")
def test_stderr_flood_does_not_block_and_tail_is_bounded() -> None:
    reply = RECORDED.read_text().split("\n\n")[1]
    p = child(
        f"""
        import sys
        sys.stdin.readline(); sys.stdin.readline()
        sys.stderr.write("x" * (4 * 1024 * 1024)); sys.stderr.flush()
        sys.stdout.write({reply!r} + "\\n\\n"); sys.stdout.flush()
        sys.stderr.write("END"); sys.stderr.flush()
        sys.stdin.read()
    """,
        stderr_tail_chars=1000,
    )
    try:
        out = parse_command_response(p.request({"cmd": "theorem test : 0 < 1 := by sorry", "env": 0}, 20))
        assert isinstance(out, CommandResponse) and out.sorries[0].goal == "⊢ 0 < 1"
        assert len(p.stderr_tail()) <= 1000
    finally:
        p.kill()


def test_timeout_kills_the_group() -> None:
    p = child("""
        import subprocess, sys, time
        subprocess.Popen(["sleep", "600"])
        sys.stdin.readline()
        time.sleep(600)
    """)
    pgid = p.pgid
    assert pgid is not None
    with pytest.raises(ReplTimeout) as ei:
        p.request({"cmd": "x"}, 0.5)
    assert 0.5 <= ei.value.elapsed < 5
    assert not p.alive() and not group_alive(pgid)


def test_garbage_on_stdout_is_a_desync() -> None:
    p = child("""
        import sys, time
        sys.stdin.readline()
        print("this is not json"); print(); sys.stdout.flush()
        time.sleep(600)
    """)
    with pytest.raises(ProverDesync, match="not JSON"):
        p.request({"cmd": "x"}, 10)
    assert not p.alive()


def test_exit_before_answering_is_a_crash_with_stderr_tail() -> None:
    p = child("""
        import sys
        sys.stdin.readline()
        sys.stderr.write("INTERNAL PANIC"); sys.exit(7)
    """)
    with pytest.raises(ProverCrashed, match="code 7") as ei:
        p.request({"cmd": "x"}, 10)
    assert "INTERNAL PANIC" in ei.value.output_tail


def test_memory_cap_kills_runaway_process() -> None:
    p = child(
        """
        import sys, time
        sys.stdin.readline()
        block = b"x" * (400 * 1024 * 1024)
        time.sleep(600)
    """,
        rss_kill_mb=150,
        rss_poll_interval=0.05,
    )
    pgid = p.pgid
    with pytest.raises(ProverCrashed, match="memory cap"):
        p.request({"cmd": "x"}, 30)
    assert pgid is not None and not group_alive(pgid)


def test_missing_executable_is_a_start_error(tmp_path: Path) -> None:
    p = ReplProcess([str(tmp_path / "no-such-repl")])
    with pytest.raises(ProverStartError):
        p.spawn()
    p.kill()


def test_doctor_probe_kills_its_whole_group_on_timeout(tmp_path: Path) -> None:
    """``run_probe`` (every doctor probe): a probe that hangs with a forked child is killed as a group."""
    from llemma_prover.backends.process import group_alive
    from llemma_prover.doctor.probe import run_probe

    pidfile = tmp_path / "pid"
    with pytest.raises(TimeoutError):
        run_probe(["sh", "-c", f"sleep 300 & echo $$ > {pidfile}; wait"], timeout=1.0)
    pgid = int(pidfile.read_text())
    assert not group_alive(pgid)
    assert run_probe(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30) == (3, "out\nerr\n")
