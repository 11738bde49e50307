"""cgroups for a prover's whole process tree: a process limit, a memory limit and a CPU bound that
hold for every descendant, and a cheap count of the processes in the tree.

rlimits are per process and Coq's ``Timeout`` is per process: a tactic that forks (CoqHammer's
``best``, ``par:``) escapes both. A cgroup does not: every process forked inside it stays in it
(fork cannot leave a cgroup; only a write to ``cgroup.procs`` by a privileged process can move it).

* ``Cgroups.detect(limits)`` probes this machine once, explicitly (never at import time): cgroup v1
  when the ``pids``, ``memory`` and ``cpu`` controllers are mounted and a group can be created under
  our own group in each; else cgroup v2 (unified hierarchy) when those three controllers can be
  enabled below our group; else ``None`` with the reason (``Cgroups.unavailable_reason``).
  ``describe()`` is what ``config.json["sandbox"]["process_tree"]`` records.
* Every group lives under a **per-run parent** ``llemma-prover-<pid>-<token>`` created under the
  group this Python process is in (so the machine's own limits on us still apply to the prover).
* ``Cgroups.create()`` makes one group per prover process (``TreeGroup``) with
  ``pids.max``/``pids.max``, ``memory.limit_in_bytes``/``memory.max`` and
  ``cpu.cfs_quota_us``/``cpu.max``; ``TreeGroup.join()`` runs in the child between fork and exec
  (``ManagedProcess`` calls it from its ``preexec``), so the prover and everything it ever forks are
  in the group before the prover's first instruction.
* ``TreeGroup.count()`` reads ``cgroup.procs`` (one small file: processes, not threads);
  ``kill()`` SIGKILLs every member until none is left; ``remove()`` rmdirs the group once its tasks
  are gone, and the per-run parent once it is empty: no empty group is left behind; ``detect``
  also removes the empty groups of runs that died without cleaning up (``sweep_stale``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CONTROLLERS", "Cgroups", "TreeGroup", "TreeLimits", "own_group", "sweep_stale"]

#: the controllers a process tree needs
CONTROLLERS: tuple[str, ...] = ("pids", "memory", "cpu")
#: where cgroup file systems are mounted on Linux
CGROUP_ROOT = "/sys/fs/cgroup"
#: the CFS period written with a CPU quota (microseconds)
CPU_PERIOD_US = 100_000
#: seconds ``TreeGroup.kill`` keeps killing members before it gives up
KILL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TreeLimits:
    """Limits of one process tree (0 = not limited)."""

    #: tasks (v1/v2 ``pids.max``: threads count too) in the tree at once; a bound on fork storms,
    #: high enough for a JVM's threads (the Isabelle server); Coq's check is the per-candidate one
    max_tasks: int = 512
    #: resident memory of the whole tree, page cache included (MiB)
    memory_mb: int = 4096
    #: CPUs the whole tree may use at once (CFS quota / period)
    cpus: float = 1.0


def own_group(controller: str, proc_cgroup: str = "/proc/self/cgroup") -> str | None:
    """The path (``/a/b``) of the group this process is in for a v1 ``controller``, or for the v2
    unified hierarchy when ``controller`` is ``""``; ``None`` when there is none."""
    try:
        with open(proc_cgroup, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if controller == "" and ctrls == "" or controller and controller in ctrls.split(","):
            return path
    return None


@dataclass(frozen=True)
class Cgroups:
    """Where process-tree groups are made, and their limits. Build with ``Cgroups.detect``."""

    #: "v1" or "v2"
    version: str
    #: the per-run parent directory, per controller (v1); one entry ``"": dir`` for v2
    parents: tuple[tuple[str, str], ...]
    limits: TreeLimits

    # -- detection -------------------------------------------------------------------------------
    @classmethod
    def detect(cls, limits: TreeLimits | None = None, *, root: str = CGROUP_ROOT) -> Cgroups | str:
        """The cgroups this machine lets us use, or a one-line reason why none (a ``str``)."""
        limits = limits or TreeLimits()
        token = f"llemma-prover-{os.getpid()}-{secrets.token_hex(3)}"
        v1 = cls._detect_v1(limits, root, token)
        if isinstance(v1, Cgroups):
            return v1
        v2 = cls._detect_v2(limits, root, token)
        if isinstance(v2, Cgroups):
            return v2
        return f"no usable cgroups: v1: {v1}; v2: {v2}"

    @classmethod
    def _detect_v1(cls, limits: TreeLimits, root: str, token: str) -> Cgroups | str:
        parents = []
        for ctrl in CONTROLLERS:
            mount = os.path.join(root, ctrl)
            if not os.path.isfile(os.path.join(mount, "cgroup.procs")) or os.path.isfile(
                os.path.join(mount, "cgroup.controllers")
            ):
                return f"controller {ctrl!r} is not mounted as cgroup v1 at {mount}"
            own = own_group(ctrl)
            if own is None:
                return f"this process is in no {ctrl!r} group"
            base = os.path.join(mount, own.lstrip("/"))
            if not os.path.isdir(base):  # our group is outside what this mount shows
                return f"our {ctrl!r} group {own} is not visible under {mount}"
            parents.append((ctrl, os.path.join(base, token)))
        found = cls(version="v1", parents=tuple(parents), limits=limits)
        for _, parent in parents:
            sweep_stale(os.path.dirname(parent))
        return found._probe()

    @classmethod
    def _detect_v2(cls, limits: TreeLimits, root: str, token: str) -> Cgroups | str:
        mount = root if os.path.isfile(os.path.join(root, "cgroup.controllers")) else os.path.join(
            root, "unified"
        )
        if not os.path.isfile(os.path.join(mount, "cgroup.controllers")):
            return f"no cgroup2 mount at {root} or {root}/unified"
        own = own_group("")
        if own is None:
            return "this process is in no cgroup2 group"
        base = os.path.join(mount, own.lstrip("/"))
        try:
            with open(os.path.join(base, "cgroup.controllers"), encoding="ascii") as fh:
                available = fh.read().split()
        except OSError as exc:
            return f"cannot read {base}/cgroup.controllers: {exc}"
        missing = [c for c in CONTROLLERS if c not in available]
        if missing:
            return f"controllers {missing} are not available in {base}"
        try:  # our group must hand the controllers down (refused while it holds processes, but root)
            with open(os.path.join(base, "cgroup.subtree_control"), encoding="ascii") as fh:
                enabled = fh.read().split()
            if any(c not in enabled for c in CONTROLLERS):
                _write(os.path.join(base, "cgroup.subtree_control"), " ".join(f"+{c}" for c in CONTROLLERS))
        except OSError as exc:
            return f"cannot enable {list(CONTROLLERS)} below {base} (delegate a cgroup to this user): {exc}"
        found = cls(version="v2", parents=(("", os.path.join(base, token)),), limits=limits)
        sweep_stale(base)
        return found._probe()

    def _probe(self) -> Cgroups | str:
        """Create a group with the limits, then remove it: both must work."""
        try:
            group = self.create()
        except OSError as exc:
            return f"cannot create a {self.version} group: {exc}"
        group.remove()
        leftover = [d for _, d in self.parents if os.path.isdir(d)]
        if leftover:
            return f"cannot remove {leftover}"
        return self

    # -- groups ----------------------------------------------------------------------------------
    def create(self) -> TreeGroup:
        """A new group for one process tree, with the limits written (``OSError`` when refused)."""
        name = f"p{secrets.token_hex(4)}"
        made: list[str] = []
        try:
            for ctrl, parent in self.parents:
                path = _mkdir_under(parent, name, v2=self.version == "v2")
                made.append(path)
                _write_limits(self.version, ctrl, path, self.limits)
        except OSError:
            TreeGroup(self.version, tuple(made), tuple(p for _, p in self.parents)).remove()
            raise
        return TreeGroup(self.version, tuple(made), tuple(p for _, p in self.parents))

    def describe(self) -> dict[str, object]:
        return {
            "mechanism": f"cgroup {self.version}",
            "controllers": list(CONTROLLERS),
            "max_tasks": self.limits.max_tasks,
            "memory_mb": self.limits.memory_mb,
            "cpus": self.limits.cpus,
        }


def sweep_stale(base: str) -> list[str]:
    """Remove the *empty* groups that a run which no longer exists left under ``base`` (a run killed
    with SIGKILL never removed its per-run parent): ``llemma-prover-<pid>-*`` whose ``pid`` is not a
    live process. rmdir only ever removes an empty group; a group with tasks stays. Returns what was
    removed."""
    removed: list[str] = []
    try:
        entries = os.listdir(base)
    except OSError:
        return removed
    for name in entries:
        parts = name.split("-")
        if not name.startswith("llemma-prover-") or len(parts) != 4 or not parts[2].isdigit():
            continue
        if os.path.exists(f"/proc/{parts[2]}"):
            continue
        parent = os.path.join(base, name)
        try:
            children = [e for e in os.listdir(parent) if os.path.isdir(os.path.join(parent, e))]
        except OSError:
            continue
        for child in children:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(parent, child))
                removed.append(os.path.join(parent, child))
        with contextlib.suppress(OSError):
            os.rmdir(parent)
            removed.append(parent)
    return removed


def _mkdir_under(parent: str, name: str, *, v2: bool) -> str:
    """``parent/name``, creating ``parent`` too (another thread may remove an empty parent meanwhile)."""
    path = os.path.join(parent, name)
    for _ in range(5):
        try:
            os.mkdir(parent)
            if v2:  # let the parent's children use the three controllers
                _write(os.path.join(parent, "cgroup.subtree_control"), " ".join(f"+{c}" for c in CONTROLLERS))
        except FileExistsError:
            pass
        try:
            os.mkdir(path)
            return path
        except FileNotFoundError:  # the parent was removed between the two mkdirs: again
            continue
    raise OSError(errno.ENOENT, f"cannot create {path}")


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(value)


def _write_limits(version: str, ctrl: str, path: str, lim: TreeLimits) -> None:
    quota = int(lim.cpus * CPU_PERIOD_US) if lim.cpus > 0 else 0
    if version == "v1":
        if ctrl == "pids" and lim.max_tasks:
            _write(os.path.join(path, "pids.max"), str(lim.max_tasks))
        elif ctrl == "memory" and lim.memory_mb:
            nbytes = str(lim.memory_mb * 1024 * 1024)
            _write(os.path.join(path, "memory.limit_in_bytes"), nbytes)
            memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):  # swap counts too where the kernel accounts it
                _write(memsw, nbytes)
        elif ctrl == "cpu" and quota:
            _write(os.path.join(path, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
            _write(os.path.join(path, "cpu.cfs_quota_us"), str(quota))
        return
    if lim.max_tasks:
        _write(os.path.join(path, "pids.max"), str(lim.max_tasks))
    if lim.memory_mb:
        _write(os.path.join(path, "memory.max"), str(lim.memory_mb * 1024 * 1024))
        with contextlib.suppress(OSError):
            _write(os.path.join(path, "memory.swap.max"), "0")
    if quota:
        _write(os.path.join(path, "cpu.max"), f"{quota} {CPU_PERIOD_US}")


@dataclass(frozen=True)
class TreeGroup:
    """One process tree's group (one directory per v1 controller, one for v2)."""

    version: str
    dirs: tuple[str, ...]
    parents: tuple[str, ...]

    @property
    def procs_file(self) -> str:
        """``cgroup.procs`` of the pids group (v1) or the group (v2)."""
        return os.path.join(self.dirs[0], "cgroup.procs")

    def join(self) -> None:
        """Move the calling process into the group (every controller). Runs between fork and exec:
        no allocation-heavy work, no locks."""
        pid = str(os.getpid())
        for d in self.dirs:
            fd = os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY)
            try:
                os.write(fd, pid.encode("ascii"))
            finally:
                os.close(fd)

    def members(self) -> list[int]:
        """The processes in the group now (``cgroup.procs``; empty once the group is gone)."""
        try:
            with open(self.procs_file, encoding="ascii") as fh:
                return [int(x) for x in fh.read().split()]
        except (OSError, ValueError):
            return []

    def count(self) -> int:
        """How many processes are in the group (one read of ``cgroup.procs``)."""
        try:
            with open(self.procs_file, "rb") as fh:
                return fh.read().count(b"\n")
        except OSError:
            return 0

    def memory_peak_mb(self) -> float:
        """The most memory the tree has held at once (MiB; 0.0 where the kernel does not say)."""
        for d in self.dirs:
            for name in ("memory.max_usage_in_bytes", "memory.peak"):
                try:
                    with open(os.path.join(d, name), encoding="ascii") as fh:
                        return int(fh.read().strip()) / (1024 * 1024)
                except (OSError, ValueError):
                    continue
        return 0.0

    def oom_kills(self) -> int:
        """Processes of the tree the kernel killed for going over the memory limit (v1
        ``memory.oom_control``, v2 ``memory.events``: their ``oom_kill`` line; 0 where absent)."""
        for d in self.dirs:
            for name in ("memory.events", "memory.oom_control"):
                try:
                    with open(os.path.join(d, name), encoding="ascii") as fh:
                        for line in fh:
                            key, _, val = line.partition(" ")
                            if key == "oom_kill":
                                return int(val)
                except (OSError, ValueError):
                    continue
        return 0

    def kill(self, except_pids: Sequence[int] = (), deadline: float | None = None) -> bool:
        """SIGKILL every member (but ``except_pids``) until none is left; ``True`` when none is."""
        end = time.monotonic() + KILL_TIMEOUT_S if deadline is None else deadline
        while True:
            left = [p for p in self.members() if p not in except_pids]
            if not left:
                return True
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() >= end:
                return False
            time.sleep(0.002)

    def remove(self) -> bool:
        """Kill what is left, rmdir the group, then the per-run parent when it is empty (another
        group may still use it: then it stays, and its last group removes it)."""
        self.kill()
        ok = True
        for d in self.dirs:
            for _ in range(500):  # a killed task leaves the group a moment after it is reaped
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        ok = False
                        break
                    self.kill(deadline=time.monotonic())
                    time.sleep(0.002)
            else:
                ok = False
        for parent in self.parents:
            with contextlib.suppress(OSError):  # not empty (ENOTEMPTY/EBUSY) or already gone
                os.rmdir(parent)
        return ok
