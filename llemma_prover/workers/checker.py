"""The independent check of a prove run, off the search workers: proofs checked in batches.

A search worker that finds a proof does not check it (``ProveJob(defer_check=True)``): its result comes
back to the driver with the proof in ``JobResult.unchecked`` and a record that is not final. The driver
hands it to a ``BatchChecker``, which collects pending proofs and checks them with the backend's
``check_many`` (Coq: ``Rechecker.check_batch``: one identity file per header, one ``coqchk`` for all the
headers that allow the same axioms, a failing batch decided proof by proof) on a thread of its own,
while the search goes on.

* A header's proofs become *ready* when the search of its last theorem has finished (``header_done``:
  the driver counts them; no later proof can join them) or when they are ``batch_size``: they are
  checked together, so the per-header steps are paid once per header.
* Ready proofs of several headers are checked in one call (the shared ``coqchk``): the checker takes
  them when there are ``batch_size`` of them, when the oldest has waited ``max_wait`` seconds (a
  verdict is never held back longer by a batch that does not fill), and at the end of the run
  (``close``); at most ``max_batch`` per call. A check that is running lets the next ones gather.
* Once fewer searches are left than there are workers (``core_idle``: the driver says so), a core
  would idle while proofs wait for a batch to fill: from then on every proof is ready when it comes
  and is checked at once, whatever the batch size (the run's tail is not spent waiting).
* Once the last search has finished (``searches_done``, or ``close``) every proof is ready and a
  second thread with a backend of its own (``helper``) checks beside the first, the remaining proofs
  split between them, so the run does not end on one thread's backlog.
* While no batch is due, the checker does ahead what the check of a submitted proof will need from its
  theorem alone (``ProverBackend.prepare_check``; Coq: the header's facts), once per header, so that a
  batch does not start with that work, and the last one of a run does not end with it.
* ``on_checked(pending, verdict, size)`` is called (on the checker's thread) with each proof's verdict;
  the driver writes the record only then, so a proof is recorded as proved only after its check
  passed. The verdict's ``elapsed`` is the proof's share of its batch (the batch's seconds divided by
  its size); ``size`` is how many proofs were checked together.
* Crash safety: nothing about a pending proof is written before its verdict. A run killed while proofs
  wait or are being checked has no record of them; on resume those theorems are searched again. A
  checker call that raises (its process could not start, a bug) gives each proof of the batch a failed
  verdict (never a pass). ``close(flush=False)`` (the run is stopping on an error) checks nothing more
  and records nothing more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..backends.base import ProverBackend
from ..core.types import CheckResult, Theorem

log = logging.getLogger(__name__)

#: ready proofs that start a check at once; also the proofs of one header that are ready before the
#: header is done (Coq: the shared ``coqchk`` and identity file are about 1.9 s of CPU; docs/check.md)
BATCH_SIZE = 8
#: seconds the oldest ready proof waits for others before it is checked anyway
MAX_WAIT_S = 30.0
#: proofs checked in one call at most (one deadline of the check timeout per proof is the call's)
MAX_BATCH = 16
#: seconds ``close(flush=False)`` waits for a batch being checked to end before leaving it behind
ABORT_WAIT_S = 30.0


@dataclass(frozen=True)
class Pending:
    """One found proof waiting for its check, and what the driver needs to record it."""

    theorem: Theorem
    proof: tuple[str, ...]
    #: the driver's own data for this proof (the job and its unfinished result)
    payload: Any = None
    #: the number of the batch it was checked in (0, 1, ... in the order the batches started; -1 before)
    batch: int = -1


OnChecked = Callable[[Pending, CheckResult, int], None]


class BatchChecker:
    """Checks pending proofs in batches on its own thread (module docstring)."""

    def __init__(
        self, backend: ProverBackend, on_checked: OnChecked, batch_size: int = BATCH_SIZE,
        max_wait: float = MAX_WAIT_S, max_batch: int = MAX_BATCH,
        helper: Callable[[], ProverBackend] | None = None,
    ) -> None:
        if batch_size < 1 or max_batch < batch_size:
            raise ValueError("batch_size must be at least 1 and max_batch at least batch_size")
        self.backend = backend
        self.on_checked = on_checked
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.max_batch = max_batch
        #: makes (and starts) the second checker's backend at the end of the run (None: one checker)
        self.helper = helper
        self._workers = 0  # checker threads running
        self._helper_thread: threading.Thread | None = None
        self._started = 0  # batches started
        self._groups: dict[str, list[Pending]] = {}
        self._done_headers: set[str] = set()
        self._ready: list[Pending] = []
        self._to_prepare: list[Theorem] = []  # one theorem per header not yet prepared, in order
        self._prepared: set[str] = set()
        self._ready_since = 0.0
        self._closing = False
        self._eager = False  # ``core_idle``: every proof ready at once, checked without waiting
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        #: sizes of the batches checked, in order (for ``stats`` and the benches)
        self.batches: list[int] = []

    def start(self) -> BatchChecker:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="llemma-checker", daemon=True)
            with self._cond:
                self._workers += 1
            self._thread.start()
        return self

    def __enter__(self) -> BatchChecker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close(flush=exc[0] is None)

    # -- fed by the driver (one thread) -------------------------------------------------------
    def submit(self, pending: Pending) -> None:
        """Queue a found proof; its header's proofs become ready when full or when the header is done."""
        header = pending.theorem.header
        with self._cond:
            if header not in self._prepared:
                self._prepared.add(header)
                self._to_prepare.append(pending.theorem)
                self._cond.notify()
            group = self._groups.setdefault(header, [])
            group.append(pending)
            if len(group) >= self.batch_size or header in self._done_headers or self._eager:
                self._make_ready(header)

    def core_idle(self) -> None:
        """Fewer searches are left than workers: check every proof as soon as it comes, without
        waiting for a batch to fill (a core is free for it)."""
        with self._cond:
            if self._eager:
                return
            self._eager = True
            for header in list(self._groups):
                self._make_ready(header)
            self._cond.notify_all()

    def header_done(self, header: str) -> None:
        """No more proofs of ``header`` will come (its theorems' searches have all finished)."""
        with self._cond:
            self._done_headers.add(header)
            self._make_ready(header)

    def _make_ready(self, header: str) -> None:
        group = self._groups.pop(header, [])
        if group:
            if not self._ready:
                self._ready_since = time.monotonic()
            self._ready += group
            self._cond.notify()

    def searches_done(self) -> None:
        """No more proofs will come: check everything waiting now, on two threads when there is a
        ``helper`` (``close`` still waits for the verdicts)."""
        self._finish(flush=True)

    def close(self, flush: bool = True) -> None:
        """``flush``: check every proof still waiting and return when all verdicts are delivered;
        otherwise check nothing more (what is being checked is left to finish, not recorded)."""
        self._finish(flush)
        thread, self._thread = self._thread, None
        for t in (thread, self._helper_thread):
            if t is not None:
                t.join(None if flush else ABORT_WAIT_S)
        if flush and self._error is not None:
            raise RuntimeError(f"the checker failed: {self._error}") from self._error

    def _finish(self, flush: bool) -> None:
        with self._cond:
            if self._closing and flush:
                return
            if flush:
                for header in list(self._groups):
                    self._make_ready(header)
            else:
                self._stop.set()
                self._groups.clear()
                self._ready.clear()
            spare = (flush and self.helper is not None and bool(self._ready) and self._thread is not None
                     and self._helper_thread is None)
        if flush:
            log.info("checker: %d proof(s) waiting when the searches ended", len(self._ready))
        if spare:  # the helper counts among the threads before the rest is shared out
            self._helper_thread = self._start_helper()
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def _start_helper(self) -> threading.Thread | None:
        """The second checker thread, with a backend of its own (None when it cannot start: the first
        thread checks everything, as without a helper)."""
        assert self.helper is not None
        try:
            backend = self.helper()
        except Exception as exc:  # noqa: BLE001 - the first checker still checks everything
            log.warning("no second checker at the end of the run: %s", exc)
            return None

        def run() -> None:
            try:
                self._loop(backend)
            finally:
                backend.close()

        thread = threading.Thread(target=run, name="llemma-checker-2", daemon=True)
        with self._cond:
            self._workers += 1
        thread.start()
        return thread

    # -- the checker's threads -----------------------------------------------------------------
    def _next_batch(self, prepare: bool = False) -> list[Pending] | Theorem | None:
        """The next proofs to check (waits for them), or None when the checker is to stop; with
        ``prepare``, a theorem whose check to prepare when no batch is due."""
        with self._cond:
            while True:
                if self._stop.is_set():
                    return None
                waited = time.monotonic() - self._ready_since
                due = bool(self._ready) and (
                    self._closing or self._eager or len(self._ready) >= self.batch_size
                    or waited >= self.max_wait
                )
                if due:  # at the end, the rest is shared between the checker threads
                    share = -(-len(self._ready) // max(1, self._workers))
                    take = min(self.max_batch, share if self._closing else len(self._ready))
                    batch, self._ready = self._ready[:take], self._ready[take:]
                    self._ready_since = time.monotonic()
                    return batch
                if prepare and self._to_prepare and not self._closing:
                    return self._to_prepare.pop(0)
                if self._ready:
                    self._cond.wait(self.max_wait - waited)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()

    def _loop(self, backend: ProverBackend | None = None) -> None:
        """One checker thread's loop (``_workers`` counts it from before it starts)."""
        try:
            while True:
                work = self._next_batch(prepare=backend is None)  # only the first thread prepares
                if work is None:
                    return
                try:
                    if isinstance(work, Theorem):
                        self._prepare(work)
                    else:
                        self._check(work, backend or self.backend)
                except BaseException as exc:  # on_checked failed (the run dir): the run must hear of it
                    log.error("the checker stopped: %s", exc)
                    self._error = exc
                    return
        finally:
            with self._cond:
                self._workers -= 1

    def _prepare(self, theorem: Theorem) -> None:
        try:
            self.backend.prepare_check(theorem)
        except Exception as exc:  # noqa: BLE001 - the check meets it again and decides
            log.warning("%s: preparing its check failed: %s", theorem.name, " ".join(str(exc).split())[:300])

    def _check(self, batch: Sequence[Pending], backend: ProverBackend) -> None:
        with self._cond:
            number = self._started
            self._started += 1
        t0 = time.monotonic()
        try:
            verdicts = backend.check_many([(p.theorem, p.proof) for p in batch])
            if len(verdicts) != len(batch):
                raise RuntimeError(f"{len(verdicts)} verdicts for {len(batch)} proofs")
        except Exception as exc:  # the checker itself failed: no proof of this batch passes
            message = "the checker failed: " + " ".join(str(exc).split())[:500]
            log.warning("%d proof(s): %s", len(batch), message)
            verdicts = [CheckResult(ok=False, checker=backend.name, elapsed=0.0, message=message)
                        for _ in batch]
        seconds = time.monotonic() - t0
        share = seconds / len(batch)
        self.batches.append(len(batch))
        log.info("checker %s: batch %d, %d proof(s) of %d header(s), %d passed, %.1f s",
                 threading.current_thread().name, number, len(batch),
                 len({p.theorem.header for p in batch}), sum(v.ok for v in verdicts), seconds)
        for pending, verdict in zip(batch, verdicts, strict=True):
            if self._stop.is_set():
                return
            self.on_checked(replace(pending, batch=number), replace(verdict, elapsed=share), len(batch))
