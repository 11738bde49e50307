"""Dynamic batching: requests that arrive within a short window are decoded together."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchStats", "DynamicBatcher"]

log = logging.getLogger(__name__)

#: what the batcher runs: [(goal, k)] -> one result per request, in order
RunBatch = Callable[[Sequence[tuple[str, int]]], Sequence[Any]]


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0
    rows: int = 0
    busy_s: float = 0.0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "requests": self.requests,
            "rows": self.rows,
            "busy_s": round(self.busy_s, 4),
            "largest_batch": self.largest,
            "mean_batch": round(self.requests / self.batches, 3) if self.batches else 0.0,
            "batch_sizes": dict(sorted(self.sizes.items())),
        }


@dataclass
class _Item:
    goal: str
    k: int
    future: asyncio.Future[Any]


class DynamicBatcher:
    """Collects ``submit(goal, k)`` calls into batches for ``run``, one batch at a time.

    The first request of a batch waits at most ``max_wait`` seconds for others; requests that arrive
    while a batch is running form the next batch. A batch holds at most ``max_rows`` decoding rows
    (sum of ``k``), except that a single larger request still runs (alone). ``run`` executes in a
    worker thread so the event loop keeps accepting requests. An exception in ``run`` fails every
    request of that batch, and only those.
    """

    def __init__(self, run: RunBatch, *, max_wait: float = 0.005, max_rows: int = 128) -> None:
        self._run = run
        self.max_wait = max_wait
        self.max_rows = max_rows
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: _Item | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def submit(self, goal: str, k: int) -> Any:
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model-batch")
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._loop())
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put_nowait(_Item(goal, k, fut))
        return await fut

    async def _next_batch(self) -> list[_Item]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        first = self._pending or await self._queue.get()
        self._pending = None
        batch, rows = [first], first.k
        deadline = loop.time() + self.max_wait
        while rows < self.max_rows:
            try:
                remaining = deadline - loop.time()
                item = (
                    self._queue.get_nowait()
                    if remaining <= 0
                    else await asyncio.wait_for(self._queue.get(), remaining)
                )
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            if rows + item.k > self.max_rows:
                self._pending = item  # starts the next batch
                break
            batch.append(item)
            rows += item.k
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            live = [it for it in batch if not it.future.cancelled()]
            if not live:
                continue
            t0 = time.perf_counter()
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run, [(it.goal, it.k) for it in live]
                )
                if len(results) != len(live):
                    raise RuntimeError(f"batch of {len(live)} requests returned {len(results)} results")
            except Exception as exc:  # noqa: BLE001 - handed to every caller of this batch
                log.warning("model batch of %d requests failed: %s", len(live), exc)
                for it in live:
                    if not it.future.done():
                        it.future.set_exception(exc)
                continue
            finally:
                self._account(live, time.perf_counter() - t0)
            for it, res in zip(live, results, strict=True):
                if not it.future.done():
                    it.future.set_result(res)

    def _account(self, batch: list[_Item], elapsed: float) -> None:
        s = self.stats
        s.batches += 1
        s.requests += len(batch)
        s.rows += sum(it.k for it in batch)
        s.busy_s += elapsed
        s.largest = max(s.largest, len(batch))
        s.sizes[len(batch)] = s.sizes.get(len(batch), 0) + 1

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                log.debug("batching loop stopped")
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
