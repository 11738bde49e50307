"""The one reader of Linux ``/proc``: process state, parent, group, start time, memory, command line.

Every caller that needs to know about processes it does not hold a handle to (the leftover-prover
reaper, process-group liveness and memory, the tests' process watcher) reads them through here. On a
system without ``/proc`` every function answers "nothing there" (``None``, empty, 0).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: bytes per memory page (``statm`` counts pages)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` this package uses."""

    pid: int
    comm: str
    #: one letter: R running, S sleeping, Z zombie, X dead, ...
    state: str
    ppid: int
    pgrp: int
    #: start time in clock ticks since boot: with the pid, it names one process (pids are reused)
    start: str
    #: resident set size in pages
    rss_pages: int = 0

    @property
    def alive(self) -> bool:
        """Not a zombie (a zombie has exited; only its exit status is left for its parent)."""
        return self.state not in ("Z", "X")


def stat(pid: int) -> ProcStat | None:
    """``/proc/PID/stat`` parsed, or None when the process is gone (or there is no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            raw = fh.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: it ends at the last ")"
    head, sep, rest = raw.rpartition(")")
    fields = rest.split()
    if not sep or len(fields) < 20:
        return None
    comm = head[head.find("(") + 1:]
    return ProcStat(pid=pid, comm=comm, state=fields[0], ppid=int(fields[1]), pgrp=int(fields[2]),
                    start=fields[19], rss_pages=int(fields[21]) if len(fields) > 21 else 0)


def pids() -> list[int]:
    """Every process id in ``/proc`` now."""
    try:
        return [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []


def all_stats() -> list[ProcStat]:
    """``stat`` of every process that still exists while it is read."""
    return [s for s in map(stat, pids()) if s is not None]


def children(parent: int) -> dict[int, str]:
    """Direct children of ``parent``: pid -> start time."""
    return {s.pid: s.start for s in all_stats() if s.ppid == parent}


def task_children(pid: int) -> list[int] | None:
    """Direct children of ``pid`` from ``/proc/PID/task/TID/children`` (cheap: no scan of ``/proc``);
    ``[]`` when the process is gone, None where the kernel lacks that file (then use ``children``)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                out.extend(int(c) for c in fh.read().split())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            continue
    return out


def descendants(root: int, live_only: bool = True) -> set[int]:
    """Every process below ``root`` (children, their children, ...), without ``root``."""
    kids: dict[int, list[int]] = {}
    for s in all_stats():
        if s.alive or not live_only:
            kids.setdefault(s.ppid, []).append(s.pid)
    out: set[int] = set()
    todo = [root]
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo += kids.get(p, [])
    out.discard(root)
    return out


def group_members(pgid: int, live_only: bool = True) -> list[int]:
    """Processes whose process group is ``pgid`` (zombies left out unless ``live_only`` is False)."""
    return [s.pid for s in all_stats() if s.pgrp == pgid and (s.alive or not live_only)]


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every live process of group ``pgid`` together."""
    return sum(s.rss_pages for s in all_stats() if s.pgrp == pgid and s.alive) * PAGE_SIZE


def is_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    s = stat(pid)
    return s is not None and s.alive


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (``/proc/PID/statm``), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def peak_rss_bytes(pid: int) -> int:
    """Peak resident memory of one process (``VmHWM`` of ``/proc/PID/status``), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def cmdline(pid: int) -> str:
    """The command line, arguments joined by spaces ("" when gone or a kernel thread)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
