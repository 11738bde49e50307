"""``core/procfs.py``, the one reader of ``/proc``, on real processes of this machine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llemma_prover.core import procfs

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")


def _gone_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_task_children_and_group_members_see_a_child_in_its_own_group() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        kids = procfs.task_children(os.getpid())
        assert kids is None or child.pid in kids  # None only where the kernel lacks the file
        assert child.pid in procfs.children(os.getpid())
        assert procfs.group_members(child.pid) == [child.pid]
        assert procfs.is_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert procfs.group_members(child.pid, live_only=False) == []


def test_memory_readers() -> None:
    me = os.getpid()
    assert 0 < procfs.rss_bytes(me) <= procfs.peak_rss_bytes(me)
    gone = _gone_pid()
    assert procfs.rss_bytes(gone) == procfs.peak_rss_bytes(gone) == 0
    assert procfs.task_children(gone) == []
    assert procfs.stat(gone) is None
