"""One helper for every prover process: spawn, talk against deadlines, measure, kill.

``ManagedProcess`` is what every backend (Coq now; a Lean REPL or Isabelle server later) uses to run a
prover executable:

* the child runs in its **own session and process group** (``start_new_session``), so ``kill()`` can
  SIGKILL the whole group -- the prover and anything it forked -- and then reaps it;
* **resource limits** applied between fork and exec: address space (``memory_limit_mb``, RLIMIT_AS)
  and no core dumps; or, when a ``Sandbox`` is given, the sandbox's own limits, environment and wrapper;
* optional **scrubbed environment** and **private temporary working directory** (removed on close);
* stdout and stderr share one pipe, read by ``pexpect`` with ``select`` (no polling, no threads) --
  or, with ``stderr_file=True``, stderr goes to ``stderr.log`` in the private working directory
  (size-capped by the sandbox's file-size limit; ``stderr_tail()`` reads its end), so that a protocol
  spoken on stdout cannot be interleaved with free text;
  every read is made **against an absolute deadline** (``time.monotonic()``) and raises
  ``ProcessTimeout`` when it passes or ``ProcessExited`` on EOF -- nobody sleeps to wait for output;
* **output is capped**: one ``expect`` (one answer) or one ``wait`` (a whole run) reads at most
  ``max_output_chars`` characters; a process that prints more is killed at once and
  ``ProcessOutputLimit`` is raised (a proof printing 300 MB fails in well under a second instead of
  costing its whole deadline, and never fills our memory);
* a bounded **tail** of everything read is always kept for error messages;
* the **whole process tree** in its own cgroup (``backends/cgroup.py``: process limit, memory limit
  of the tree, CPU bound), joined between fork and exec so that nothing the prover forks escapes;
  ``tree_processes()``/``extra_processes()`` count the tree cheaply (one read of ``cgroup.procs``;
  a walk of ``/proc/PID/task/*/children`` only where no cgroup is usable); ``kill()`` kills every
  member of the group (also one that left the process group with ``setsid``) and removes the group;
* ``alive``, ``rss_mb()`` (resident memory of the whole process group, from ``/proc``) and a
  ``requests`` counter (one per ``send``) for recycling policies.

The errors here are backend-neutral; a backend translates them into its ``ProverError`` subclasses
(``ProverCrashed``/``ProverHung``/...) with ``raise ... from``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from re import Match, Pattern
from typing import IO, TYPE_CHECKING

import pexpect
import pexpect.fdpexpect

from ..core import procfs

if TYPE_CHECKING:
    from .cgroup import Cgroups, TreeGroup
    from .sandbox import Sandbox

__all__ = [
    "ManagedProcess",
    "ProcessError",
    "ProcessExited",
    "ProcessOutputLimit",
    "ProcessTimeout",
    "group_alive",
]

#: environment variables kept by ``scrub_env=True`` when no sandbox is given
KEEP_ENV: tuple[str, ...] = ("PATH", "LANG", "LC_ALL", "COQLIB", "COQPATH", "OCAMLPATH", "LEAN_PATH")

#: file in the private working directory that receives stderr when ``stderr_file=True``
STDERR_FILE = "stderr.log"
#: characters one answer (``expect``) or one whole run (``wait``) may print before the process is killed
MAX_OUTPUT_CHARS = 16 * 1024 * 1024
#: characters re-searched before newly read output (a match longer than this may be found late)
SEARCH_OVERLAP_CHARS = 65536
#: characters read from the pipe at a time
READ_CHUNK_CHARS = 65536

#: seconds ``kill()`` lets a sandbox wrapper reap its killed child and exit before killing it too
WRAPPER_EXIT_S = 2.0
#: seconds ``kill()`` waits for the kernel to reap a SIGKILLed child before giving up on it
REAP_TIMEOUT_S = 10.0


class ProcessError(Exception):
    """A managed process could not be talked to. ``tail`` is its latest output."""

    def __init__(self, message: str, *, tail: str = "", elapsed: float = 0.0) -> None:
        super().__init__(message)
        self.tail = tail
        self.elapsed = elapsed


class ProcessTimeout(ProcessError):
    """The expected output did not arrive before the deadline."""


class ProcessExited(ProcessError):
    """The process closed its output (exited, crashed or was killed)."""


class ProcessOutputLimit(ProcessExited):
    """The process printed more than ``max_output_chars`` for one answer and was killed."""


def group_alive(pgid: int) -> bool:
    """Whether any process of process group ``pgid`` still exists (zombies count as gone)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds for zombies; look for a live member in /proc.
    return bool(procfs.group_members(pgid))


class ManagedProcess:
    """A child process in its own process group, read against deadlines.

    Construction is cheap; ``start()`` spawns. Use ``close()`` (or the context manager) to kill the
    group, reap it and remove the private working directory.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        memory_limit_mb: int = 0,
        scrub_env: bool = True,
        private_tmpdir: bool = True,
        cwd: str | None = None,
        env_extra: Mapping[str, str] | None = None,
        sandbox: Sandbox | None = None,
        tail_chars: int = 8192,
        encoding: str = "utf-8",
        stderr_file: bool = False,
        read_only: Sequence[str] = (),
        max_output_chars: int = MAX_OUTPUT_CHARS,
        cgroups: Cgroups | None = None,
    ) -> None:
        self.argv = list(argv)
        self.memory_limit_mb = memory_limit_mb
        self.scrub_env = scrub_env
        self.private_tmpdir = private_tmpdir
        self._cwd = cwd
        self._env_extra = dict(env_extra or {})
        self._sandbox = sandbox
        self._tail_chars = tail_chars
        self._encoding = encoding
        self.stderr_file = stderr_file
        #: extra paths visible read-only inside a bwrap sandbox (the working directory is writable)
        self._read_only = tuple(read_only)
        self.max_output_chars = max_output_chars
        #: where the process tree's cgroup is made (default: the sandbox's; ``None``: no cgroup)
        self.cgroups = cgroups if cgroups is not None else (sandbox.cgroups if sandbox is not None else None)
        #: the tree's cgroup while the process runs
        self.tree: TreeGroup | None = None
        #: the tree's processes when first found healthy (``tree_change``)
        self._baseline: frozenset[int] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._spawn: pexpect.fdpexpect.fdspawn | None = None
        self._tail = ""
        self._tmpdir: str | None = None
        self.requests = 0
        self.started_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ManagedProcess:
        """Spawn the child (idempotent). Raises ``ProcessError`` when it cannot be executed."""
        if self._proc is not None:
            return self
        if self.private_tmpdir and self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="llemma-prover-")
        cwd = self._cwd or self._tmpdir
        argv = (
            self._sandbox.wrap(self.argv, workdir=cwd, read_only=self._read_only)
            if self._sandbox is not None
            else self.argv
        )
        stderr: int | IO[bytes] = subprocess.STDOUT
        if self.stderr_file:
            workdir = self.workdir
            if workdir is None:
                raise ProcessError("stderr_file needs a working directory")
            stderr = open(os.path.join(workdir, STDERR_FILE), "ab")  # noqa: SIM115 - closed below
        if self.cgroups is not None and self.tree is None:
            try:
                self.tree = self.cgroups.create()
            except OSError as exc:
                if not isinstance(stderr, int):
                    stderr.close()
                raise ProcessError(f"cannot create the process tree's cgroup: {exc}") from None
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=cwd,
                env=self._env(),
                preexec_fn=self._preexec(),
                start_new_session=True,
                close_fds=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            if self.tree is not None:
                self.tree.remove()
                self.tree = None
            raise ProcessError(f"cannot start {argv[0]!r}: {exc}") from exc
        finally:
            if not isinstance(stderr, int):
                stderr.close()  # the child has its own copy
        assert self._proc.stdout is not None
        self._spawn = pexpect.fdpexpect.fdspawn(
            self._proc.stdout.fileno(), encoding=self._encoding, codec_errors="replace", maxread=65536
        )
        self.started_at = time.monotonic()
        return self

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _env(self) -> dict[str, str] | None:
        if self._sandbox is not None:
            extra = {"LANG": "C.UTF-8"}
            if self._tmpdir is not None:
                extra.update(HOME=self._tmpdir, TMPDIR=self._tmpdir)
            return self._sandbox.env(extra={**extra, **self._env_extra})
        if not self.scrub_env:
            return {**os.environ, **self._env_extra} if self._env_extra else None
        env = {k: v for k, v in os.environ.items() if k in KEEP_ENV}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.setdefault("LANG", "C.UTF-8")
        if self._tmpdir is not None:
            env["HOME"] = self._tmpdir
            env["TMPDIR"] = self._tmpdir
        env.update(self._env_extra)
        return env

    def _preexec(self) -> Callable[[], None]:
        limits = self._rlimits()
        tree = self.tree

        def apply() -> None:  # runs in the child between fork and exec
            if tree is not None:  # first: every process the prover ever forks starts in the group
                tree.join()
            limits()

        return apply

    def _rlimits(self) -> Callable[[], None]:
        if self._sandbox is not None:
            return self._sandbox.preexec()
        limit = self.memory_limit_mb

        def apply() -> None:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if limit > 0:
                nbytes = limit * 1024 * 1024
                resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))

        return apply

    # -- facts -------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ProcessError("process not started")
        return self._proc.pid

    @property
    def pgid(self) -> int:
        # start_new_session: the child is the leader of its own session and group
        return self.pid

    @property
    def workdir(self) -> str | None:
        """The private working directory (``None`` when ``private_tmpdir=False``)."""
        if self.private_tmpdir and self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="llemma-prover-")
        return self._cwd or self._tmpdir

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def tail(self) -> str:
        """The latest output read (at most ``tail_chars`` characters)."""
        return self._tail

    def stderr_tail(self, max_bytes: int = 4096) -> str:
        """The end of ``stderr.log`` (``stderr_file=True``); empty when there is none."""
        workdir = self.workdir if self.stderr_file else None
        if workdir is None:
            return ""
        try:
            with open(os.path.join(workdir, STDERR_FILE), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - max_bytes))
                return fh.read().decode(self._encoding, errors="replace")
        except OSError:
            return ""

    def rss_mb(self) -> float:
        """Resident memory of the whole process group in MiB (0.0 when gone)."""
        if self._proc is None:
            return 0.0
        # Fast path: the leader alone (most provers do not fork); under a sandbox wrapper, the
        # leader's descendants (from /proc/PID/task/TID/children; a scan of /proc only without it)
        pids = [self.pid] if self._sandbox is None else _descendants(self.pid, self.pgid)
        return sum(procfs.rss_bytes(pid) for pid in pids) / (1024 * 1024)

    @property
    def expected_processes(self) -> int:
        """Processes a healthy tree holds: the prover, plus the sandbox wrapper's own (bwrap: 2)."""
        return 1 + (self._sandbox.wrapper_processes if self._sandbox is not None else 0)

    def tree_processes(self) -> int:
        """Processes in the tree now: the cgroup's ``cgroup.procs`` (one read); without a cgroup the
        leader and its descendants (``/proc/PID/task/TID/children``). 0 before ``start``."""
        if self._proc is None:
            return 0
        if self.tree is not None:
            return self.tree.count()
        return sum(1 for p in _descendants(self.pid, self.pgid) if (st := procfs.stat(p)) and st.alive)

    def tree_members(self) -> frozenset[int]:
        """The processes of the tree now (cgroup members; without one, the leader's descendants)."""
        if self._proc is None:
            return frozenset()
        if self.tree is not None:
            return frozenset(self.tree.members())
        return frozenset(p for p in _descendants(self.pid, self.pgid) if (st := procfs.stat(p)) and st.alive)

    def tree_change(self) -> str | None:
        """``None`` while the tree holds exactly the processes it held when first found healthy (the
        prover and its wrapper's); otherwise what changed (a process forked, or the prover gone).

        The first call that finds ``expected_processes`` processes records them; call it once the
        prover has answered (then every process of a healthy tree exists)."""
        members = self.tree_members()
        if self._baseline is None:
            if len(members) == self.expected_processes:
                self._baseline = members
                return None
            return f"{len(members)} processes in the tree, {self.expected_processes} expected"
        if members == self._baseline:
            return None
        new, gone = len(members - self._baseline), len(self._baseline - members)
        return f"{new} process(es) beyond the prover's own, {gone} of them gone"

    def extra_processes(self) -> int:
        """Processes in the tree beyond the prover and its wrapper (forked by what the prover ran)."""
        return max(0, self.tree_processes() - self.expected_processes)

    def memory_peak_mb(self) -> float:
        """The most memory the whole tree held at once (cgroup; 0.0 without one)."""
        return self.tree.memory_peak_mb() if self.tree is not None else 0.0

    # -- talking -----------------------------------------------------------------------------
    def send(self, text: str) -> None:
        """Write ``text`` to the child's stdin and count one request."""
        if self._proc is None or self._proc.stdin is None:
            raise ProcessError("process not started")
        try:
            self._proc.stdin.write(text.encode(self._encoding))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise ProcessExited(f"cannot write to process: {exc}", tail=self._tail) from exc
        self.requests += 1

    def expect(self, pattern: Pattern[str], deadline: float) -> tuple[str, Match[str]]:
        """Read until ``pattern`` matches or ``deadline`` (``time.monotonic()``) passes.

        Returns (text before the match, the match). Raises ``ProcessTimeout`` / ``ProcessExited`` /
        ``ProcessOutputLimit`` (more than ``max_output_chars`` without a match: the process is killed).
        """
        if self._spawn is None:
            raise ProcessError("process not started")
        t0 = time.monotonic()
        if deadline - t0 <= 0:
            raise ProcessTimeout("deadline already passed", tail=self._tail)
        buf = _as_str(self._spawn.buffer)
        searched = 0
        while True:
            m = pattern.search(buf, max(0, searched - SEARCH_OVERLAP_CHARS))
            if m is not None:
                self._spawn.buffer = buf[m.end() :]
                before = buf[: m.start()]
                self._remember(before + m.group(0))
                return before, m
            searched = len(buf)
            if len(buf) > self.max_output_chars:
                self._remember(buf[-self._tail_chars :])
                self.kill()
                raise ProcessOutputLimit(
                    f"more than {self.max_output_chars} characters of output without an answer; killed",
                    tail=self._tail,
                    elapsed=time.monotonic() - t0,
                )
            buf += self._read_some(buf, deadline, t0)

    def _read_some(self, buf: str, deadline: float, t0: float) -> str:
        """The next chunk of output (waiting until ``deadline``); ``buf`` is kept for the error tail."""
        assert self._spawn is not None
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise pexpect.TIMEOUT("deadline passed")
            return _as_str(self._spawn.read_nonblocking(READ_CHUNK_CHARS, timeout=remaining))
        except pexpect.TIMEOUT as exc:
            self._spawn.buffer = buf
            self._remember(buf[-self._tail_chars :])
            raise ProcessTimeout(
                f"no answer within {deadline - t0:.1f}s", tail=self._tail, elapsed=time.monotonic() - t0
            ) from exc
        except pexpect.EOF as exc:
            self._spawn.buffer = ""
            self._remember(buf[-self._tail_chars :])
            raise ProcessExited(
                f"process exited (status {self._wait_status()})",
                tail=self._tail,
                elapsed=time.monotonic() - t0,
            ) from exc

    def read_chunk(self, deadline: float, max_chars: int = 65536) -> str:
        """Return the output available now, waiting until ``deadline`` for at least one character.

        At most ``max_chars`` characters are returned (a protocol client reads in bounded chunks and
        parses them itself). Raises ``ProcessTimeout`` / ``ProcessExited`` like ``expect``.
        """
        if self._spawn is None:
            raise ProcessError("process not started")
        buffered = _as_str(self._spawn.buffer)
        if buffered:  # left over by an earlier ``expect``
            self._spawn.buffer = buffered[max_chars:]
            self._remember(buffered[:max_chars])
            return buffered[:max_chars]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProcessTimeout("deadline already passed", tail=self._tail)
        try:
            data = self._spawn.read_nonblocking(max(1, max_chars), timeout=remaining)
        except pexpect.TIMEOUT as exc:
            raise ProcessTimeout(f"no answer within {remaining:.1f}s", tail=self._tail) from exc
        except pexpect.EOF as exc:
            raise ProcessExited(f"process exited (status {self._wait_status()})", tail=self._tail) from exc
        text = _as_str(data)
        self._remember(text)
        return text

    def pending_output(self) -> str:
        """Output already read past the last match (non-empty means the peer said more than expected)."""
        if self._spawn is None:
            return ""
        return _as_str(self._spawn.buffer)

    def wait(self, deadline: float) -> tuple[int, str]:
        """Read everything until the child exits; returns (exit status, output).

        Raises ``ProcessTimeout`` on the deadline and ``ProcessOutputLimit`` (the process is killed at
        once) when it prints more than ``max_output_chars``.
        """
        if self._spawn is None or self._proc is None:
            raise ProcessError("process not started")
        t0 = time.monotonic()
        if deadline - t0 <= 0:
            raise ProcessTimeout("deadline already passed", tail=self._tail)
        parts = [_as_str(self._spawn.buffer)]
        self._spawn.buffer = ""
        size = len(parts[0])
        while True:
            if size > self.max_output_chars:
                self._remember("".join(parts)[-self._tail_chars :])
                self.kill()
                raise ProcessOutputLimit(
                    f"more than {self.max_output_chars} characters of output; killed",
                    tail=self._tail,
                    elapsed=time.monotonic() - t0,
                )
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise pexpect.TIMEOUT("deadline passed")
                chunk = _as_str(self._spawn.read_nonblocking(READ_CHUNK_CHARS, timeout=remaining))
            except pexpect.EOF:
                break
            except pexpect.TIMEOUT as exc:
                self._remember("".join(parts)[-self._tail_chars :])
                raise ProcessTimeout(f"did not exit within {deadline - t0:.1f}s", tail=self._tail) from exc
            parts.append(chunk)
            size += len(chunk)
        out = "".join(parts)
        self._remember(out)
        try:
            status = self._proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as exc:
            raise ProcessTimeout("closed its output but did not exit", tail=self._tail) from exc
        return status, out

    def _remember(self, text: str) -> None:
        if text:
            self._tail = (self._tail + text)[-self._tail_chars :]

    def _wait_status(self) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return None

    # -- ending ------------------------------------------------------------------------------
    def kill(self, reaped: bool = True) -> None:
        """SIGKILL the whole process group and reap the child. Idempotent; never raises.
        ``reaped=False``: return once no member of the group runs any more, without waiting for init
        to reap the zombies a wrapper's killed children leave (up to seconds on some systems)."""
        proc = self._proc
        if proc is None:
            return
        tree = self.tree
        if self._sandbox is not None and proc.poll() is None:
            # Under a sandbox the leader is a wrapper (bwrap) whose child runs the prover. Kill the
            # members below the leader first and let the wrapper reap them and exit: killing the
            # wrapper first would orphan its child, which becomes a zombie of PID 1 (never ours to reap).
            # With a cgroup the members are the group's (also those that left the process group).
            if tree is not None:
                tree.kill(except_pids=(proc.pid,), deadline=time.monotonic() + WRAPPER_EXIT_S)
            else:
                for pid in procfs.group_members(proc.pid, live_only=False):
                    if pid != proc.pid:
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=WRAPPER_EXIT_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=REAP_TIMEOUT_S)
        _await_group_gone(proc.pid, time.monotonic() + REAP_TIMEOUT_S, reaped)
        if tree is not None:
            tree.remove()  # kills what is left in the group (whatever its process group), then rmdir
            self.tree = None
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._spawn = None

    def close(self, reaped: bool = True) -> None:
        """Kill the group, reap it and remove the private working directory. Idempotent.
        ``reaped``: as for ``kill``."""
        self.kill(reaped)
        if self._tmpdir is not None and self._cwd is None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _await_group_gone(pgid: int, deadline: float, reaped: bool = True) -> None:
    """Wait until no process of group ``pgid`` exists any more (members that a wrapper such as
    ``bwrap`` forked are SIGKILLed with the group but reaped by init, a moment after the leader);
    ``reaped=False``: until none of them runs (zombies left for init)."""
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        if not reaped and not procfs.group_members(pgid, live_only=True):
            return
        time.sleep(0.005)


def _descendants(pid: int, pgid: int) -> list[int]:
    """``pid`` and its descendants, read from ``/proc/*/task/*/children`` (cheap, unlike a scan of
    ``/proc``); falls back to the members of group ``pgid`` where the kernel lacks that file."""
    out, todo = [], [pid]
    while todo:
        cur = todo.pop()
        out.append(cur)
        kids = procfs.task_children(cur)
        if kids is None:
            return procfs.group_members(pgid, live_only=False)
        todo.extend(kids)
    return out


def _as_str(value: object) -> str:
    return value if isinstance(value, str) else ""
