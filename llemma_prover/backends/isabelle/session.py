"""One Isabelle server + one logic session, checking whole theory files on demand.

``IsabelleSession.check_theory(name, text, timeout)`` writes ``NAME.thy`` into a fresh directory,
runs ``use_theories`` on it under ``timeout`` and purges it again, so no state leaks from one check to
the next. A check that overruns is cancelled and reported as ``TheoryCheck.timed_out``; a server that
dies, hangs past the cancel grace period or answers out of step is killed (whole process group) and the
next check starts a fresh one.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...core.errors import ProverError
from ..sandbox import Sandbox
from .client import ClientPolicy, IsabelleConnection, IsabelleServer, TaskTimeout
from .protocol import ProverMessage

log = logging.getLogger(__name__)


def default_session_dir() -> Path:
    """The repository's ``isabelle/`` folder (ROOT + template), next to the package."""
    return Path(__file__).resolve().parents[3] / "isabelle"


@dataclass(frozen=True)
class IsabelleOptions:
    """What to start: the logic session and where its ROOT is."""

    #: logic session image (``isabelle/ROOT`` defines ``LlemmaMiniF2F`` on top of HOL with the libraries
    #: the miniF2F headers import); "HOL" works without building anything, but imports load slowly
    session: str = "LlemmaMiniF2F"
    #: extra session directories (``dirs`` of ``session_start``); default: the repository's isabelle/
    dirs: tuple[str, ...] = ()
    #: Isabelle system options for the session (``name=value``)
    options: tuple[str, ...] = ()
    #: name prefix of the resident server
    server_name: str = ""
    #: stop a command that makes no progress (``use_theories`` watchdog), seconds
    watchdog_timeout: float = 0.0
    client: ClientPolicy = field(default_factory=ClientPolicy)

    def session_dirs(self) -> tuple[str, ...]:
        return self.dirs or (str(default_session_dir()),)


@dataclass(frozen=True)
class TheoryCheck:
    """The outcome of checking one theory file."""

    ok: bool
    elapsed: float
    errors: tuple[ProverMessage, ...] = ()
    messages: tuple[ProverMessage, ...] = ()
    timed_out: bool = False

    def first_error(self) -> str:
        if self.timed_out:
            return f"timeout after {self.elapsed:.1f} s"
        if self.errors:
            return self.errors[0].render()
        return "" if self.ok else "theory not ok"

    def error_lines(self) -> list[int]:
        return [e.pos.line for e in self.errors if e.pos.line is not None]


@dataclass(frozen=True)
class TheoriesCheck:
    """The outcome of checking several theories in one ``use_theories``: the whole task, and each
    node (theory name -> its own status, errors and messages) as the server reported it."""

    overall: TheoryCheck
    nodes: dict[str, TheoryCheck]
    #: the master directory the theories were written to (removed afterwards)
    directory: str = ""


class IsabelleSession:
    """A server + session pair with restart-on-failure. ``close()`` stops and reaps everything."""

    def __init__(
        self,
        executable: str = "isabelle",
        options: IsabelleOptions | None = None,
        start_timeout: float = 600.0,
        memory_limit_mb: int = 0,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.executable = executable
        self.options = options or IsabelleOptions()
        self.start_timeout = start_timeout
        self.memory_limit_mb = memory_limit_mb
        self.sandbox = sandbox
        self._server: IsabelleServer | None = None
        self._conn: IsabelleConnection | None = None
        self._session_id: str | None = None
        self._workdir: Path | None = None
        self._checks = 0
        #: servers replaced after a failure
        self.restarts = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._session_id is not None:
            return
        t0 = time.monotonic()
        self._workdir = Path(tempfile.mkdtemp(prefix="llemma_isabelle_"))
        server = IsabelleServer(
            executable=self.executable,
            name=self.options.server_name,
            memory_limit_mb=self.memory_limit_mb,
            sandbox=self.sandbox,
            start_timeout=self.start_timeout,
        )
        self._server = server
        try:
            addr = server.start()
            conn = IsabelleConnection(addr, self.options.client)
            self._conn = conn
            conn.connect()
            self._session_id = conn.session_start(
                self.options.session, dirs=self.options.session_dirs(), options=self.options.options
            )
        except ProverError:
            self.close()
            raise
        log.info("isabelle session %s started in %.1f s", self.options.session, time.monotonic() - t0)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        sid, self._session_id = self._session_id, None
        if conn is not None and conn.connected and sid is not None:
            try:
                conn.session_stop(sid, timeout=30.0)
            except ProverError as exc:
                log.debug("session_stop failed: %s", exc)
        if conn is not None:
            conn.close()
        server, self._server = self._server, None
        if server is not None:
            server.close(graceful=True)
        wd, self._workdir = self._workdir, None
        if wd is not None:
            shutil.rmtree(wd, ignore_errors=True)

    def restart(self) -> None:
        self.restarts += 1
        self.close()
        self.start()

    @property
    def server_pid(self) -> int | None:
        return self._server.pid if self._server is not None else None

    # -- checking --------------------------------------------------------------------------
    def check_theory(self, name: str, text: str, timeout: float) -> TheoryCheck:
        """Check ``NAME.thy`` = ``text``. Raises ``ProverError`` if the server breaks (it is then dead)."""
        return self.check_theories([(name, text)], timeout).overall

    def check_theories(
        self, theories: Sequence[tuple[str, str]], timeout: float, files: Mapping[str, str] | None = None
    ) -> TheoriesCheck:
        """Check several theories (``NAME.thy`` = text, in this order) in one fresh directory with one
        ``use_theories``; ``files`` are extra plain files written beside them. Every node's own status
        is kept (``TheoriesCheck.nodes``), keyed by theory name. Raises ``ProverError`` if the server
        breaks (it is then dead)."""
        self.start()
        assert self._conn is not None and self._session_id is not None and self._workdir is not None
        self._checks += 1
        master = self._workdir / f"c{self._checks}"
        master.mkdir()
        names = [n for n, _ in theories]
        for name, text in theories:
            (master / f"{name}.thy").write_text(text, encoding="utf-8")
        for fname, text in (files or {}).items():
            (master / fname).write_text(text, encoding="utf-8")
        t0 = time.monotonic()
        try:
            try:
                res = self._conn.use_theories(
                    self._session_id,
                    names,
                    str(master),
                    timeout=timeout,
                    watchdog_timeout=self.options.watchdog_timeout or None,
                )
            except TaskTimeout as exc:
                self._purge(names, master)
                timed_out = TheoryCheck(ok=False, elapsed=exc.elapsed, timed_out=True)
                return TheoriesCheck(overall=timed_out, nodes={}, directory=str(master))
            self._purge(names, master)
        except ProverError:
            self._kill()
            raise
        finally:
            shutil.rmtree(master, ignore_errors=True)
        elapsed = time.monotonic() - t0
        messages = res.messages()
        errors = tuple(res.errors) or tuple(m for m in messages if m.kind == "error")
        node_ok = all(n.ok for n in res.nodes) if res.nodes else res.ok
        nodes: dict[str, TheoryCheck] = {}
        for n in res.nodes:
            node_errors = tuple(m for m in n.messages if m.kind == "error")
            nodes[Path(n.node_name).stem] = TheoryCheck(
                ok=n.ok and not node_errors, elapsed=elapsed, errors=node_errors, messages=n.messages
            )
        overall = TheoryCheck(
            ok=res.ok and node_ok and not errors, elapsed=elapsed, errors=errors, messages=messages
        )
        return TheoriesCheck(overall=overall, nodes=nodes, directory=str(master))

    def _purge(self, names: Sequence[str], master: Path) -> None:
        assert self._conn is not None and self._session_id is not None
        self._conn.purge_theories(self._session_id, list(names), str(master))

    def _kill(self) -> None:
        """After a broken connection: drop everything without the polite protocol."""
        self.restarts += 1
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self._session_id = None
        server, self._server = self._server, None
        if server is not None:
            server.close(graceful=False)
        wd, self._workdir = self._workdir, None
        if wd is not None:
            shutil.rmtree(wd, ignore_errors=True)


def writeln_at(messages: Sequence[ProverMessage], line: int) -> list[str]:
    """Texts of ``writeln`` messages reported at ``line`` (e.g. the output of ``print_state``)."""
    return [m.message for m in messages if m.kind == "writeln" and m.pos.line == line]
