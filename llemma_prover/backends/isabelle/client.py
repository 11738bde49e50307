"""A client for the Isabelle server: start ``isabelle server``, connect, run commands and tasks.

* ``IsabelleServer`` starts ``isabelle server -n NAME`` in its own process group (memory-capped),
  reads the address line ``server "NAME" = 127.0.0.1:PORT (password "PW")`` against a deadline and,
  on ``close()``, asks the server to shut down and then kills and reaps the whole group.
* ``IsabelleConnection`` speaks the wire protocol of ``protocol.py`` over one TCP socket on
  127.0.0.1. Every read has a deadline; a task that overruns its timeout is cancelled (``cancel``)
  and the client waits a bounded grace period for its ``FAILED`` reply -- if that never comes the
  connection is no longer trustworthy and ``ProverHung`` is raised (the caller replaces the server).

Errors: a refused/closed connection or a malformed reply is a ``ProverError``; a task that the prover
reports as ``FAILED`` is returned as a value (``TaskResult.ok`` False); a task timeout is
``TaskTimeout`` (a ``ProverError`` that the caller may turn into a tactic timeout).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ...core.errors import (
    ProverCrashed,
    ProverDesync,
    ProverError,
    ProverHung,
    ProverStartError,
    ProverUnavailable,
)
from ..process import ManagedProcess, ProcessError, ProcessTimeout
from ..sandbox import Sandbox, sandbox_for
from .protocol import Message, MessageBuffer, ProtocolError, Reply, UseTheoriesResult, encode, encode_line

if TYPE_CHECKING:
    from ...core.config import ProverConfig

log = logging.getLogger(__name__)

BACKEND = "isabelle"

_ADDRESS_RE = re.compile(
    r'server\s+"(?P<name>[^"]*)"\s*=\s*(?P<host>[\w.:\[\]-]+):(?P<port>\d+)\s*\(password\s+"(?P<password>[^"]*)"\)'
)


class TaskTimeout(ProverError):
    """An asynchronous task did not finish within its timeout; it was cancelled cleanly."""

    def __init__(self, message: str, *, timeout: float, elapsed: float) -> None:
        super().__init__(message, backend=BACKEND, elapsed=elapsed)
        self.timeout = timeout


class CommandError(ProverError):
    """The server answered a command with ``ERROR`` (bad arguments, unknown session id, ...)."""


@dataclass(frozen=True)
class ServerAddress:
    name: str
    host: str
    port: int
    password: str

    @classmethod
    def parse(cls, line: str) -> ServerAddress | None:
        m = _ADDRESS_RE.search(line)
        if not m:
            return None
        return cls(name=m["name"], host=m["host"], port=int(m["port"]), password=m["password"])


@dataclass(frozen=True)
class TaskResult:
    """The end of an asynchronous task: ``FINISHED`` (ok) or ``FAILED`` with its JSON and notes."""

    ok: bool
    result: dict[str, Any]
    notes: tuple[dict[str, Any], ...] = ()
    elapsed: float = 0.0

    @property
    def message(self) -> str:
        return str(self.result.get("message", ""))


@dataclass(frozen=True)
class ClientPolicy:
    """Timeouts of the client (seconds)."""

    connect_timeout: float = 10.0
    #: synchronous commands (echo, cancel, purge_theories, shutdown)
    command_timeout: float = 30.0
    #: starting a logic session (loads the heap image; may build it the first time)
    session_start_timeout: float = 600.0
    #: after cancelling a timed-out task, how long to wait for its FAILED reply
    cancel_grace: float = 10.0


class IsabelleConnection:
    """One authenticated connection. Not thread-safe: one command at a time."""

    def __init__(self, address: ServerAddress, policy: ClientPolicy | None = None) -> None:
        self.address = address
        self.policy = policy or ClientPolicy()
        self._sock: socket.socket | None = None
        self._buf = MessageBuffer()
        self._pending: deque[Message] = deque()
        self.server_info: Any = None

    # -- connection ------------------------------------------------------------------------
    def connect(self) -> None:
        if self._sock is not None:
            return
        if self.address.host not in ("127.0.0.1", "localhost", "::1"):
            raise ProverStartError(
                f"refusing to connect to non-loopback host {self.address.host}", backend=BACKEND
            )
        t0 = time.monotonic()
        try:
            self._sock = socket.create_connection(
                ("127.0.0.1" if self.address.host == "localhost" else self.address.host, self.address.port),
                timeout=self.policy.connect_timeout,
            )
        except OSError as exc:
            raise ProverStartError(
                f"cannot connect to Isabelle server at {self.address.host}:{self.address.port}: {exc}",
                backend=BACKEND,
                elapsed=time.monotonic() - t0,
            ) from exc
        try:
            self._send_raw(encode_line(self.address.password))
            reply = self._read(time.monotonic() + self.policy.connect_timeout)
        except ProverError as exc:
            self.close()
            raise ProverStartError(
                f"Isabelle server closed the connection during the handshake (wrong password?): {exc}",
                backend=BACKEND,
            ) from exc
        if reply.name != Reply.OK.value:
            self.close()
            raise ProverStartError(
                f"Isabelle server rejected the connection: {reply.name} {reply.argument[:200]}",
                backend=BACKEND,
            )
        self.server_info = reply.json()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    # -- low level ------------------------------------------------------------------------
    def _send_raw(self, data: bytes) -> None:
        if self._sock is None:
            raise ProverCrashed("not connected", backend=BACKEND)
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise ProverCrashed(
                f"connection to Isabelle server lost while sending: {exc}", backend=BACKEND
            ) from exc

    def send(self, name: str, argument: Any = None) -> None:
        self._send_raw(encode(name, argument))

    def _read(self, deadline: float) -> Message:
        """The next message, or ``ProverHung`` at the deadline / ``ProverCrashed`` on EOF."""
        if self._pending:
            return self._pending.popleft()
        while True:
            try:
                msg = self._buf.pop()
            except ProtocolError as exc:
                self.close()
                raise ProverDesync(f"malformed server message: {exc}", backend=BACKEND) from exc
            if msg is not None:
                return msg
            if self._sock is None:
                raise ProverCrashed("not connected", backend=BACKEND)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProverHung("no reply from the Isabelle server before the deadline", backend=BACKEND)
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                self.close()
                raise ProverCrashed(f"connection to Isabelle server lost: {exc}", backend=BACKEND) from exc
            if not data:
                self.close()
                raise ProverCrashed("the Isabelle server closed the connection", backend=BACKEND)
            self._buf.feed(data)

    # -- commands -------------------------------------------------------------------------
    def command(self, name: str, argument: Any = None, timeout: float | None = None) -> Any:
        """A synchronous command: the JSON of its ``OK`` reply; ``CommandError`` on ``ERROR``."""
        self.send(name, argument)
        deadline = time.monotonic() + (timeout if timeout is not None else self.policy.command_timeout)
        while True:
            msg = self._read(deadline)
            if msg.name == Reply.OK.value:
                return msg.json()
            if msg.name == Reply.ERROR.value:
                raise CommandError(f"{name} failed: {msg.argument[:500]}", backend=BACKEND)
            if msg.name in (Reply.NOTE.value, Reply.FINISHED.value, Reply.FAILED.value):
                # a late message of an earlier (cancelled) task: not ours, drop it
                log.debug("dropping stray %s while waiting for %s", msg.name, name)
                continue
            raise ProverDesync(f"unexpected reply {msg.name!r} to {name}", backend=BACKEND)

    def task(
        self,
        name: str,
        argument: Any,
        timeout: float,
        on_note: Callable[[dict[str, Any]], None] | None = None,
    ) -> TaskResult:
        """An asynchronous command, waited for: ``TaskResult`` or ``TaskTimeout`` (after ``cancel``)."""
        t0 = time.monotonic()
        started = self.command(name, argument)
        if not isinstance(started, dict) or "task" not in started:
            raise ProverDesync(f'{name}: expected OK {{"task": ...}}, got {started!r}', backend=BACKEND)
        task_id = started["task"]
        notes: list[dict[str, Any]] = []
        deadline = t0 + timeout
        try:
            return self._await_task(task_id, deadline, notes, on_note, t0)
        except ProverHung:
            if not self.connected:
                raise
        # timed out: cancel and wait (bounded) for the task to end, so the connection stays in step
        elapsed = time.monotonic() - t0
        self.send("cancel", {"task": task_id})
        grace = time.monotonic() + self.policy.cancel_grace
        try:
            self._await_cancel(task_id, grace, notes, t0)
        except ProverHung as exc:
            raise ProverHung(
                f"{name} task {task_id} did not stop within {self.policy.cancel_grace:.0f} s "
                "of being cancelled",
                backend=BACKEND,
                elapsed=elapsed,
            ) from exc
        raise TaskTimeout(
            f"{name} exceeded {timeout:.1f} s and was cancelled", timeout=timeout, elapsed=elapsed
        )

    def _await_cancel(self, task_id: Any, deadline: float, notes: list[dict[str, Any]], t0: float) -> None:
        """Read both answers to our ``cancel``: the command's own ``OK`` and the task's end (``FAILED``
        with ``Interrupt``, or ``FINISHED`` if it ended first). The server sends them from different
        threads (the command loop answers ``cancel``; the task's thread reports its end), so they come
        in either order; returning after the first would leave the other to be read as the reply to the
        next command."""
        got_ok = got_end = False
        while not (got_ok and got_end):
            msg = self._read(deadline)
            if msg.name == Reply.OK.value and not got_ok:
                got_ok = True
                continue
            if msg.name == Reply.ERROR.value:
                raise ProverDesync(f"cancel of task {task_id} failed: {msg.argument[:500]}", backend=BACKEND)
            payload = msg.json() if msg.name != Reply.OK.value else None
            if isinstance(payload, dict) and payload.get("task") == task_id:
                if msg.name == Reply.NOTE.value:
                    notes.append(payload)
                    continue
                if msg.name in (Reply.FINISHED.value, Reply.FAILED.value) and not got_end:
                    got_end = True
                    continue
            if msg.name in (Reply.NOTE.value, Reply.FINISHED.value, Reply.FAILED.value):
                log.debug("dropping %s of another task while cancelling task %r", msg.name, task_id)
                continue
            raise ProverDesync(
                f"unexpected reply {msg.name!r} while cancelling task {task_id}", backend=BACKEND
            )

    def _await_task(
        self,
        task_id: Any,
        deadline: float,
        notes: list[dict[str, Any]],
        on_note: Callable[[dict[str, Any]], None] | None,
        t0: float,
    ) -> TaskResult:
        while True:
            msg = self._read(deadline)
            payload = msg.json()
            if msg.name == Reply.NOTE.value and not isinstance(payload, dict):
                # progress output is informational; no decision rests on it
                log.debug("ignoring a NOTE that is not a JSON object: %r", msg.argument[:200])
                continue
            if not isinstance(payload, dict):
                raise ProverDesync(
                    f"unexpected {msg.name} reply while waiting for task {task_id}: {msg.argument[:200]!r}",
                    backend=BACKEND,
                )
            if payload.get("task") != task_id:
                log.debug("dropping %s of another task %r", msg.name, payload.get("task"))
                continue
            if msg.name == Reply.NOTE.value:
                # e.g. {"task", "kind", "message"} or, from Isabelle2025-2 on, {"task", "nodes_status"}
                # during session_start/session_build/use_theories: kept, never interpreted here
                notes.append(payload)
                if on_note is not None:
                    on_note(payload)
                continue
            if msg.name in (Reply.FINISHED.value, Reply.FAILED.value):
                return TaskResult(
                    ok=msg.name == Reply.FINISHED.value,
                    result=payload,
                    notes=tuple(notes),
                    elapsed=time.monotonic() - t0,
                )
            raise ProverDesync(f"unexpected reply {msg.name!r} for task {task_id}", backend=BACKEND)

    # -- the commands we use ----------------------------------------------------------------
    def echo(self, value: Any) -> Any:
        return self.command("echo", value)

    def session_start(
        self,
        session: str,
        *,
        dirs: Sequence[str] = (),
        options: Sequence[str] = (),
        include_sessions: Sequence[str] = (),
    ) -> str:
        arg: dict[str, Any] = {"session": session}
        if dirs:
            arg["dirs"] = list(dirs)
        if options:
            arg["options"] = list(options)
        if include_sessions:
            arg["include_sessions"] = list(include_sessions)
        res = self.task("session_start", arg, timeout=self.policy.session_start_timeout)
        if not res.ok or "session_id" not in res.result:
            raise ProverStartError(
                f"session_start {session} failed: {res.message or res.result}",
                backend=BACKEND,
                elapsed=res.elapsed,
            )
        return str(res.result["session_id"])

    def use_theories(
        self,
        session_id: str,
        theories: Sequence[str],
        master_dir: str,
        timeout: float,
        watchdog_timeout: float | None = None,
    ) -> UseTheoriesResult:
        arg: dict[str, Any] = {"session_id": session_id, "theories": list(theories), "master_dir": master_dir}
        if watchdog_timeout is not None:
            arg["watchdog_timeout"] = watchdog_timeout
        res = self.task("use_theories", arg, timeout=timeout)
        if not res.ok:
            # FAILED: the command itself broke (e.g. unknown session); theory errors come as FINISHED
            raise CommandError(
                f"use_theories failed: {res.message or res.result}", backend=BACKEND, elapsed=res.elapsed
            )
        return UseTheoriesResult.from_json(res.result)

    def purge_theories(self, session_id: str, theories: Sequence[str], master_dir: str) -> Any:
        return self.command(
            "purge_theories", {"session_id": session_id, "theories": list(theories), "master_dir": master_dir}
        )

    def session_stop(self, session_id: str, timeout: float = 60.0) -> TaskResult:
        return self.task("session_stop", {"session_id": session_id}, timeout=timeout)

    def shutdown(self) -> None:
        self.command("shutdown")


# ---------------------------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------------------------


#: environment variables the Isabelle tool needs beyond what ``Sandbox.env`` keeps
_ISABELLE_ENV = ("HOME", "USER", "ISABELLE_HOME_USER", "ISABELLE_IDENTIFIER", "JAVA_HOME")


def _isabelle_env() -> dict[str, str]:
    return {k: os.environ[k] for k in _ISABELLE_ENV if k in os.environ}


def server_sandbox(config: ProverConfig) -> Sandbox:
    """``sandbox_for(config)`` adapted to a resident JVM + Poly/ML server that we reach over TCP.

    Kept: the scrubbed environment (plus ``_ISABELLE_ENV``), no core dumps, a file-size cap and an
    open-files cap. Relaxed, and recorded as such by ``describe()``: no network namespace (the server's
    127.0.0.1 would then not be ours and the client could not connect), no address-space cap (the JVM
    reserves far more virtual memory than it uses; memory is left to Isabelle's own heap settings), no
    CPU-seconds cap (the server is resident; every task has its own timeout and is cancelled), and at
    least 4 GiB per file (a session heap image is written when it is built).
    """
    base = sandbox_for(config)
    hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = max(base.limits.open_files, 8192)
    if hard_nofile != resource.RLIM_INFINITY:
        nofile = min(nofile, hard_nofile)  # an unprivileged process cannot raise its hard limit
    limits = replace(
        base.limits,
        address_space_mb=0,
        cpu_seconds=0,
        file_size_mb=max(base.limits.file_size_mb, 4096),
        open_files=nofile,
    )
    return replace(base, network="none", limits=limits)


#: one line of the server's output (stdout and stderr share one pipe)
_LINE = re.compile(r"\n")
#: seconds between checks of the server's liveness by the thread that drains its output
DRAIN_POLL_S = 1.0


@dataclass
class IsabelleServer:
    """A resident ``isabelle server`` process that we started and therefore must stop.

    The process is a ``backends/process.py`` ``ManagedProcess`` (own session and process group, killed
    as a whole and reaped; the sandbox's rlimits and environment, or ``memory_limit_mb`` without one).
    Its stdout and stderr share one pipe: the address line is read from it against the start deadline,
    then a thread keeps draining it (into the bounded tail) so the server can never block on a full
    pipe."""

    executable: str = "isabelle"
    name: str = ""
    #: address-space cap for the server process group (MiB; 0 disables). The JVM + ML need several GiB.
    memory_limit_mb: int = 0
    start_timeout: float = 120.0
    extra_args: Sequence[str] = ()
    #: the confinement the server runs under (``server_sandbox``); None: only ``memory_limit_mb``
    sandbox: Sandbox | None = None
    _mp: ManagedProcess | None = field(default=None, init=False, repr=False)
    _drainer: threading.Thread | None = field(default=None, init=False, repr=False)
    address: ServerAddress | None = field(default=None, init=False)

    def start(self) -> ServerAddress:
        if self.address is not None and self.alive():
            return self.address
        name = self.name or f"llemma_prover_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        argv = [self.executable, "server", "-n", name, *self.extra_args]
        t0 = time.monotonic()
        sb = self.sandbox
        mp = ManagedProcess(
            argv,
            memory_limit_mb=self.memory_limit_mb,
            scrub_env=sb is not None,
            private_tmpdir=False,
            env_extra=_isabelle_env() if sb is not None else None,
            sandbox=sb,
        )
        try:
            mp.start()
        except ProcessError as exc:
            mp.close()
            if isinstance(exc.__cause__, FileNotFoundError):
                raise ProverUnavailable(
                    f"Isabelle executable {self.executable!r} not found: install Isabelle "
                    "(https://isabelle.in.tum.de) and put its bin/ on PATH, or pass its path as the "
                    "prover executable",
                    backend=BACKEND,
                ) from exc
            raise ProverStartError(f"cannot start the Isabelle server: {exc}", backend=BACKEND) from exc
        self._mp = mp
        addr, seen = self._read_address(mp, t0 + self.start_timeout)
        if addr is None:
            tail = mp.tail
            self.close(graceful=False)
            raise ProverStartError(
                f"isabelle server did not announce its address (got {seen!r})",
                backend=BACKEND,
                elapsed=time.monotonic() - t0,
                output_tail=tail,
            )
        self._drainer = threading.Thread(target=self._drain, args=(mp,), daemon=True, name="isabelle-drain")
        self._drainer.start()
        self.address = addr
        return addr

    @staticmethod
    def _read_address(mp: ManagedProcess, deadline: float) -> tuple[ServerAddress | None, str | None]:
        """The first line that is the server's address (other lines are kept in the tail)."""
        line: str | None = None
        while True:
            try:
                before, _m = mp.expect(_LINE, deadline)
            except ProcessError:  # deadline, exit or an endless line
                return None, line
            line = before.strip()
            addr = ServerAddress.parse(line)
            if addr is not None:
                return addr, line

    @staticmethod
    def _drain(mp: ManagedProcess) -> None:
        while True:
            try:
                mp.read_chunk(time.monotonic() + DRAIN_POLL_S)
            except ProcessTimeout:
                continue
            except Exception:  # noqa: BLE001 - exited, or closed by ``close()``: nothing left to drain
                return

    @property
    def pid(self) -> int | None:
        mp = self._mp
        return mp.pid if mp is not None else None

    def alive(self) -> bool:
        mp = self._mp
        return mp is not None and mp.alive

    def output_tail(self) -> str:
        mp = self._mp
        return mp.tail if mp is not None else ""

    def close(self, graceful: bool = True) -> None:
        """Shut the server down (``shutdown`` command when ``graceful``), then kill and reap the group."""
        mp, self._mp = self._mp, None
        addr, self.address = self.address, None
        drainer, self._drainer = self._drainer, None
        if mp is None:
            return
        if graceful and addr is not None and mp.alive:
            conn = IsabelleConnection(addr, ClientPolicy(connect_timeout=3.0, command_timeout=5.0))
            try:
                conn.connect()
                conn.shutdown()
            except ProverError as exc:
                log.debug("graceful shutdown failed: %s", exc)
            finally:
                conn.close()
            if drainer is not None:
                drainer.join(timeout=5.0)  # returns when the server has closed its output (exited)
        mp.close()  # SIGKILL the group, reap it
        if drainer is not None:
            drainer.join(timeout=5.0)
