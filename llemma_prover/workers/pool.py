"""One worker pool for every long job (``prove``, ``autoformalize``, ...): in this process or on Ray.

A *job* is a picklable object with a ``key`` (the theorem it is about), ``run(context, attempt)``
returning its result record, and ``failed(attempt, error)`` returning the record to keep when its
worker died on every attempt. A *worker spec* is a picklable recipe for what a worker builds once and
shares between its jobs (a prover process, a tactic generator): ``setup() -> context`` and
``teardown(context)``. Jobs must turn their own failures (a bad tactic, a broken prover) into
records; the pool only handles the worker itself dying.

* ``InProcessPool``: one worker in this process (``--workers 0``).
* ``RayPool``: ``n`` worker actors on a Ray cluster, started here on loopback or joined
  (``--ray-address``; ``workers/cluster.py``). A free actor takes the next job. An actor that dies
  (``kill -9``, its node lost) has its job retried on a fresh actor ``retries`` times, then the job's
  ``failed`` record is kept; what the dead actor left running is killed (``workers/reaper.py``).
  Actors spread over the cluster's nodes; a replacement that cannot be scheduled (its node is gone
  and no other has room) never takes work, and the survivors finish the run.

``on_result(job, result)`` is called in the caller's thread as each job finishes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from ..core.errors import ConfigError, LlemmaProverError, UserError
from .reaper import ChildRecorder, kill_recorded, pidfile_for

log = logging.getLogger(__name__)


class Job(Protocol):
    """A unit of work (picklable)."""

    @property
    def key(self) -> str: ...

    def run(self, context: Any, attempt: int) -> Any: ...

    def failed(self, attempt: int, error: str) -> Any: ...


class WorkerSpec(Protocol):
    """How a worker builds what its jobs share (picklable)."""

    def setup(self) -> Any: ...

    def teardown(self, context: Any) -> None: ...


OnResult = Callable[[Any, Any], None]


class WorkerLost(LlemmaProverError):
    """Every worker of a pool is gone and jobs are left."""


class Worker:
    """Builds a spec's context once and runs jobs with it; the class Ray turns into an actor."""

    def __init__(self, spec: WorkerSpec, tag: str | None = None, context: Any = None) -> None:
        """``context``: an already-built context (what ``spec.setup()`` would return) to use."""
        self.spec = spec
        self.tag = tag
        self.context: Any = context
        self._recorder: ChildRecorder | None = None

    def start(self) -> bool:
        """Build the context (idempotent). With a ``tag``, first start recording child pids."""
        if self.context is None:
            if self.tag and self._recorder is None:
                self._recorder = ChildRecorder(pidfile_for(self.tag))
                self._recorder.start()
            if "torch" in sys.modules:  # one thread per worker: the workers are the parallelism
                sys.modules["torch"].set_num_threads(1)
            self.context = self.spec.setup()
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(1)
        return True

    def run(self, job: Job, attempt: int = 1) -> Any:
        self.start()
        return job.run(self.context, attempt)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        context, self.context = self.context, None
        try:
            if context is not None:
                self.spec.teardown(context)
        finally:
            if self._recorder is not None:
                self._recorder.stop()
                self._recorder = None


class InProcessPool:
    """Runs jobs one after another in this process, with one worker."""

    def __init__(self, spec: WorkerSpec, context: Any = None) -> None:
        """``context``: an already-built context to use; its owner (not the pool) tears it down."""
        self.worker = Worker(spec, context=context)
        self._owns_context = context is None

    def start(self) -> None:
        self.worker.start()

    def run(self, jobs: Iterable[Job], on_result: OnResult) -> None:
        self.start()
        for job in jobs:
            on_result(job, self.worker.run(job, 1))

    def close(self, graceful: bool = True) -> None:
        if self._owns_context:
            self.worker.close()


class RayPool:
    """``n`` worker actors on a Ray cluster (started on loopback, or joined at ``address``)."""

    def __init__(self, make_spec: Callable[[], WorkerSpec], n: int, address: str | None = None,
                 retries: int = 1, gpus_per_worker: float = 0.0, close_timeout: float = 15.0,
                 start_timeout: float = 900.0) -> None:
        """``make_spec`` is called here once per actor (and per replacement); ``start_timeout``: seconds
        for all actors to be scheduled and set up (a model load can take minutes)."""
        if n < 1:
            raise ValueError("RayPool needs at least one worker")
        self.make_spec = make_spec
        self.n = n
        self.address = address
        self.retries = retries
        self.gpus_per_worker = gpus_per_worker
        self.close_timeout = close_timeout
        self.start_timeout = start_timeout
        self._started_ray = False
        self._actor_cls: Any = None
        self._actors: dict[int, tuple[Any, str]] = {}  # slot -> (handle, tag)
        self._ready: set[int] = set()  # slots whose actor has finished setup
        self.respawns = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> RayPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(graceful=exc[0] is None)

    def start(self) -> None:
        from .cluster import ray_env, ray_init

        ray_env()
        import ray

        self._started_ray = ray_init(self.address, num_cpus=self.n)
        self._actor_cls = ray.remote(num_cpus=1, num_gpus=self.gpus_per_worker, max_restarts=0,
                                     max_task_retries=0)(Worker)
        for slot in range(self.n):
            self._spawn(slot)
        # surface set-up errors (missing prover, generator that cannot load) before any job runs
        starts = {slot: h.start.remote() for slot, (h, _) in self._actors.items()}
        try:
            ray.get(list(starts.values()), timeout=self.start_timeout)
        except ray.exceptions.GetTimeoutError:
            raise ConfigError(
                f"{self.n} Ray workers did not start within {self.start_timeout:g} s; does the cluster "
                f"have {self.n} free CPUs{' and GPUs' if self.gpus_per_worker else ''}? (try fewer --workers)"
            ) from None
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, UserError):
                raise cause from None
            raise
        self._ready = set(starts)

    def _spawn(self, slot: int) -> Any:
        tag = uuid.uuid4().hex
        # SPREAD: on a cluster, workers go to different nodes (a lost node takes fewer of them along)
        handle = self._actor_cls.options(scheduling_strategy="SPREAD").remote(self.make_spec(), tag)
        self._actors[slot] = (handle, tag)
        return handle

    def _reap(self, slot: int) -> None:
        import ray

        handle, tag = self._actors.pop(slot)
        self._ready.discard(slot)
        with contextlib.suppress(Exception):
            ray.kill(handle, no_restart=True)
        killed = kill_recorded(tag)
        if killed:
            log.info("killed %d process(es) left by worker %d: %s", len(killed), slot, killed)

    def close(self, graceful: bool = True) -> None:
        """Close every actor (gracefully if asked and possible), kill leftovers, leave Ray."""
        try:
            import ray
        except ImportError:
            return
        try:
            ready = [h for slot, (h, _) in self._actors.items() if slot in self._ready]
            if graceful and ready and ray.is_initialized():
                refs = [h.close.remote() for h in ready]
                with contextlib.suppress(Exception):
                    ray.wait(refs, num_returns=len(refs), timeout=self.close_timeout)
            for slot in list(self._actors):
                self._reap(slot)
        finally:
            from .cluster import ray_shutdown

            ray_shutdown(self._started_ray)
            self._started_ray = False

    def worker_pids(self) -> dict[int, int]:
        """slot -> process id of each live actor (for tests and diagnostics)."""
        import ray

        return {slot: ray.get(h.pid.remote()) for slot, (h, _) in self._actors.items()}

    # -- running -----------------------------------------------------------------------------
    def run(self, jobs: Iterable[Job], on_result: OnResult) -> None:
        """Run ``jobs`` (drawn lazily: at most two per worker in hand); ``on_result`` as each ends."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        source: Iterator[Job] = iter(jobs)
        exhausted = False
        pending: deque[tuple[Job, int]] = deque()
        idle: deque[int] = deque(sorted(self._ready))
        inflight: dict[Any, tuple[int, Job, int]] = {}
        starting: dict[Any, int] = {}  # start() of a replacement actor -> its slot
        while True:
            while not exhausted and len(pending) + len(inflight) < 2 * self.n:
                job = next(source, None)
                if job is None:
                    exhausted = True
                else:
                    pending.append((job, 1))
            while pending and idle:
                slot = idle.popleft()
                job, attempt = pending.popleft()
                inflight[self._actors[slot][0].run.remote(job, attempt)] = (slot, job, attempt)
            if not inflight and not pending:
                if exhausted:
                    return
                continue
            if not inflight and not starting:
                raise WorkerLost(f"every worker is gone and {len(pending)} job(s) are left")
            ready, _ = ray.wait([*inflight, *starting], num_returns=1, timeout=1.0)
            for ref in ready:
                if ref in starting:
                    slot = starting.pop(ref)
                    try:
                        ray.get(ref)
                    except (RayActorError, RayTaskError) as exc:
                        log.warning("replacement worker %d did not start: %s", slot, _one_line(exc))
                        self._reap(slot)  # the pool goes on with one worker fewer
                        continue
                    self._ready.add(slot)
                    idle.append(slot)
                    continue
                slot, job, attempt = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except RayActorError as exc:
                    self._reap(slot)
                    handle = self._spawn(slot)
                    starting[handle.start.remote()] = slot
                    self.respawns += 1
                    if attempt <= self.retries:
                        log.warning("%s: worker %d died (attempt %d); retrying on a fresh worker",
                                    job.key, slot, attempt)
                        pending.appendleft((job, attempt + 1))
                    else:
                        log.error("%s: worker died on all %d attempts; recorded as a crash", job.key, attempt)
                        on_result(job, job.failed(attempt, f"worker died: {_one_line(exc)}"))
                    continue
                except RayTaskError as exc:  # the job raised instead of returning a record
                    msg = _one_line(getattr(exc, "cause", exc))
                    log.error("%s: worker %d failed: %s", job.key, slot, msg)
                    result = job.failed(attempt, f"worker failed: {msg}")
                idle.append(slot)
                on_result(job, result)


Pool = InProcessPool | RayPool


@contextlib.contextmanager
def open_pool(make_spec: Callable[[], WorkerSpec], workers: int, address: str | None = None,
              retries: int = 1, gpus_per_worker: float = 0.0, context: Any = None) -> Iterator[Pool]:
    """``with open_pool(spec_factory, n) as pool: pool.run(jobs, on_result)``: in-process for
    ``workers == 0`` (reusing ``context`` if given), else on Ray. Closed (and Ray left) on exit."""
    pool: Pool
    if workers == 0:
        pool = InProcessPool(make_spec(), context=context)
    else:
        pool = RayPool(make_spec, workers, address, retries=retries, gpus_per_worker=gpus_per_worker)
    ok = False
    try:
        pool.start()
        yield pool
        ok = True
    finally:
        pool.close(graceful=ok)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
