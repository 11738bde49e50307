"""REPL processes kept warm per header, so starting a theorem does not re-import Mathlib.

A ``ReplSession`` is a running REPL whose header (``import Mathlib ...``) has been elaborated once;
its ``header_env`` id is reused for every theorem with that header (a REPL environment is
immutable, so a command on ``header_env`` never sees what earlier commands or tactics did).

``ReplPool.acquire(header)`` hands out an idle session for that header or starts one;
``release`` takes it back (or kills it when it is due for recycling: more than ``recycle_after``
requests or more than ``recycle_rss_mb`` resident); ``discard`` kills it (after a timeout or crash:
a process that timed out is never reused). With ``warm_spare`` the pool keeps one session per header
starting in the background, so that a replacement after a kill is usually ready at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from ...core.errors import ProverError, ProverStartError
from .protocol import CommandResponse, ReplError, command_request, parse_command_response
from .repl_process import BACKEND, ReplProcess, ReplTimeout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolPolicy:
    #: seconds to start a process and elaborate the header (``import Mathlib``: tens of seconds)
    start_timeout: float = 300.0
    #: replace a process after this many requests (0: never)
    recycle_after: int = 2000
    #: replace a process whose resident memory exceeds this many MiB when it is released (0: never)
    recycle_rss_mb: int = 12288
    #: keep one session per header starting in the background
    warm_spare: bool = True
    #: idle sessions kept per header
    max_idle: int = 1


class ReplSession:
    """A REPL process with its header elaborated."""

    def __init__(self, process: ReplProcess, header: str, header_env: int | None) -> None:
        self.process = process
        self.header = header
        self.header_env = header_env

    @property
    def generation(self) -> int:
        return self.process.generation

    def due_for_recycling(self, policy: PoolPolicy) -> str | None:
        if not self.process.alive():
            return "process exited"
        if policy.recycle_after and self.process.requests >= policy.recycle_after:
            return f"served {self.process.requests} requests"
        if policy.recycle_rss_mb:
            rss = self.process.rss_mb()
            if rss > policy.recycle_rss_mb:
                return f"resident memory {rss:.0f} MiB"
        return None


def import_header(process: ReplProcess, header: str, timeout: float) -> int | None:
    """Elaborate ``header`` in a fresh environment; its env id (None for an empty header)."""
    if not header.strip():
        return None
    t0 = time.monotonic()
    try:
        reply = parse_command_response(process.request(command_request(header), timeout))
    except ReplTimeout as exc:
        raise ProverStartError(
            f"header did not load within {timeout:.0f}s",
            backend=BACKEND,
            elapsed=time.monotonic() - t0,
            output_tail=exc.output_tail,
        ) from exc
    if isinstance(reply, ReplError):
        process.kill()
        raise ProverStartError(f"header rejected: {reply.message}", backend=BACKEND)
    assert isinstance(reply, CommandResponse)
    if reply.errors:
        process.kill()
        raise ProverStartError(
            "header does not elaborate: " + "; ".join(m.data for m in reply.errors), backend=BACKEND
        )
    return reply.env


class ReplPool:
    def __init__(self, launch: Callable[[int], ReplProcess], policy: PoolPolicy) -> None:
        self._launch = launch
        self.policy = policy
        self._lock = threading.Lock()
        self._idle: dict[str, list[ReplSession]] = {}
        self._warming: dict[str, Future[ReplSession]] = {}
        self._busy: set[ReplSession] = set()
        #: processes still importing their header (killed by ``close`` so it never waits on an import)
        self._starting: set[ReplProcess] = set()
        self._generation = 0
        self._closed = False
        self.started = 0
        self.recycled = 0

    # -- public ---------------------------------------------------------------------------------
    def acquire(self, header: str) -> ReplSession:
        """A ready session for ``header`` (waits for a warming one, or starts one now)."""
        while True:
            with self._lock:
                if self._closed:
                    raise ProverError("REPL pool is closed", backend=BACKEND)
                idle = self._idle.get(header)
                if idle:
                    s = idle.pop()
                    self._busy.add(s)
                    return s
                fut = self._warming.get(header)
            if fut is None:
                s = self._new_session(header)
                with self._lock:
                    if self._closed:
                        s.process.kill()
                        raise ProverError("REPL pool is closed", backend=BACKEND)
                    self._busy.add(s)
                return s
            try:
                fut.result()  # the warmer puts the session in _idle; loop to take it
            except ProverError as exc:
                log.warning("background REPL start failed: %s", exc)
                with self._lock:
                    if self._warming.get(header) is fut:
                        del self._warming[header]
                s = self._new_session(header)  # surface the error synchronously this time
                with self._lock:
                    self._busy.add(s)
                return s

    def release(self, session: ReplSession) -> None:
        with self._lock:
            self._busy.discard(session)
            closed = self._closed
        why = "pool closed" if closed else session.due_for_recycling(self.policy)
        if why:
            log.info("recycling Lean REPL pid %s: %s", session.process.pid, why)
            self.recycled += 1
            session.process.kill()
            self._warm(session.header)
            return
        with self._lock:
            idle = self._idle.setdefault(session.header, [])
            if len(idle) < self.policy.max_idle:
                idle.append(session)
                return
        session.process.kill()

    def discard(self, session: ReplSession) -> None:
        """Kill a session that timed out, crashed or desynced; start a warm replacement if configured."""
        with self._lock:
            self._busy.discard(session)
        session.process.kill()
        self._warm(session.header)

    def fresh(self, header: str) -> ReplSession:
        """A brand-new session, not taken from or returned to the pool (the caller kills it)."""
        return self._new_session(header)

    def prewarm(self, header: str) -> None:
        """Start a session for ``header`` in the background (no-op without ``warm_spare``)."""
        self._warm(header)

    def close(self) -> None:
        """Kill every session, idle, busy or still starting. Idempotent."""
        with self._lock:
            self._closed = True
            warming = list(self._warming.values())
            starting = list(self._starting)
        for proc in starting:
            proc.kill()  # its header import fails at once; the warm thread cleans up
        for fut in warming:
            # a failed warm start has already cleaned up after itself
            with contextlib.suppress(Exception):
                fut.result(timeout=30)
        with self._lock:
            sessions = [s for lst in self._idle.values() for s in lst] + list(self._busy)
            self._idle.clear()
            self._busy.clear()
            self._warming.clear()
        for s in sessions:
            s.process.kill()

    def describe(self) -> dict[str, int]:
        with self._lock:
            return {
                "idle": sum(len(v) for v in self._idle.values()),
                "busy": len(self._busy),
                "warming": len(self._warming),
                "started": self.started,
                "recycled": self.recycled,
            }

    # -- internals -------------------------------------------------------------------------------
    def _new_session(self, header: str) -> ReplSession:
        with self._lock:
            self._generation += 1
            gen = self._generation
            self.started += 1
        proc = self._launch(gen)
        with self._lock:
            if self._closed:
                raise ProverError("REPL pool is closed", backend=BACKEND)
            self._starting.add(proc)
        try:
            proc.spawn()
            env = import_header(proc, header, self.policy.start_timeout)
        except BaseException:
            proc.kill()
            raise
        finally:
            with self._lock:
                self._starting.discard(proc)
        return ReplSession(proc, header, env)

    def _warm(self, header: str) -> None:
        if not self.policy.warm_spare:
            return
        with self._lock:
            if (
                self._closed
                or header in self._warming
                or len(self._idle.get(header, [])) >= self.policy.max_idle
            ):
                return
            fut: Future[ReplSession] = Future()
            self._warming[header] = fut

        def run() -> None:
            try:
                s = self._new_session(header)
            except BaseException as exc:  # noqa: BLE001 - reported through the future
                with self._lock:
                    self._warming.pop(header, None)
                fut.set_exception(exc)
                return
            with self._lock:
                self._warming.pop(header, None)
                if self._closed:
                    s.process.kill()
                else:
                    self._idle.setdefault(header, []).append(s)
            fut.set_result(s)

        threading.Thread(target=run, daemon=True, name="lean-repl-warm").start()
