"""The process helper: process groups, deadlines, memory limit, kill/close leave nothing behind."""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import pytest

from llemma_prover.backends.process import (
    ManagedProcess,
    ProcessExited,
    ProcessTimeout,
    group_alive,
)

PY = sys.executable
READY = re.compile(r"READY (\d+)\n")


def _forking_child() -> list[str]:
    # prints READY <grandchild pid>, then both processes wait forever
    code = (
        "import os, sys, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    time.sleep(1000)\n"
        "print('READY', pid, flush=True)\n"
        "time.sleep(1000)\n"
    )
    return [PY, "-c", code]


def test_own_process_group_and_kill_removes_the_whole_group():
    proc = ManagedProcess(_forking_child()).start()
    _, m = proc.expect(READY, time.monotonic() + 30)
    grandchild = int(m.group(1))
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    assert os.getpgid(grandchild) == proc.pgid
    assert group_alive(proc.pgid)
    proc.kill()
    assert not proc.alive
    deadline = time.monotonic() + 10
    while group_alive(proc.pgid) and time.monotonic() < deadline:
        time.sleep(0.05)  # the orphaned grandchild is reaped by init, asynchronously
    assert not group_alive(proc.pgid)
    assert proc.returncode is not None  # reaped, not a zombie


def test_close_removes_private_tmpdir_and_is_idempotent():
    proc = ManagedProcess([PY, "-c", "import os; print('READY', os.getpid(), flush=True); input()"])
    proc.start()
    workdir = proc.workdir
    assert workdir is not None and os.path.isdir(workdir)
    proc.expect(READY, time.monotonic() + 30)
    proc.close()
    proc.close()
    assert not os.path.exists(workdir)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pgid, 0)


def test_deadline_read_raises_typed_timeout_without_waiting_longer():
    proc = ManagedProcess([PY, "-c", "import time; print('hello', flush=True); time.sleep(60)"]).start()
    try:
        proc.expect(re.compile("hello"), time.monotonic() + 30)
        t0 = time.monotonic()
        with pytest.raises(ProcessTimeout) as info:
            proc.expect(re.compile("never"), time.monotonic() + 0.5)
        took = time.monotonic() - t0
        assert 0.4 < took < 5.0
        assert "hello" in info.value.tail
        assert proc.alive
    finally:
        proc.close()


def test_eof_raises_process_exited_with_tail():
    proc = ManagedProcess([PY, "-c", "print('bye now', flush=True)"]).start()
    try:
        with pytest.raises(ProcessExited) as info:
            proc.expect(re.compile("never"), time.monotonic() + 30)
        assert "bye now" in info.value.tail
    finally:
        proc.close()


def test_memory_limit_applies():
    code = "b = bytearray(600 * 1024 * 1024); print('ALLOCATED', flush=True)"
    limited = ManagedProcess([PY, "-c", code], memory_limit_mb=300).start()
    status, out = limited.wait(time.monotonic() + 60)
    limited.close()
    assert status != 0 and "MemoryError" in out
    free = ManagedProcess([PY, "-c", code], memory_limit_mb=0).start()
    status, out = free.wait(time.monotonic() + 60)
    free.close()
    assert status == 0 and "ALLOCATED" in out


def test_no_core_dumps_and_scrubbed_env_and_private_cwd():
    os.environ["LLEMMA_SECRET_TEST_VAR"] = "leak"
    try:
        code = (
            "import os, resource; print('CORE', resource.getrlimit(resource.RLIMIT_CORE)[0]);"
            "print('SECRET', os.environ.get('LLEMMA_SECRET_TEST_VAR')); print('CWD', os.getcwd())"
        )
        proc = ManagedProcess([PY, "-c", code]).start()
        workdir = proc.workdir
        status, out = proc.wait(time.monotonic() + 30)
        proc.close()
    finally:
        del os.environ["LLEMMA_SECRET_TEST_VAR"]
    assert status == 0
    assert "CORE 0" in out
    assert "SECRET None" in out
    assert f"CWD {workdir}" in out


def test_rss_requests_and_send_after_death():
    proc = ManagedProcess(
        [PY, "-c", "import sys\nfor line in sys.stdin:\n    print('ECHO', line.strip(), flush=True)"]
    ).start()
    try:
        for i in range(3):
            proc.send(f"x{i}\n")
            before, m = proc.expect(re.compile(r"ECHO (\S+)\n"), time.monotonic() + 30)
            assert m.group(1) == f"x{i}"
        assert proc.requests == 3
        assert 1.0 < proc.rss_mb() < 500.0
        os.kill(proc.pid, signal.SIGKILL)
        with pytest.raises(ProcessExited):
            proc.expect(re.compile("never"), time.monotonic() + 30)
        with pytest.raises(ProcessExited):
            for _ in range(100):  # the first write may still fit in the pipe buffer
                proc.send("more\n")
    finally:
        proc.close()
    assert proc.rss_mb() == 0.0 or not proc.alive
