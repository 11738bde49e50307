"""Doctor checks for the tactic model: the engine loads the model, beam search and sampling return k
distinct tactics with finite scores, and -- when both engines can run -- vLLM and hf agree.

``--model random:tiny`` / ``random:llemma-7b`` builds a Llama with random weights and a synthetic
tokenizer (``lm.synthetic.synthetic_tokenizer``: offline, 1 s), so the checks run on CPU here and on
a bare GPU machine.
Speed does not depend on the weights, but agreement between engines only means something with real
weights (random ones give near-ties).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.config import GeneratorConfig
from ..serving.config import ServerConfig, vllm_installed
from .checks import Checklist, Outcome, Verdict

__all__ = ["GOAL", "run_model_checks"]

#: the goal every model check decodes (Coq, with the shipped Coq few-shot prompt)
GOAL = "n : nat\n============================\nn + 0 = n"
SAMPLING_TEMPERATURE = 0.8
VLLM_HOW = "pip install 'vllm>=0.10,<0.34' on a Linux machine with a CUDA GPU, or use --engine hf"


def _random_shape(name: str) -> dict[str, Any]:
    from ..lm.synthetic import LLEMMA_7B_SHAPE, TINY_LLAMA_SHAPE

    shapes = {"tiny": TINY_LLAMA_SHAPE, "llemma-7b": LLEMMA_7B_SHAPE}
    if name not in shapes:
        raise ValueError(f"unknown random model {name!r}; choose random:tiny or random:llemma-7b")
    return dict(shapes[name])


def _configs(opts: Any, engine: str, tmp: Path) -> tuple[GeneratorConfig, ServerConfig, str]:
    """The generator/server configs the checks use, and a description of the model."""
    model = opts.model or GeneratorConfig().model
    if not model.startswith("random:"):
        gen = GeneratorConfig(
            name="llemma",
            model=model,
            device=opts.device,
            dtype=opts.dtype,
            max_new_tokens=32,
            batch_size=opts.k,
        )
        return gen, ServerConfig(engine=engine, num_cpus=0, gpu_memory_utilization=0.45), model
    from ..lm.synthetic import save_random_llama, synthetic_tokenizer

    name = model.removeprefix("random:")
    shape = _random_shape(name)
    tokenizer = synthetic_tokenizer()
    shape["vocab_size"] = max(int(shape.get("vocab_size", 0)), len(tokenizer))
    folder = tmp / "tokenizer"
    tokenizer.save_pretrained(folder)
    gen = GeneratorConfig(
        name="llemma",
        model=str(folder),
        device=opts.device,
        dtype=opts.dtype,
        max_new_tokens=8,
        batch_size=opts.k,
    )
    desc = f"random Llama {name} (synthetic tokenizer, {len(tokenizer)} ids)"
    if engine == "vllm":
        if name != "tiny":
            raise ValueError("vLLM loads weights from a folder: use random:tiny or a real --model with vllm")
        weights = save_random_llama(tmp / "model", shape, tokenizer=tokenizer)
        return (
            replace(gen, model=str(weights)),
            ServerConfig(engine="vllm", gpu_memory_utilization=0.45),
            desc,
        )
    return gen, ServerConfig(engine="hf", num_cpus=0, random_init=shape), desc


def _build(engine: str, gen: GeneratorConfig, server: ServerConfig) -> Any:
    from ..generators.prompts import load_prompt
    from ..serving.engines import build_engine

    return build_engine(engine, gen, load_prompt("coq"), server)


def _decode(eng: Any, k: int) -> list[tuple[str, float]]:
    (pairs,) = eng.run([(GOAL, k)])
    return list(pairs)


def _judge(pairs: list[tuple[str, float]], k: int, *, strict: bool) -> Verdict:
    tactics = [t for t, _ in pairs]
    scores = [s for _, s in pairs]
    finite = all(math.isfinite(s) and s <= 1e-6 for s in scores)
    distinct = len(set(" ".join(t.split()) for t in tactics))
    shown = ", ".join(f"{t[:24]!r}:{s:.2f}" for t, s in pairs[:3])
    seen = f"{distinct} distinct of {k}; scores finite and <= 0: {finite}; best {shown}"
    if not finite or distinct == 0:
        return Verdict(False, seen, pairs)
    if distinct < k:
        return Verdict(False, seen, pairs, otherwise=Outcome.FAIL if strict else Outcome.WARN)
    return Verdict(True, seen, pairs)


def run_model_checks(cl: Checklist, opts: Any) -> None:
    """The model checks of ``opts`` (``DoctorOptions``), appended to ``cl``."""
    engine = opts.engine or "hf"
    k = opts.k

    def available() -> Verdict:
        if engine == "hf":
            import torch
            import transformers

            return Verdict(True, f"torch {torch.__version__}, transformers {transformers.__version__}")
        from ..serving.vllm_engine import SUPPORTED_VLLM, vllm_version_supported

        if not vllm_installed():
            return Verdict(False, "vllm is not installed")
        import vllm

        version = str(getattr(vllm, "__version__", "?"))
        import torch

        if not torch.cuda.is_available():
            return Verdict(False, f"vllm {version} installed, but torch sees no CUDA GPU")
        return Verdict(vllm_version_supported(version), f"vllm {version} (supported {SUPPORTED_VLLM})")

    cl.run(
        f"{engine} engine available",
        f"the {engine} engine can be imported"
        + (" (vllm >=0.10,<0.34, a CUDA GPU)" if engine == "vllm" else ""),
        VLLM_HOW if engine == "vllm" else "pip install torch transformers",
        available,
    )

    with tempfile.TemporaryDirectory(prefix="llemma_doctor_model_") as tmpdir:
        tmp = Path(tmpdir)
        engines: list[Any] = []
        try:

            def load() -> Verdict:
                gen, server, desc = _configs(opts, engine, tmp)
                eng = _build(engine, gen, server)
                engines.append(eng)
                d = eng.describe()
                where = ", ".join(
                    f"{key} {d[key]}" for key in ("device", "dtype", "params", "vllm") if key in d
                )
                return Verdict(True, f"{desc}: {where}", (eng, gen, server))

            built = cl.run(
                "model loads",
                f"{engine} loads {opts.model or GeneratorConfig().model!r}",
                "see the error; a model id needs the weights downloaded once "
                "(huggingface-cli download ID --local-dir DIR, then --model DIR)",
                load,
                needs=[f"{engine} engine available"],
            )
            eng, gen, server = built if built else (None, None, None)

            beam_remedy = (
                "vLLM's beam search has no stop strings: beams that differ only after '\\n---' "
                "merge; compare with --engine hf"
                if engine == "vllm"
                else "the decoder returned duplicate or non-finite candidates; report this with the JSON"
            )
            cl.run(
                "beam search",
                f"k={k} beams at temperature 0 -> {k} distinct tactics, finite scores <= 0",
                beam_remedy,
                lambda: _judge(_decode(eng, k), k, strict=True),
                needs=["model loads"],
            )

            def sample() -> Verdict:
                if engine == "hf":
                    from ..generators.prompts import load_prompt
                    from ..serving.engines import HFEngine

                    s_eng = HFEngine(
                        eng.loaded, load_prompt("coq"), replace(gen, temperature=SAMPLING_TEMPERATURE), server
                    )
                else:
                    s_eng = eng
                    s_eng.gen = replace(eng.gen, temperature=SAMPLING_TEMPERATURE)
                try:
                    return _judge(_decode(s_eng, k), k, strict=False)
                finally:
                    if engine == "vllm":
                        s_eng.gen = gen

            cl.run(
                "sampling",
                f"n={k} samples at temperature {SAMPLING_TEMPERATURE} -> distinct tactics, "
                "finite scores <= 0 (fewer than k distinct: a warning)",
                "non-finite scores or no tactic: report this with the JSON",
                sample,
                needs=["model loads"],
            )

            _agreement(cl, opts, engine, eng, gen, tmp, engines)
        finally:
            for e in engines:
                e.close()


def _agreement(
    cl: Checklist, opts: Any, engine: str, eng: Any, gen: Any, tmp: Path, engines: list[Any]
) -> None:
    import importlib.util

    name = "vllm and hf agree"
    expected = "same prompt and weights: the same best tactic, >= half of the top k shared"
    gpu = False
    if importlib.util.find_spec("torch") is not None:
        import torch

        gpu = torch.cuda.is_available()
    if not (vllm_installed() and gpu):
        cl.add(
            name,
            expected,
            "not run: needs vllm installed and a CUDA GPU (both engines)",
            Outcome.SKIP,
            VLLM_HOW,
        )
        return
    if (opts.model or "").startswith("random:") and opts.model != "random:tiny":
        cl.add(
            name,
            expected,
            f"not run: vLLM would need {opts.model}'s random weights saved to disk",
            Outcome.SKIP,
            "compare the engines with --model random:tiny or real weights",
        )
        return
    if not cl.passed("beam search"):
        cl.add(name, expected, "not run: beam search did not pass", Outcome.SKIP, "fix the beam check first")
        return

    def agree() -> Verdict:
        other = "hf" if engine == "vllm" else "vllm"
        g2, s2, _ = _configs(opts, other, tmp / other)
        e2 = _build(other, g2, s2)
        engines.append(e2)
        mine, theirs = _decode(eng, opts.k), _decode(e2, opts.k)
        a, b = [t for t, _ in mine], [t for t, _ in theirs]
        shared = len(set(a) & set(b))
        same_top = bool(a and b and a[0] == b[0])
        seen = f"{engine} best {a[:1]}, {other} best {b[:1]}; {shared}/{opts.k} shared"
        return Verdict(same_top and shared * 2 >= opts.k, seen)

    cl.run(
        name,
        expected,
        "the engines decode differently: compare their prompts/tokenization and scores; "
        "with random weights near-ties make this meaningless (use real weights)",
        agree,
    )
