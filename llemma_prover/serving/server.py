"""The model server Ray actor, the pool of servers, and the generator search workers use."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.config import GeneratorConfig
from ..core.errors import GeneratorError
from ..core.types import Candidate
from ..generators.base import TacticGenerator
from .config import ServerConfig, select_engine, vllm_installed

__all__ = ["ModelServer", "ModelServerPool", "ServerGenerator", "start_model_servers"]

log = logging.getLogger(__name__)


class ModelServer:
    """Owns one model copy and batches the requests of every worker (run as an async Ray actor).

    Plain class: ``start_model_servers`` wraps it with ``ray.remote``; tests may also drive it directly
    under ``asyncio``. Construction is cheap; ``start()`` loads the model.
    """

    def __init__(self, gen: GeneratorConfig, backend: str, server: ServerConfig, index: int = 0) -> None:
        self.gen = gen
        self.backend = backend
        self.server = server
        self.index = index
        self._engine: Any = None
        self._batcher: Any = None

    async def start(self) -> dict[str, Any]:
        """Load the model (idempotent); returns ``describe()``."""
        if self._engine is None:
            import torch

            from ..generators.prompts import prompt_for_model
            from .batcher import DynamicBatcher
            from .engines import build_engine

            engine = select_engine(
                self.server.engine, gpu=torch.cuda.is_available(), vllm_available=vllm_installed()
            )
            prompt = prompt_for_model(self.backend, self.gen.model)
            self._engine = build_engine(engine, self.gen, prompt, self.server)
            self._batcher = DynamicBatcher(
                self._engine.run, max_wait=self.server.max_wait, max_rows=self.server.max_batch_rows
            )
        return self.describe()

    def _require(self) -> Any:
        if self._batcher is None:
            raise GeneratorError("model server not started")
        return self._batcher

    async def generate(self, goal: str, k: int) -> list[tuple[str, float]]:
        """Up to ``k`` (tactic, mean token log-prob) pairs for ``goal``, best first."""
        result: list[tuple[str, float]] = await self._require().submit(goal, k)
        return result

    async def generate_many(self, goals: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        """Several goals of one worker; they join the same batches as everyone else's."""
        import asyncio

        batcher = self._require()
        return list(await asyncio.gather(*(batcher.submit(g, k) for g in goals)))

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "server": self.index,
            "pid": os.getpid(),
            "max_wait": self.server.max_wait,
            "max_batch_rows": self.server.max_batch_rows,
        }
        if self._engine is not None:
            d.update(self._engine.describe())
        return d

    async def stats(self) -> dict[str, Any]:
        d: dict[str, Any] = {"server": self.index}
        if self._batcher is not None:
            d.update(self._batcher.stats.as_dict())
        if self._engine is not None:
            d.update(self._engine.stats())
        return d

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.aclose()
            self._batcher = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None


class ServerGenerator(TacticGenerator):
    """A ``TacticGenerator`` that sends requests to model servers (what search workers hold).

    Picklable (it holds only Ray actor handles), needs no GPU. Calls are spread over the servers in
    turn, each instance starting at a different server.
    """

    name = "llemma"

    def __init__(self, handles: Sequence[Any], description: dict[str, Any], start_at: int = 0) -> None:
        if not handles:
            raise GeneratorError("ServerGenerator needs at least one model server")
        self.handles = list(handles)
        self.description = dict(description)
        self._turn = start_at % len(self.handles)

    def _next(self) -> Any:
        h = self.handles[self._turn]
        self._turn = (self._turn + 1) % len(self.handles)
        return h

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        return self._get([self._next().generate.remote(goal_text, k)])[0]

    def generate_batch(self, goal_texts: Sequence[str], k: int) -> list[list[Candidate]]:
        return self._get([self._next().generate.remote(g, k) for g in goal_texts])

    def _get(self, refs: list[Any]) -> list[list[Candidate]]:
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError

        try:
            results = ray.get(refs)
        except (ActorDiedError, ActorUnavailableError) as exc:
            raise GeneratorError(f"a model server is gone: {exc}") from exc
        return [[Candidate(tactic=t, score=s) for t, s in pairs] for pairs in results]

    def describe(self) -> dict[str, object]:
        return dict(self.description)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class ModelServerPool:
    """The running servers. ``generator()`` for each worker; ``close()`` stops them all."""

    handles: list[Any]
    descriptions: list[dict[str, Any]]
    server: ServerConfig
    _counter: Any = field(default_factory=itertools.count)

    def generator(self) -> ServerGenerator:
        """A generator for one worker (successive calls start at different servers)."""
        return ServerGenerator(self.handles, self.describe(), start_at=next(self._counter))

    def describe(self) -> dict[str, Any]:
        first = dict(self.descriptions[0]) if self.descriptions else {}
        first.pop("server", None)
        first.pop("pid", None)
        return {
            "name": "llemma",
            "model_server": True,
            "servers": len(self.handles),
            "server_config": self.server.to_dict(),
            **first,
        }

    def stats(self) -> list[dict[str, Any]]:
        import ray

        return list(ray.get([h.stats.remote() for h in self.handles]))

    def close(self) -> None:
        import ray

        handles, self.handles = self.handles, []
        for h in handles:
            try:
                ray.get(h.close.remote(), timeout=60)
            except Exception as exc:  # noqa: BLE001 - the actor is killed below either way
                log.warning("model server did not close cleanly: %s", exc)
            ray.kill(h, no_restart=True)

    def __enter__(self) -> ModelServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_model_servers(
    gen: GeneratorConfig, backend: str, server: ServerConfig | None = None
) -> ModelServerPool:
    """Start the model servers in the current Ray cluster (``ray.init`` must have run) and load them.

    One server per GPU the cluster has (``server.num_servers`` overrides; one on a CPU-only cluster),
    each holding one GPU. Raises ``GeneratorUnavailable`` (after stopping what started) when the model
    or the engine cannot load.
    """
    import ray

    server = server or ServerConfig()
    server.validate()
    gen.validate()
    if not ray.is_initialized():
        raise GeneratorError("start_model_servers needs a running Ray (call ray.init first)")
    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    count = server.num_servers or max(1, int(gpus))
    per_gpu = 1 if gpus >= 1 else 0
    actor_cls = ray.remote(num_gpus=per_gpu, num_cpus=server.num_cpus, max_restarts=0)(ModelServer)
    handles = [
        actor_cls.options(name=f"llemma-model-server-{os.getpid()}-{i}").remote(gen, backend, server, i)
        for i in range(count)
    ]
    pool = ModelServerPool(handles=handles, descriptions=[], server=server)
    try:
        pool.descriptions = list(ray.get([h.start.remote() for h in handles]))
    except BaseException:
        pool.close()
        raise
    log.info("started %d model server(s): %s", count, pool.describe())
    return pool
