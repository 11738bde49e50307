"""One Lean 4 REPL process: spawn, send a request, read its reply against a deadline, kill.

The process is a ``backends/process.py`` ``ManagedProcess`` -- the helper under every prover process
(Coq, this REPL, the Isabelle server, the doctor's probes): its own session and process group, killed
as a whole and reaped; rlimits and the backend's sandbox between fork and exec; bounded output; reads
against absolute deadlines. What is particular to the REPL:

* **stderr apart from the JSON stream**: the command runs as ``sh -c 'exec "$@" 2>>FILE'`` (the shell
  replaces itself with the REPL: no extra process), so whatever Lean, Lake or a panic prints on stderr
  goes to a private file (size-capped by the sandbox's file-size limit) and can never land inside a
  reply; ``stderr_tail()`` reads its end for errors. (``ManagedProcess``'s own ``stderr_file`` needs a
  private working directory, which under bwrap hides the host's ``/tmp``; the REPL's pickles and the
  tests' replay logs live there, so the REPL keeps the layout it had: read-only root, ``/tmp`` writable);
* **replies are blocks**: the REPL prints each reply as JSON followed by a blank line
  (``printFlush "\\n"`` in ``REPL/Main.lean``); one ``expect`` of the blank line per reply, so a reply
  larger than ``max_reply_bytes`` is a desync (``ProcessOutputLimit``: killed at once);
* **working directory**: the Lake project, entered with ``env -C`` (so that ``lake env`` finds its
  lakefile) inside the sandbox;
* **memory**: while waiting for a reply, the resident memory of the whole tree is polled every
  ``rss_poll_interval`` and the process is killed above ``rss_kill_mb`` (the REPL has neither a
  timeout nor a memory cap of its own).

Failures are exceptions carrying the stderr tail: ``ReplTimeout`` (the caller decides whether that
is a tactic timeout or a hung prover), ``ProverCrashed``, ``ProverDesync``, ``ProverStartError``; the
process has always been killed when one is raised.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from ...core import procfs
from ...core.errors import ProverCrashed, ProverDesync, ProverError, ProverStartError
from ..process import ManagedProcess, ProcessError, ProcessExited, ProcessOutputLimit, ProcessTimeout
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


#: the blank line that ends a reply block
_BLOCK_END = re.compile(r"\n[ \t\r]*\n")


class ReplProcess:
    """A running REPL. Not thread-safe: one request at a time (the REPL is sequential anyway);
    ``kill()`` may come from another thread (the pool closing while a header import runs)."""

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
        self._env = dict(env) if env is not None else {}
        self._mp: ManagedProcess | None = None
        self._stderr_dir: str | None = None
        self._lock = threading.Lock()
        self.pgid: int | None = None
        #: set by ``kill()``; a process killed before or while spawning never runs
        self._cancelled = False

    # -- lifecycle ----------------------------------------------------------------------------
    def spawn(self) -> None:
        with self._lock:
            if self._mp is not None:
                return
            if self._cancelled:
                raise ProverStartError("the Lean REPL was killed before it started", backend=BACKEND)
            if not _executable(self.argv[0] if self.argv else "", self.cwd):
                raise ProverStartError(
                    f"cannot start the Lean REPL {self.argv!r}: no such executable", backend=BACKEND
                )
            self._stderr_dir = tempfile.mkdtemp(prefix="llemma-lean-repl-")
            inner = ["env", "-C", self.cwd, *self.argv] if self.cwd else list(self.argv)
            argv = ["sh", "-c", 'exec "$@" 2>>"$0"', self._stderr_file(), *inner]
            mp = ManagedProcess(
                argv,
                private_tmpdir=False,
                env_extra=self._env,
                sandbox=self._sandbox,
                max_output_chars=self.policy.max_reply_bytes,
                tail_chars=self.policy.stderr_tail_chars,
            )
            try:
                mp.start()
            except ProcessError as exc:
                mp.close()
                self._remove_stderr()
                raise ProverStartError(
                    f"cannot start the Lean REPL {self.argv!r}: {exc}", backend=BACKEND
                ) from exc
            self._mp = mp
            self.pgid = mp.pgid  # session leader: pgid == pid

    @property
    def pid(self) -> int | None:
        mp = self._mp
        return mp.pid if mp is not None else None

    def alive(self) -> bool:
        mp = self._mp
        return mp is not None and mp.alive

    def kill(self) -> None:
        """Kill the whole process tree and reap it (``ManagedProcess.close``). Idempotent; never raises."""
        self._cancelled = True
        with self._lock:
            mp, self._mp = self._mp, None
        if mp is not None:
            mp.close()
        self._remove_stderr()

    close = kill

    def _stderr_file(self) -> str:
        assert self._stderr_dir is not None
        return os.path.join(self._stderr_dir, "stderr.log")

    def _remove_stderr(self) -> None:
        d, self._stderr_dir = self._stderr_dir, None
        if d is not None:
            shutil.rmtree(d, ignore_errors=True)

    # -- I/O ------------------------------------------------------------------------------------
    def stderr_tail(self) -> str:
        """The end of what the REPL printed on stderr (at most ``stderr_tail_chars``)."""
        if self._stderr_dir is None:
            return ""
        cap = self.policy.stderr_tail_chars
        try:
            with open(self._stderr_file(), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - cap))
                return fh.read().decode("utf-8", errors="replace")[-cap:]
        except OSError:
            return ""

    def request(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and return its reply object, or raise (having killed the process)."""
        mp = self._mp
        if mp is None:
            raise ProverCrashed("the Lean REPL is not running", backend=BACKEND)
        wire = encode_request(req).decode("utf-8")  # ProtocolError before anything is sent
        t0 = time.monotonic()
        self.requests += 1
        deadline = t0 + timeout
        try:
            mp.send(wire)
            while True:
                poll = min(deadline, time.monotonic() + self.policy.rss_poll_interval)
                try:
                    before, _m = mp.expect(_BLOCK_END, poll)
                except ProcessTimeout:
                    if time.monotonic() >= deadline:
                        self._fail(ReplTimeout, f"no reply within {timeout:.1f}s", t0)
                    self._check_memory(mp, t0)
                    continue
                if before.strip():
                    break  # else: a stray blank line between replies
        except ProcessOutputLimit as exc:
            self._fail(ProverDesync, f"reply larger than {self.policy.max_reply_bytes} bytes", t0, exc)
        except ProcessExited as exc:
            code = mp.returncode
            self._fail(ProverCrashed, f"the Lean REPL exited (code {code}) before answering", t0, exc)
        except (ProcessError, OSError, ValueError) as exc:  # killed from another thread, pipe closed
            self._fail(ProverCrashed, f"the Lean REPL stopped: {exc}", t0, exc)
        try:
            return decode_block(before)
        except ProtocolError as exc:
            self._fail(ProverDesync, str(exc), t0, exc)

    def rss_mb(self) -> float:
        """Resident memory of the whole process tree, MiB (0 when unknown)."""
        mp = self._mp
        return mp.rss_mb() if mp is not None else 0.0

    # -- internals ------------------------------------------------------------------------------
    def _fail(
        self, kind: type[ProverError], message: str, t0: float, cause: BaseException | None = None
    ) -> NoReturn:
        tail = self.stderr_tail()
        self.kill()
        err = kind(message, backend=BACKEND, elapsed=time.monotonic() - t0, output_tail=tail)
        if cause is not None:
            raise err from cause
        raise err

    def _check_memory(self, mp: ManagedProcess, t0: float) -> None:
        limit = self.policy.rss_kill_mb
        if limit:
            rss = mp.rss_mb()
            if rss > limit:
                self._fail(ProverCrashed, f"memory cap: resident {rss:.0f} MiB > {limit} MiB, killed", t0)


def _executable(exe: str, cwd: str | None) -> bool:
    """Whether ``exe`` can be executed (found on ``PATH``, or a path relative to ``cwd``)."""
    if not exe:
        return False
    if os.sep not in exe:
        return shutil.which(exe) is not None
    path = exe if os.path.isabs(exe) or not cwd else os.path.join(cwd, exe)
    return os.path.isfile(path) and os.access(path, os.X_OK)


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
