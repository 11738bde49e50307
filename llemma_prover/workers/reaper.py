"""The reaper of leftover provers: what a worker killed with ``kill -9`` leaves running.

Prover processes run in their own session and get a scrubbed environment, so neither the process
group nor an environment marker finds them once their parent is gone. So each worker records the pids
of its children in a file as they appear (``ChildRecorder``); when the pool sees the worker die it
kills what the file names (``kill_recorded``). The file lives in this machine's temp dir: a worker
on another machine of a cluster is reaped only if its own node outlives it (see ``docs/cluster.md``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ..core import procfs


def pidfile_for(tag: str) -> Path:
    return Path(tempfile.gettempdir()) / f"llemma-prover-worker-{tag}.pids"


class ChildRecorder:
    """Appends ``pid start-time`` of each new child of this process to ``path``, every ``interval`` s."""

    def __init__(self, path: Path, interval: float = 0.2) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._seen: dict[int, str] = {}
        self._thread = threading.Thread(target=self._loop, name="child-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            new = {p: t for p, t in procfs.children(me).items() if self._seen.get(p) != t}
            if new:
                self._seen.update(new)
                with contextlib.suppress(OSError), open(self.path, "a") as fh:
                    fh.write("".join(f"{p} {t}\n" for p, t in new.items()))
                    fh.flush()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.path.unlink()


def kill_recorded(tag: str) -> list[int]:
    """SIGKILL (whole process group) every recorded child of a dead worker that still runs."""
    path = pidfile_for(tag)
    killed: list[int] = []
    try:
        lines = path.read_text().split("\n")
    except OSError:
        return killed
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        pid, start = int(parts[0]), parts[1]
        st = procfs.stat(pid)
        if st is None or st.start != start:  # gone, or the pid now belongs to another process
            continue
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:  # prover processes lead their own group: kill all of it
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    with contextlib.suppress(OSError):
        path.unlink()
    return killed


def wait_gone(pids: Sequence[int], timeout: float = 10.0) -> list[int]:
    """Pids from ``pids`` still alive (not zombies) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if procfs.is_alive(p)]
        if alive:
            time.sleep(0.1)
    return alive
