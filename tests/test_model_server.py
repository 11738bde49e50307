"""The batched model server: batching, engine selection, and equality with direct generation.

The server runs the real tiny random Llama (hidden 64, 2 layers) through the same ``from_pretrained``
path as the ``llemma`` generator; the Ray test starts a real loopback cluster in which several worker
actors share the servers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from llemma_prover.core.config import GeneratorConfig
from llemma_prover.core.errors import ConfigError, GeneratorError, GeneratorUnavailable
from llemma_prover.generators.llemma import LlemmaGenerator
from llemma_prover.generators.prompts import load_prompt
from llemma_prover.serving import ServerConfig, select_engine, use_model_server, vllm_installed
from llemma_prover.serving.batcher import DynamicBatcher
from llemma_prover.serving.server import ModelServer, ServerGenerator

GOALS = [
    "n : nat\n============================\nn + 0 = n",
    "x, y : R\nh : x < y\n============================\nx <= y",
    "============================\n(2 + 2 = 4)%Z",
    "a, b : Z\nh0 : a = 2\nh1 : b = 3\n============================\na * b = 6",
    "f : nat -> nat\nhf : forall n : nat, f n = n + 1\n============================\nf 2 = 3",
    "============================\nforall x : R, x ^ 2 >= 0",
]


# --------------------------------------------------------------------------------------------
# engine selection, flags, config (pure)
# --------------------------------------------------------------------------------------------


def test_engine_selection() -> None:
    assert select_engine("hf", gpu=True, vllm_available=True) == "hf"
    assert select_engine("auto", gpu=True, vllm_available=True) == "vllm"
    assert select_engine("auto", gpu=False, vllm_available=True) == "hf"
    assert select_engine("auto", gpu=True, vllm_available=False) == "hf"
    assert select_engine("vllm", gpu=True, vllm_available=True) == "vllm"
    with pytest.raises(GeneratorUnavailable, match="pip install vllm"):
        select_engine("vllm", gpu=True, vllm_available=False)
    with pytest.raises(GeneratorUnavailable, match="needs a CUDA GPU"):
        select_engine("vllm", gpu=False, vllm_available=True)
    with pytest.raises(ConfigError, match="unknown engine"):
        select_engine("tgi", gpu=True, vllm_available=True)


def test_vllm_absent_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from llemma_prover.serving.vllm_engine import VLLMEngine

    if not vllm_installed():
        with pytest.raises(GeneratorUnavailable, match="not installed"):
            select_engine("vllm", gpu=True, vllm_available=vllm_installed())
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes ``import vllm`` fail, installed or not
    with pytest.raises(GeneratorUnavailable, match="cannot import vllm"):
        VLLMEngine(load_prompt("coq"), GeneratorConfig(name="llemma"), ServerConfig(engine="vllm"))


def test_importing_serving_loads_no_heavy_module() -> None:
    import subprocess

    code = (
        "import sys, llemma_prover.serving, llemma_prover.serving.server, llemma_prover.serving.engines;"
        "print(sorted(m for m in ('torch', 'ray', 'transformers', 'vllm') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


def test_model_server_flag() -> None:
    assert use_model_server("auto", model=True, gpus=1) is True
    assert use_model_server("auto", model=True, gpus=0) is False
    assert use_model_server("auto", model=False, gpus=4) is False
    assert use_model_server("on", model=True, gpus=0) is True
    assert use_model_server("off", model=True, gpus=8) is False
    with pytest.raises(ConfigError, match="needs --generator llemma"):
        use_model_server("on", model=False, gpus=1)
    with pytest.raises(ConfigError):
        use_model_server("yes", model=True, gpus=1)


def test_server_config_validation() -> None:
    ServerConfig().validate()
    for bad in (dict(engine="x"), dict(num_servers=-1), dict(max_wait=-1.0), dict(max_batch_rows=0)):
        with pytest.raises(ConfigError):
            ServerConfig(**bad).validate()  # type: ignore[arg-type]
    assert ServerConfig(max_wait=0.01).to_dict()["max_wait"] == 0.01


# --------------------------------------------------------------------------------------------
# dynamic batching (the batcher is the unit under test; ``run`` records what it is given)
# --------------------------------------------------------------------------------------------


class _Recorder:
    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.delay = delay
        self.fail_on = fail_on
        self.threads: set[str] = set()

    def __call__(self, items: Sequence[tuple[str, int]]) -> list[str]:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(items))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on and any(g == self.fail_on for g, _ in items):
            raise RuntimeError("boom")
        return [f"{g}/{k}" for g, k in items]


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_requests_arriving_together_form_one_batch() -> None:
    rec = _Recorder()

    async def main() -> list[str]:
        b = DynamicBatcher(rec, max_wait=0.05, max_rows=100)
        try:
            return list(await asyncio.gather(*(b.submit(f"g{i}", 2) for i in range(5))))
        finally:
            await b.aclose()

    assert _run(main()) == [f"g{i}/2" for i in range(5)]
    assert len(rec.batches) == 1 and len(rec.batches[0]) == 5
    assert rec.threads and "MainThread" not in rec.threads  # the model runs off the event loop


def test_batches_respect_the_row_budget_and_the_window() -> None:
    rec = _Recorder(delay=0.05)

    async def main() -> None:
        b = DynamicBatcher(rec, max_wait=0.02, max_rows=8)
        try:
            first = [asyncio.ensure_future(b.submit(f"a{i}", 4)) for i in range(5)]
            await asyncio.sleep(0.03)  # the first batch is running; these form the following ones
            late = [asyncio.ensure_future(b.submit(f"b{i}", 1)) for i in range(3)]
            big = asyncio.ensure_future(b.submit("huge", 20))  # larger than the budget: runs alone
            await asyncio.gather(*first, *late, big)
            assert b.stats.requests == 9
        finally:
            await b.aclose()

    _run(main())
    sizes = [sum(k for _, k in batch) for batch in rec.batches]
    assert all(s <= 8 for s, batch in zip(sizes, rec.batches, strict=True) if len(batch) > 1)
    assert [("huge", 20)] in rec.batches
    assert [g for batch in rec.batches for g, _ in batch if g.startswith("a")] == [f"a{i}" for i in range(5)]


def test_a_failing_batch_fails_only_its_requests() -> None:
    rec = _Recorder(fail_on="bad")

    async def main() -> None:
        b = DynamicBatcher(rec, max_wait=0.02, max_rows=100)
        try:
            res = await asyncio.gather(b.submit("bad", 1), b.submit("ok", 1), return_exceptions=True)
            assert all(isinstance(r, RuntimeError) for r in res)
            assert await b.submit("later", 1) == "later/1"  # the server keeps serving
        finally:
            await b.aclose()

    _run(main())


# --------------------------------------------------------------------------------------------
# the server with a real tiny model
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from llemma_prover.lm.synthetic import TINY_LLAMA_SHAPE, save_random_llama

    torch.set_num_threads(1)
    return save_random_llama(tmp_path_factory.mktemp("tiny-llama"), TINY_LLAMA_SHAPE, seed=0)


def _gen_config(model_dir: Path, **kw: object) -> GeneratorConfig:
    base = GeneratorConfig(
        name="llemma", model=str(model_dir), device="cpu", max_new_tokens=8, torch_threads=1
    )
    return dataclasses.replace(base, **kw)


def _direct(cfg: GeneratorConfig, goals: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """Direct generation, one goal at a time, no prefix cache: the reference."""
    gen = LlemmaGenerator(cfg, "coq", prefix_cache=False)
    gen.start()
    try:
        return [[(c.tactic, c.score) for c in gen.generate(g, k)] for g in goals]
    finally:
        gen.close()


def _same(a: list[list[tuple[str, float]]], b: list[list[tuple[str, float]]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert [t for t, _ in x] == [t for t, _ in y]
        assert [s for _, s in x] == pytest.approx([s for _, s in y], abs=1e-4)


@pytest.mark.model
@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_server_batches_and_matches_direct_generation(tiny_model_dir: Path, temperature: float) -> None:
    cfg = _gen_config(tiny_model_dir, temperature=temperature, seed=3)
    goals, k = GOALS[:4], 3

    async def main() -> tuple[list[list[tuple[str, float]]], dict[str, object], dict[str, object]]:
        server = ModelServer(cfg, "coq", ServerConfig(engine="hf", max_wait=0.2), index=0)
        try:
            desc = await server.start()
            out = list(await asyncio.gather(*(server.generate(g, k) for g in goals)))
            return out, desc, await server.stats()
        finally:
            await server.close()

    served, desc, stats = asyncio.run(main())
    assert desc["engine"] == "hf" and desc["device"] == "cpu" and desc["prefix_cache"] == "shared"
    assert stats["requests"] == 4 and stats["batches"] == 1  # decoded together, prefix cached
    _same(served, _direct(cfg, goals, k))
    assert all(s <= 0 for pairs in served for _, s in pairs)


@pytest.mark.model
def test_server_with_explicit_vllm_on_cpu_refuses(tiny_model_dir: Path) -> None:
    async def main() -> None:
        server = ModelServer(_gen_config(tiny_model_dir), "coq", ServerConfig(engine="vllm"))
        await server.start()

    with pytest.raises(GeneratorUnavailable, match="vllm"):
        asyncio.run(main())


# --------------------------------------------------------------------------------------------
# Ray: several workers share the servers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():  # type: ignore[no-untyped-def]
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(
        address="local",  # a new loopback cluster, never one another process started
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=200 * 1024 * 1024,
    )
    yield ray
    ray.shutdown()


def _gone(pid: int, timeout: float = 20.0) -> bool:
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.ray
@pytest.mark.model
@pytest.mark.slow
def test_workers_share_servers_over_ray(ray_cluster, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from llemma_prover.serving import start_model_servers

    ray = ray_cluster
    cfg = _gen_config(tiny_model_dir)

    @ray.remote(num_cpus=0)
    class Worker:  # what a search worker does with its generator: call it, no model of its own
        def __init__(self, generator) -> None:  # type: ignore[no-untyped-def]
            self.generator = generator

        def ready(self) -> int:
            return os.getpid()

        def run(self, goals: list[str], k: int) -> list[list[tuple[str, float]]]:
            return [[(c.tactic, c.score) for c in self.generator.generate(g, k)] for g in goals]

    pool = start_model_servers(cfg, "coq", ServerConfig(engine="hf", num_servers=2, max_wait=0.2, num_cpus=0))
    try:
        desc = pool.describe()
        assert desc["servers"] == 2 and desc["engine"] == "hf" and desc["model_server"] is True
        server_pids = [d["pid"] for d in pool.descriptions]
        assert len(set(server_pids)) == 2 and os.getpid() not in server_pids
        workers = [Worker.remote(pool.generator()) for _ in range(3)]
        ray.get([w.ready.remote() for w in workers])
        assert len(_alive_actors(ray)) >= 5  # 2 servers + 3 workers (also checks the helper itself)
        share = {0: GOALS[0:2], 1: GOALS[2:4], 2: GOALS[4:6]}
        results = ray.get([w.run.remote(share[i], 3) for i, w in enumerate(workers)])
        for i, got in enumerate(results):
            _same(got, _direct(cfg, share[i], 3))
        stats = pool.stats()
        assert sum(s["requests"] for s in stats) == 6
        assert all(s["requests"] >= 1 for s in stats)  # requests spread over both servers
        assert max(s["largest_batch"] for s in stats) >= 2  # requests of different workers batched
        for w in workers:
            ray.kill(w)
        # a server that dies is an error of the generator, not a hang or an empty answer
        dead = pool.handles[0]
        ray.kill(dead, no_restart=True)
        with pytest.raises(GeneratorError, match="model server is gone"):
            ServerGenerator([dead], {}).generate(GOALS[0], 2)
    finally:
        pool.close()
    assert all(_gone(pid) for pid in server_pids), "a model server process outlived close()"


@pytest.mark.ray
@pytest.mark.model
def test_start_failure_is_reported_and_cleaned_up(ray_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from llemma_prover.serving import start_model_servers

    ray = ray_cluster
    before = _alive_actors(ray)
    with pytest.raises(GeneratorUnavailable, match="no such file or directory"):
        start_model_servers(_gen_config(tmp_path / "missing"), "coq", ServerConfig(engine="hf", num_cpus=0))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive_actors(ray) - before:
        time.sleep(0.2)
    assert not _alive_actors(ray) - before, "a model server outlived the failed start"


def _alive_actors(ray) -> set[str]:  # type: ignore[no-untyped-def]
    """Ids of the cluster's live actors (from the GCS; no dashboard needed)."""
    from ray._private import state

    return {aid for aid, info in state.actors().items() if info.get("State") not in ("DEAD", 4)}
