"""One Lean 4 REPL process: spawn, send a request, read its reply against a deadline, kill.

Why not ``backends/process.py`` (``ManagedProcess``, the pexpect helper the Coq backend uses)? It
reads stdout and stderr from one shared pipe, which suits a prompt-driven ``coqtop``; the REPL's
stdout is a JSON stream (objects separated by blank lines) and anything Lean, Lake or a panic prints
on stderr must not land inside it. Replies are also large (goal lists, traces) and there is no
prompt to ``expect``. So this module uses ``subprocess.Popen`` with one reader thread per pipe, and
keeps the same process policy as ``ManagedProcess``:

* its own session / process group (``start_new_session``), so ``kill()`` takes the whole group
  (``lake env`` -> ``repl`` and anything they spawn) with one ``killpg(SIGKILL)``, then reaps it;
* rlimits applied between fork and exec (``Sandbox.preexec``: address space, no core dumps, ...);
* stdout read by a thread into complete reply blocks; stderr always drained by another thread
  into a bounded tail (a pipe that is never read deadlocks the child once its buffer fills);
* every request has a deadline; while waiting, the resident memory of the whole process group is
  polled and the group is killed above ``rss_kill_mb`` (the REPL has neither a timeout nor a
  memory cap of its own);
* a reply that is not JSON, or bigger than ``max_reply_bytes``, is a desync: the process is killed.

Failures are exceptions carrying the stderr tail: ``ReplTimeout`` (the caller decides whether that
is a tactic timeout or a hung prover), ``ProverCrashed``, ``ProverDesync``, ``ProverStartError``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ...core import procfs
from ...core.errors import ProverCrashed, ProverDesync, ProverError, ProverStartError
from ..sandbox import Limits, Sandbox
from .protocol import ProtocolError, decode_block, encode_request

log = logging.getLogger(__name__)

BACKEND = "lean4"


class ReplTimeout(ProverError):
    """A request got no reply before its deadline. The process has already been killed."""


@dataclass(frozen=True)
class ProcessPolicy:
    """Resource policy of one REPL process (all sizes in MiB; 0 disables a limit)."""

    #: RLIMIT_AS. Lean mmaps every imported .olean (Mathlib: several GiB of address space before
    #: any proof work) and reserves heap and thread stacks generously, so this is a backstop far above
    #: the resident size; the working cap is ``rss_kill_mb``.
    address_space_mb: int = 65536
    #: the process group is killed when its resident memory exceeds this while a request runs
    rss_kill_mb: int = 16384
    #: how often the resident memory is polled while waiting for a reply (seconds)
    rss_poll_interval: float = 0.25
    #: a reply larger than this is treated as a desync
    max_reply_bytes: int = 64 * 1024 * 1024
    #: characters of stderr kept for error reports
    stderr_tail_chars: int = 8192


_EOF = object()


class ReplProcess:
    """A running REPL. Not thread-safe: one request at a time (the REPL is sequential anyway)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        policy: ProcessPolicy | None = None,
        sandbox: Sandbox | None = None,
        generation: int = 0,
    ) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.policy = policy or ProcessPolicy()
        self.generation = generation
        self.requests = 0
        self._sandbox = sandbox or Sandbox(
            limits=Limits(address_space_mb=self.policy.address_space_mb, file_size_mb=1024, open_files=0)
        )
        self._env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._replies: queue.Queue[Any] = queue.Queue()
        self._stderr_tail: collections.deque[str] = collections.deque()
        self._stderr_chars = 0
        self._stderr_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.pgid: int | None = None
        #: set by ``kill()``; a process killed before or while spawning never runs
        self._cancelled = False

    # -- lifecycle ----------------------------------------------------------------------------
    def spawn(self) -> None:
        if self._proc is not None:
            return
        if self._cancelled:
            raise ProverStartError("the Lean REPL was killed before it started", backend=BACKEND)
        env = self._env if self._env is not None else self._sandbox.env()
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - argv is the configured REPL command
                self._sandbox.wrap(self.argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
                preexec_fn=self._sandbox.preexec(),  # noqa: PLW1509 - rlimits must be set in the child
                close_fds=True,
            )
        except OSError as exc:
            raise ProverStartError(
                f"cannot start the Lean REPL {self.argv!r}: {exc}", backend=BACKEND
            ) from exc
        self.pgid = self._proc.pid  # session leader: pgid == pid
        assert self._proc.stdout is not None and self._proc.stderr is not None
        t_out = threading.Thread(
            target=self._read_stdout,
            args=(self._proc.stdout,),
            daemon=True,
            name=f"lean-repl-out-{self._proc.pid}",
        )
        t_err = threading.Thread(
            target=self._drain_stderr,
            args=(self._proc.stderr,),
            daemon=True,
            name=f"lean-repl-err-{self._proc.pid}",
        )
        self._threads = [t_out, t_err]
        for t in self._threads:
            t.start()
        if self._cancelled:  # kill() ran concurrently while Popen was starting the child
            self.kill()
            raise ProverStartError("the Lean REPL was killed while starting", backend=BACKEND)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """Kill the whole process group and reap the leader. Idempotent; never raises."""
        self._cancelled = True
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = self.pgid if self.pgid is not None else proc.pid  # session leader: pgid == pid
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            log.error("lean REPL pid %s did not die after SIGKILL", proc.pid)
        if pgid is not None:
            # the rest of the group (e.g. ``repl`` under ``lake env``) dies asynchronously
            deadline = time.monotonic() + 5
            while group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.01)
            if group_alive(pgid):  # pragma: no cover
                log.error("lean REPL process group %s still has live members after SIGKILL", pgid)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=2)

    close = kill

    # -- I/O ------------------------------------------------------------------------------------
    def stderr_tail(self) -> str:
        with self._stderr_lock:
            return "".join(self._stderr_tail)[-self.policy.stderr_tail_chars :]

    def request(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and return its reply object, or raise (having killed the process)."""
        if self._proc is None:
            raise ProverCrashed("the Lean REPL is not running", backend=BACKEND)
        t0 = time.monotonic()
        self.requests += 1
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(encode_request(req))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self._fail(ProverCrashed, f"the Lean REPL closed its input ({exc})", t0, exc)
        deadline = t0 + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(ReplTimeout, f"no reply within {timeout:.1f}s", t0)
            try:
                item = self._replies.get(timeout=min(remaining, self.policy.rss_poll_interval))
            except queue.Empty:
                self._check_memory(t0)
                continue
            if item is _EOF:
                code = self._exit_code()
                self._fail(ProverCrashed, f"the Lean REPL exited (code {code}) before answering", t0)
            if isinstance(item, Exception):
                self._fail(ProverDesync, str(item), t0, item)
            try:
                return decode_block(item)
            except ProtocolError as exc:
                self._fail(ProverDesync, str(exc), t0, exc)

    def rss_mb(self) -> float:
        """Resident memory of the whole process group, MiB (0 when unknown)."""
        if self.pgid is None:
            return 0.0
        return group_rss_mb(self.pgid)

    # -- internals ------------------------------------------------------------------------------
    def _fail(
        self, kind: type[ProverError], message: str, t0: float, cause: BaseException | None = None
    ) -> Any:
        if self._proc is not None and self._proc.poll() is not None and len(self._threads) == 2:
            # the process has exited: let the stderr thread read its last words before the tail is taken
            self._threads[1].join(timeout=2)
        tail = self.stderr_tail()
        self.kill()
        err = kind(message, backend=BACKEND, elapsed=time.monotonic() - t0, output_tail=tail)
        if cause is not None:
            raise err from cause
        raise err

    def _check_memory(self, t0: float) -> None:
        limit = self.policy.rss_kill_mb
        if limit and self.pgid is not None:
            rss = group_rss_mb(self.pgid)
            if rss > limit:
                self._fail(ProverCrashed, f"memory cap: resident {rss:.0f} MiB > {limit} MiB, killed", t0)

    def _exit_code(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        try:
            return proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def _read_stdout(self, stream: IO[bytes]) -> None:
        buf: list[bytes] = []
        size = 0
        limit = self.policy.max_reply_bytes
        try:
            for line in iter(stream.readline, b""):
                if line.strip() == b"":
                    if buf:
                        self._replies.put(b"".join(buf).decode("utf-8", errors="replace"))
                        buf, size = [], 0
                    continue
                buf.append(line)
                size += len(line)
                if size > limit:
                    self._replies.put(ProtocolError(f"reply larger than {limit} bytes"))
                    buf, size = [], 0
        except (OSError, ValueError):
            pass
        finally:
            if buf:
                # the REPL prints its last reply and exits on end of input; a final block without the
                # blank line is still a complete reply
                self._replies.put(b"".join(buf).decode("utf-8", errors="replace"))
            self._replies.put(_EOF)

    def _drain_stderr(self, stream: IO[bytes]) -> None:
        cap = self.policy.stderr_tail_chars
        try:
            for chunk in iter(
                lambda: stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096), b""
            ):
                text = chunk.decode("utf-8", errors="replace")
                with self._stderr_lock:
                    self._stderr_tail.append(text)
                    self._stderr_chars += len(text)
                    while self._stderr_chars > 2 * cap and len(self._stderr_tail) > 1:
                        self._stderr_chars -= len(self._stderr_tail.popleft())
        except (OSError, ValueError):
            pass


def group_rss_mb(pgid: int) -> float:
    """Sum of resident memory of every process in group ``pgid`` (Linux ``/proc``; 0 elsewhere)."""
    return procfs.group_rss_bytes(pgid) / (1024 * 1024)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of group ``pgid``, from ``/proc``.

    A killed grandchild stays a zombie until whoever inherits it reaps it (in a container PID 1 may
    never do so); a zombie holds no memory and runs nothing, so it does not count.
    """
    return procfs.group_members(pgid)


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process of group ``pgid`` still exists."""
    return bool(group_members(pgid))
