"""Run theorems in workers: in-process (``workers=0``) or on Ray actors (``workers>=1``).

Each Ray actor owns its backend and generator (built inside the actor). Theorems are dispatched
dynamically: a free actor takes the next theorem. An actor that dies has its theorem retried on a
fresh actor (``RunConfig.worker_retries`` times), after which the theorem is recorded as a crash;
the run goes on. Results reach the caller through ``on_result`` as they complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.config import GeneratorConfig, RunConfig
from ..core.errors import ConfigError, UserError
from ..core.types import Theorem
from .job import JobResult, crash_record, run_job

log = logging.getLogger(__name__)

OnResult = Callable[[JobResult], None]


class Worker:
    """Owns one backend and one generator; proves theorems one at a time."""

    def __init__(self, run_config: RunConfig, generator_config: GeneratorConfig, tag: str | None = None,
                 generator: Any = None):
        """``generator``: a ready-made (picklable) generator to use instead of building one from
        ``generator_config``, e.g. a ``ServerGenerator`` that sends requests to the model servers."""
        self.run_config = run_config
        self.generator_config = generator_config
        self.tag = tag
        self.backend: Any = None
        self.generator: Any = None
        self._given_generator: Any = generator
        self._recorder: ChildRecorder | None = None

    def start(self) -> dict[str, Any]:
        """Build backend and generator (idempotent); returns the generator's ``describe()``."""
        if self.backend is None:
            if self.tag and self._recorder is None:
                self._recorder = ChildRecorder(pidfile_for(self.tag))
                self._recorder.start()
            if "torch" in sys.modules:  # one thread per worker: the workers are the parallelism
                sys.modules["torch"].set_num_threads(1)
            from ..backends.base import make_backend
            from ..generators.registry import make_generator

            backend = make_backend(self.run_config.backend, self.run_config.prover)
            try:
                backend.start()
                if self._given_generator is not None:
                    generator = self._given_generator
                    generator.start()
                else:
                    generator, _note = make_generator(self.generator_config, self.run_config.backend)
            except BaseException:
                backend.close()
                raise
            self.backend, self.generator = backend, generator
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(1)
        return dict(self.generator.describe())

    def prove(self, theorem: Theorem, attempt: int = 1) -> JobResult:
        self.start()
        return run_job(theorem, self.backend, self.generator, self.run_config, attempt=attempt)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        gen, backend = self.generator, self.backend
        self.generator = self.backend = None
        if gen is not None:
            with contextlib.suppress(Exception):
                gen.close()
        if backend is not None:
            backend.close()
        if self._recorder is not None:
            self._recorder.stop()
            self._recorder = None


# ----------------------------------------------------------------------------------------------
# in-process
# ----------------------------------------------------------------------------------------------


def run_in_process(theorems: Sequence[Theorem], run_config: RunConfig, generator_config: GeneratorConfig,
                   on_result: OnResult, worker: Worker | None = None) -> None:
    """Prove ``theorems`` one after another in this process (no Ray)."""
    own = worker is None
    w = worker or Worker(run_config, generator_config)
    try:
        w.start()
        for thm in theorems:
            on_result(w.prove(thm))
    finally:
        if own:
            w.close()


# ----------------------------------------------------------------------------------------------
# Ray
# ----------------------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of ``pid`` from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[19]


def child_pids(parent: int) -> dict[int, str]:
    """Direct children of ``parent``: pid -> start time (start time guards against pid reuse)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None and st[0] == parent:
                out[int(entry)] = st[1]
    return out


def pidfile_for(tag: str) -> Path:
    return Path(tempfile.gettempdir()) / f"llemma-prover-worker-{tag}.pids"


class ChildRecorder:
    """Records the pids of this process's children in a file, so that when the process dies
    (``kill -9`` of a Ray worker) the driver can kill the prover processes it left behind.

    Prover processes run in their own session and get a scrubbed environment, so neither the
    process group nor an environment marker can find them after their parent is gone.
    """

    def __init__(self, path: Path, interval: float = 0.2) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._seen: dict[int, str] = {}
        self._thread = threading.Thread(target=self._loop, name="child-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            new = {p: t for p, t in child_pids(me).items() if self._seen.get(p) != t}
            if new:
                self._seen.update(new)
                with contextlib.suppress(OSError), open(self.path, "a") as fh:
                    fh.write("".join(f"{p} {t}\n" for p, t in new.items()))
                    fh.flush()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.path.unlink()


def kill_recorded(tag: str) -> list[int]:
    """SIGKILL (whole process group) every recorded child of a dead worker that still runs."""
    path = pidfile_for(tag)
    killed = []
    try:
        lines = path.read_text().split("\n")
    except OSError:
        return killed
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        pid, start = int(parts[0]), parts[1]
        st = _proc_stat(pid)
        if st is None or st[1] != start:  # gone, or the pid now belongs to another process
            continue
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:  # prover processes lead their own group: kill all of it
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    with contextlib.suppress(OSError):
        path.unlink()
    return killed


def _ray_env() -> None:
    """Environment for a loopback-only Ray without usage stats; must be set before ``import ray``."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


#: seconds to wait for a TCP connection to ``--ray-address`` before ``ray.init`` (which retries for minutes)
RAY_ADDRESS_PROBE_S = 5.0


def _probe_address(address: str) -> None:
    """A ``host:port`` address where nothing listens is a one-line ``ConfigError`` at once: ``ray.init``
    itself would retry the GCS connection for minutes. Other forms (``auto``, ``ray://``) go to Ray."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not host or "/" in address or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_ADDRESS_PROBE_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot join the Ray cluster at {address}: nothing answers there ({reason}); "
                          "start it with `ray start --head` or leave out --ray-address") from None


def ray_init(address: str | None, num_cpus: int) -> bool:
    """Start a loopback-only local Ray (or join ``address``). Returns True if we started it."""
    _ray_env()
    import ray
    from ray._private import ray_constants

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address:
        _probe_address(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot join the Ray cluster at {address}: {' '.join(str(exc).split())[:300]}"
                              ) from exc
        return True
    # Ray binds every server to 127.0.0.1 only when the node address is loopback; the constant is read
    # when ray is first imported, so make sure it holds even if someone imported ray before us.
    if ray_constants.ENABLE_RAY_CLUSTER:
        ray_constants.ENABLE_RAY_CLUSTER = False
    # address="local": always a new cluster of our own, never one found through $RAY_ADDRESS or
    # /tmp/ray/ray_current_cluster (someone else's `ray start` on this machine)
    ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1",
             object_store_memory=200 * 1024 * 1024, **kwargs)
    return True


class RayPool:
    """A pool of ``n`` worker actors on a Ray cluster (started on loopback, or joined)."""

    def __init__(self, run_config: RunConfig, generator_config: GeneratorConfig, n: int,
                 address: str | None = None, close_timeout: float = 15.0,
                 gpus_per_worker: float = 0.0, generator_factory: Callable[[], Any] | None = None) -> None:
        """``generator_factory``: called in the driver once per actor (and per respawn) for a ready-made
        generator the actor uses instead of building its own (the model-server generator)."""
        if n < 1:
            raise ValueError("RayPool needs at least one worker")
        self.run_config = run_config
        self.generator_config = generator_config
        self.n = n
        self.address = address
        self.close_timeout = close_timeout
        self.gpus_per_worker = gpus_per_worker
        self.generator_factory = generator_factory
        #: seconds for all workers to be scheduled and build their backend and generator (model load)
        self.start_timeout = 900.0
        self._started_ray = False
        self._actor_cls: Any = None
        self._actors: dict[int, tuple[Any, str]] = {}  # slot -> (handle, tag)
        self.respawns = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> RayPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(graceful=exc[0] is None)

    def start(self) -> None:
        _ray_env()
        import ray

        self._started_ray = ray_init(self.address, num_cpus=self.n)
        self._actor_cls = ray.remote(num_cpus=1, num_gpus=self.gpus_per_worker, max_restarts=0,
                                     max_task_retries=0)(Worker)
        for slot in range(self.n):
            self._spawn(slot)
        # surface set-up errors (missing prover, generator that cannot load) before any theorem runs
        starts = [h.start.remote() for h, _ in self._actors.values()]
        try:
            ray.get(starts, timeout=self.start_timeout)
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

    def _spawn(self, slot: int) -> Any:
        tag = uuid.uuid4().hex
        given = self.generator_factory() if self.generator_factory is not None else None
        handle = self._actor_cls.options(name=None).remote(self.run_config, self.generator_config, tag, given)
        self._actors[slot] = (handle, tag)
        return handle

    def _reap(self, slot: int) -> None:
        import ray

        handle, tag = self._actors.pop(slot)
        with contextlib.suppress(Exception):
            ray.kill(handle, no_restart=True)
        killed = kill_recorded(tag)
        if killed:
            log.info("killed %d process(es) left by worker %d: %s", len(killed), slot, killed)

    def close(self, graceful: bool = True) -> None:
        """Close every actor (gracefully if asked and possible), kill leftovers, shut Ray down."""
        try:
            import ray
        except ImportError:
            return
        try:
            if graceful and self._actors and ray.is_initialized():
                refs = [h.close.remote() for h, _ in self._actors.values()]
                with contextlib.suppress(Exception):
                    ray.wait(refs, num_returns=len(refs), timeout=self.close_timeout)
            for slot in list(self._actors):
                self._reap(slot)
        finally:
            if self._started_ray and ray.is_initialized():
                ray.shutdown()
                self._started_ray = False

    def worker_pids(self) -> dict[int, int]:
        """slot -> process id of each live actor (for tests and diagnostics)."""
        import ray

        return {slot: ray.get(h.pid.remote()) for slot, (h, _) in self._actors.items()}

    # -- running -----------------------------------------------------------------------------
    def run(self, theorems: Sequence[Theorem], on_result: OnResult) -> None:
        """Prove ``theorems``; call ``on_result`` in this thread as each one finishes."""
        import ray
        from ray.exceptions import RayActorError

        gen_name = self.generator_config.name
        pending: deque[tuple[Theorem, int]] = deque((t, 1) for t in theorems)
        idle: deque[int] = deque(self._actors)
        inflight: dict[Any, tuple[int, Theorem, int]] = {}
        while pending or inflight:
            while pending and idle:
                slot = idle.popleft()
                thm, attempt = pending.popleft()
                handle, _ = self._actors[slot]
                inflight[handle.prove.remote(thm, attempt)] = (slot, thm, attempt)
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                slot, thm, attempt = inflight.pop(ref)
                try:
                    result: JobResult = ray.get(ref)
                except RayActorError as exc:
                    msg = " ".join(str(exc).split())[:300]
                    self._reap(slot)
                    self._spawn(slot)
                    self.respawns += 1
                    if attempt <= self.run_config.worker_retries:
                        log.warning("%s: worker %d died (attempt %d); retrying on a fresh worker",
                                    thm.name, slot, attempt)
                        pending.appendleft((thm, attempt + 1))
                    else:
                        log.error("%s: worker died on all %d attempts; recorded as a crash",
                                  thm.name, attempt)
                        rec = crash_record(thm, self.run_config, gen_name, attempt, f"worker died: {msg}")
                        on_result(JobResult(rec, None, None, ""))
                    idle.append(slot)
                    continue
                except ray.exceptions.RayTaskError as exc:  # the worker raised outside run_job
                    msg = " ".join(str(getattr(exc, "cause", exc)).split())[:300]
                    log.error("%s: worker %d failed: %s", thm.name, slot, msg)
                    rec = crash_record(thm, self.run_config, gen_name, attempt, f"worker failed: {msg}")
                    result = JobResult(rec, None, None, "")
                idle.append(slot)
                on_result(result)


RunFn = Callable[[Sequence[Theorem], OnResult], None]


@contextlib.contextmanager
def worker_pool(run_config: RunConfig, generator_config: GeneratorConfig,
                local_worker: Worker | None = None, gpus_per_worker: float = 0.0,
                generator_factory: Callable[[], Any] | None = None) -> Iterator[RunFn]:
    """``with worker_pool(cfg, gen_cfg) as run: run(theorems, on_result)`` for either mode."""
    if run_config.workers == 0:
        def run_local(theorems: Sequence[Theorem], on_result: OnResult) -> None:
            run_in_process(theorems, run_config, generator_config, on_result, worker=local_worker)

        yield run_local
        return
    pool = RayPool(run_config, generator_config, run_config.workers, run_config.ray_address,
                   gpus_per_worker=gpus_per_worker, generator_factory=generator_factory)
    ok = False
    try:
        pool.start()
        yield pool.run
        ok = True
    finally:
        pool.close(graceful=ok)


def effective_generator_config(cfg: GeneratorConfig, resolved_name: str) -> GeneratorConfig:
    """The config workers build: ``auto`` replaced by what the driver resolved."""
    return replace(cfg, name=resolved_name) if cfg.name == "auto" else cfg


def wait_gone(pids: Sequence[int], timeout: float = 10.0) -> list[int]:
    """Pids from ``pids`` still alive after ``timeout`` seconds (for tests/diagnostics)."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if os.path.exists(f"/proc/{p}") and not _zombie(p)]
        if alive:
            time.sleep(0.1)
    return alive


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
