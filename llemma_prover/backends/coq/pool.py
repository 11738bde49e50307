"""The coqidetop processes of one backend: start, header, statement, reuse, warm spare, recycling, restarts.

A process loads the automation prelude every prepared header begins with (``header.AUTOMATION_IMPORTS``)
with ``-l header.v``, then the rest of a theorem's header sentence by sentence (``Add``, executed). The
next theorem with the same header reuses the live process (``Edit_at`` the state after the header, then
the new statement); a theorem with another header goes back (``Edit_at``) to the state after the
longest run of leading header sentences the two share (at least the prelude) and adds the rest, so a
header change costs the new sentences, not a new process that loads every library again (miniF2F-test
has 100 distinct headers). Coq's states are exact snapshots: the state after the same sentences is the
same state, whichever header came before. Coq's document is linear, so a process sits on one path at a
time (``Session.stack``: our state ids with Coq's state ids).

Failures, and what they cost (issue 10, point 5). *One bad candidate costs one candidate*: a process
that failed on a candidate is ``discard_top``-ed (never reused: killed, whole group) and replaced --
by the warm spare when ``warm_spare`` is set (started after the first replacement under a header) --
and none of this counts against ``max_restarts``. What counts is infrastructure: a process that cannot
be started (``for_step``) or that fails while *restoring* a state (``replace_after_failure``). More than
``max_restarts`` in one theorem raise ``RestartLimitExceeded`` (the search records ``prover_crash``).
A process is also recycled (not a restart) after ``recycle_after`` requests or when its resident
memory exceeds ``recycle_rss_mb`` (sampled every ``RSS_SAMPLE_EVERY`` requests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ...core.config import ProverConfig
from ...core.errors import (
    ProverCrashed,
    ProverDesync,
    ProverError,
    ProverHung,
    ProverStartError,
    ProverUnavailable,
    RestartLimitExceeded,
)
from ..process import ProcessError, ProcessExited, ProcessTimeout
from .header import split_header
from .ide import Added, CoqFailure, Goals, IdeProtocolError, IdeTop, Sentence, Status
from .settings import RSS_SAMPLE_EVERY
from .states import goal_texts

log = logging.getLogger(__name__)

__all__ = ["Session", "SessionPool"]


class Session:
    """One coqidetop process with a prelude loaded, a header on top, possibly a theorem's proof open."""

    def __init__(self, ide: IdeTop, header: str, started: float, stats: dict[str, float]) -> None:
        self.ide = ide
        self.proc = ide.proc
        #: the prelude it was started with (``-l header.v``; ``split_header``)
        self.prelude = split_header(header)[0]
        #: the prepared header whose sentences are loaded on the prelude (None: none yet)
        self.header: str | None = None
        self.started = started
        #: the backend's counters (``requests`` is counted here)
        self.stats = stats
        #: Coq state id right after the prelude (None until ``Init`` has been answered)
        self.prelude_state: int | None = None
        #: the loaded header's sentences after the prelude: (text, Coq state id after it)
        self.header_sentences: list[tuple[str, int]] = []
        #: Coq state id right after the header (None until it is loaded)
        self.header_state: int | None = None
        #: statement whose proof is open (None: none)
        self.statement: str | None = None
        #: (state id, Coq state id) from the root to where the document's tip is now
        self.stack: list[tuple[int, int]] = []
        self.root_goals: tuple[str, ...] = ()
        #: request count at the last resident-memory sample
        self.rss_checked_at = 0

    def edit_at(self, coq_state: int, deadline: float) -> None:
        """``Edit_at`` Coq's state ``coq_state``; a failure means we are out of step (``ProverDesync``)."""
        self.stats["requests"] += 1
        failure = self.ide.edit_at(coq_state, deadline)
        if failure is not None:
            raise ProverDesync(f"Edit_at {coq_state} failed: {failure.message}", backend="coq")


class SessionPool:
    """The current process (``top``), the warm spare, and the restart count of the open theorem.

    ``launch(header)`` builds (without starting) the ``IdeTop`` for a header; it raises
    ``ProverUnavailable`` when Coq is missing."""

    def __init__(
        self,
        config: ProverConfig,
        launch: Callable[[str], IdeTop],
        ide_executable: str,
        stats: dict[str, float],
    ) -> None:
        self.config = config
        self._launch = launch
        self._ide_executable = ide_executable
        self.stats = stats
        self.top: Session | None = None
        self.spare: Session | None = None
        #: header whose process has been replaced at least once: keep a spare for it
        self.spare_header: str | None = None
        #: infrastructure failures in the open theorem (reset by the backend per theorem)
        self.restarts = 0

    def close(self) -> None:
        for top in (self.top, self.spare):
            if top is not None:
                top.ide.close()
        self.top = self.spare = None

    # -- starting ------------------------------------------------------------------------------
    def spawn(self, header: str) -> Session:
        """Start a coqidetop that loads the prelude of ``header`` (``-l``); ``Init`` is sent only when
        the process is first used, so a spare loads its prelude while the search goes on."""
        ide = self._launch(split_header(header)[0])
        t0 = time.monotonic()
        try:
            ide.spawn()
        except ProcessError as exc:
            ide.close()
            if isinstance(exc.__cause__, FileNotFoundError):
                raise ProverUnavailable(
                    f"{self._ide_executable!r} not found; install Coq 8.16 (Debian: apt-get install coq)",
                    backend="coq",
                ) from exc
            raise ProverStartError(
                f"cannot start coqidetop: {exc}", backend="coq", output_tail=exc.tail
            ) from exc
        self.stats["process_starts"] += 1
        return Session(ide, header, t0, self.stats)

    def await_prelude(self, top: Session) -> None:
        """``Init`` (answered once the prelude is loaded); raises ``ProverStartError``/``ProverHung``."""
        if top.prelude_state is not None:
            return
        try:
            top.prelude_state = top.ide.init(top.started + self.config.start_timeout)
        except ProcessExited as exc:
            top.ide.close()
            err = " ".join(top.proc.stderr_tail().split())[-500:]
            raise ProverStartError(
                f"coqidetop exited while loading the header (does it compile?): {err}",
                backend="coq",
                output_tail=err,
            ) from exc
        except ProcessTimeout as exc:
            top.ide.close()
            raise ProverHung(
                f"loading the header took more than {self.config.start_timeout:.0f}s",
                backend="coq",
                elapsed=time.monotonic() - top.started,
                output_tail=exc.tail,
            ) from exc
        except IdeProtocolError as exc:
            top.ide.close()
            raise ProverStartError(f"coqidetop did not start: {exc}", backend="coq") from exc
        self.stats["requests"] += 1
        self.stats["start_s"] += time.monotonic() - top.started

    def load_header(self, top: Session, header: str, deadline: float) -> None:
        """Make ``header`` the loaded header: keep the longest run of leading sentences the loaded
        one shares with it (the same text, then a blank or the end), ``Edit_at`` the state after
        them and add the rest, executed. A sentence that fails: ``ProverStartError``, the process
        closed (the caller drops it)."""
        self.await_prelude(top)
        assert top.prelude_state is not None
        if top.header == header and top.header_state is not None:
            return
        prelude, rest = split_header(header)
        if prelude != top.prelude:
            raise ProverDesync("a header loaded on another prelude", backend="coq")
        top.header, top.header_state = None, None
        top.statement, top.stack = None, []
        sent = top.proc.requests
        got = top.ide.load_source(top.header_sentences, top.prelude_state, rest, deadline)
        self.stats["requests"] += top.proc.requests - sent
        if isinstance(got, CoqFailure):
            top.ide.close()
            raise ProverStartError(f"the header did not load: {got.message}", backend="coq")
        top.header, top.header_state = header, got

    # -- the statement -------------------------------------------------------------------------
    def open_statement(self, top: Session, header: str, statement: str) -> None:
        """Load ``header`` (``load_header``; back to its state if a proof is open), then add
        ``statement`` and ``Proof.``."""
        self.await_prelude(top)
        t0 = time.monotonic()
        try:
            self.load_header(top, header, t0 + self.config.start_timeout)
            proof, goals = self._load_statement(top, statement, t0 + self.config.start_timeout)
        except ProcessExited as exc:
            self.discard_top()
            raise ProverCrashed(
                "coqidetop exited while opening the statement", backend="coq", output_tail=exc.tail
            ) from exc
        except ProcessTimeout as exc:
            self.discard_top()
            raise ProverHung(
                f"opening the statement took more than {self.config.start_timeout:.0f}s",
                backend="coq",
                output_tail=exc.tail,
            ) from exc
        except (IdeProtocolError, ProverDesync) as exc:
            self.discard_top()
            raise ProverDesync(
                f"coqidetop out of step while opening the statement: {exc}", backend="coq"
            ) from exc
        top.statement = statement
        top.root_goals = goal_texts(goals.foreground)
        top.stack = [(0, proof.state_id)]
        self.stats["start_s"] += time.monotonic() - t0

    def _load_statement(self, top: Session, statement: str, deadline: float) -> tuple[Added, Goals]:
        """The statement as exactly one sentence that opens a proof (Coq's parser and ``Status``
        decide), then ``Proof.`` with a focused goal; else back to the header, ``ProverStartError``."""
        assert top.header_state is not None
        ide = top.ide
        if top.statement is not None or ide.tip != top.header_state:
            top.edit_at(top.header_state, deadline)
            top.statement, top.stack = None, []
        sentences = list(ide.split_sentences(statement, top.header_state, deadline))
        self.stats["requests"] += 2 * len(sentences)
        failure = next((s for s in sentences if isinstance(s, CoqFailure)), None)
        status = ide.status(deadline) if failure is None else None
        opened_proof = isinstance(status, Status) and status.proof_name is not None
        if failure is not None or len(sentences) != 1 or not opened_proof:
            why = failure.message if failure is not None else "it is not one sentence that opens a proof"
            top.edit_at(top.header_state, deadline)
            raise ProverStartError(f"the statement did not load: {why}", backend="coq")
        opened = sentences[0]
        assert isinstance(opened, Sentence)
        proof = ide.add("Proof.", opened.state_id, deadline)
        goals = ide.goals(deadline) if isinstance(proof, Added) else proof
        self.stats["requests"] += 2
        if not isinstance(proof, Added) or not isinstance(goals, Goals) or not goals.foreground:
            top.edit_at(top.header_state, deadline)
            raise ProverStartError(
                f"the statement shows no goal after Proof.: {getattr(goals, 'message', goals)}",
                backend="coq",
            )
        return proof, goals

    # -- the current process ---------------------------------------------------------------------
    def current(self, header: str, statement: str) -> Session:
        """The process for the current theorem, reused, promoted from the spare or started."""
        self._drop_unusable_top(header)
        if self.top is None:
            self.top = self._spare_or_new(header)
        top = self.top
        if top.statement != statement or top.header != header:
            try:
                self.open_statement(top, header, statement)
            except ProverStartError:
                if top.header_state is None:  # the header itself failed: the process is gone
                    top.ide.close()
                    self.top = None
                raise
        if self.config.warm_spare and self.spare is None and self.spare_header == header:
            try:
                self.spare = self.spawn(header)
            except ProverError as exc:  # a spare is an optimisation; say so and go on
                log.warning("could not start a spare coqidetop: %s", exc)
        return top

    def for_step(self, header: str, statement: str) -> Session:
        """``current`` for a step: refused past the restart budget; a replacement that fails to start
        counts one restart."""
        self.check_restart_budget()
        try:
            return self.current(header, statement)
        except ProverError:
            self.restarts += 1  # a replacement that failed to start counts against the budget
            raise

    def _drop_unusable_top(self, header: str) -> None:
        top = self.top
        if top is None:
            return
        if top.prelude != split_header(header)[0]:
            top.ide.close()  # another prelude: not a replacement, no spare wanted for it
            self.top = None
        elif not top.ide.alive:
            self.discard_top()
        elif self._needs_recycle(top):
            self.stats["recycles"] += 1
            self.discard_top()

    def _spare_or_new(self, header: str) -> Session:
        spare = self.spare
        self.spare = None
        if spare is not None and spare.prelude == split_header(header)[0] and spare.ide.alive:
            self.stats["spare_used"] += 1
            return spare
        if spare is not None:
            spare.ide.close()
        return self.spawn(header)

    def _needs_recycle(self, top: Session) -> bool:
        cfg = self.config
        if cfg.recycle_after and top.proc.requests >= cfg.recycle_after:
            return True
        if not cfg.recycle_rss_mb or top.proc.requests - top.rss_checked_at < RSS_SAMPLE_EVERY:
            return False
        top.rss_checked_at = top.proc.requests
        return top.proc.rss_mb() > cfg.recycle_rss_mb

    # -- replacing -------------------------------------------------------------------------------
    def discard_top(self) -> None:
        """Kill the current process because it must be replaced (timeout, crash, recycling).

        From now on a spare with this header is kept ready (``warm_spare``): the spare is started
        only once a header has needed a replacement, so theorems that never time out load their
        header once, and a header that does cost a replacement pays a full load at most once."""
        if self.top is not None:
            self.spare_header = self.top.header or self.spare_header
            self.top.ide.close()
            self.top = None

    def replace_after_failure(self) -> None:
        """Kill the current process after an infrastructure failure; counts one restart."""
        self.discard_top()
        self.restarts += 1

    def check_restart_budget(self) -> None:
        if self.restarts > self.config.max_restarts:
            raise RestartLimitExceeded(
                f"{self.restarts} restarts in one theorem (max_restarts={self.config.max_restarts})",
                backend="coq",
            )
