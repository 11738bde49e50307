"""The ``vllm`` engine: beam search and sampling through vLLM's offline ``LLM`` API.

Written against the API of vLLM 0.33 as its source and documentation describe it (``SUPPORTED_VLLM``);
**it has never run on a GPU** (none was available where it was written). Our side is unit-tested against
stand-in objects with the documented attributes (``tests/test_vllm_engine.py``). What it relies on:

* ``LLM(model=..., max_logprobs=N, enable_prefix_caching=True, ...)``. ``LLM.beam_search`` is a loop
  of one-token ``generate`` calls that each ask for ``2 * beam_width`` logprobs, and an ``LLM`` refuses
  more than ``max_logprobs`` (default 20), so the engine is built with
  ``max_logprobs = 2 * ServerConfig.max_beam_width`` and refuses a wider request with a clear error.
* ``LLM.beam_search(prompts, BeamSearchParams(beam_width=k, max_tokens=...))`` takes a list of prompts:
  all requests of a batch with the same ``k`` go into one call. It returns one ``BeamSearchOutput`` per
  prompt, whose ``sequences`` (``BeamSearchSequence``) hold ``tokens`` (prompt + generated ids),
  ``logprobs`` (one ``{token_id: Logprob}`` dict per generated step) and ``cum_logprob``.
* ``BeamSearchParams`` has no stop strings, so a beam runs on past the stop marker ``"\\n---"``; its
  ``text`` and ``cum_logprob`` cover everything it generated. The tactic is therefore cut here: the
  generated ids are decoded with the tokenizer (per-step ``Logprob`` entries no longer carry decoded
  text), the text before the marker is the tactic, and the score is the mean log-prob of the fewest
  leading tokens whose text covers it -- the tactic's own tokens, as in the ``hf`` engine. Beams that
  differ only after the marker give the same tactic; they are merged (so fewer than ``k`` may return).
* sampling (``temperature > 0``): ``SamplingParams(n=k, temperature=T, stop=["\\n---"], logprobs=0,
  seed=...)`` (``logprobs=0``: the chosen token's log-prob at each step). vLLM raises for ``n > 1`` at
  temperature 0, so temperature 0 always means beam search.

Only ``vllm`` is imported here, and only when an engine is built.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..core.config import GeneratorConfig
from ..core.errors import ConfigError, GeneratorError, GeneratorUnavailable
from ..core.types import Candidate
from ..generators.base import dedupe
from ..generators.prompts import STOP_MARKER, FewShotPrompt
from .config import ServerConfig
from .engine_base import Engine

__all__ = ["SUPPORTED_VLLM", "VLLMEngine", "tactic_from_tokens", "vllm_version_supported"]

log = logging.getLogger(__name__)

#: the vLLM releases whose documented API this engine follows (pyproject's ``vllm`` extra says the same)
SUPPORTED_VLLM = ">=0.10,<0.34"
_MIN, _MAX = (0, 10), (0, 34)

Pairs = list[tuple[str, float]]


def vllm_version_supported(version: str) -> bool:
    """Whether ``version`` (e.g. ``"0.33.1"``, ``"0.11.0rc2"``) is in ``SUPPORTED_VLLM``."""
    m = re.match(r"(\d+)\.(\d+)", version)
    if m is None:
        return False
    v = (int(m.group(1)), int(m.group(2)))
    return _MIN <= v < _MAX


def tactic_from_tokens(
    tokens: Sequence[int],
    logps: Sequence[float],
    decode: Callable[[Sequence[int]], str],
    *,
    stop: str = STOP_MARKER,
    eos_id: int | None = None,
) -> tuple[str, float] | None:
    """(tactic, mean log-prob of the tactic's own tokens) of one generated sequence, or None if empty.

    ``tokens``/``logps``: the generated ids and their log-probs; ``decode``: ids -> text (special
    tokens skipped). The tactic is the text before ``stop``; its tokens are the fewest leading ids whose
    text starts with it (decoding is prefix-monotone). Without ``stop``, every id but a final EOS counts.
    """
    toks = list(tokens)
    if eos_id is not None and eos_id in toks:
        toks = toks[: toks.index(eos_id)]
    text = decode(toks)
    cut = text.find(stop)
    if cut >= 0:
        target = text[:cut].rstrip()
        lo, hi = 0, len(toks)
        while lo < hi:
            mid = (lo + hi) // 2
            if decode(toks[:mid]).rstrip().startswith(target):
                hi = mid
            else:
                lo = mid + 1
        ntok, tactic = lo, target
    else:
        ntok, tactic = len(toks), text
    tactic = tactic.strip()
    if not tactic or ntok == 0:
        return None
    return tactic, sum(logps[:ntok]) / ntok


class VLLMEngine(Engine):
    """vLLM with automatic prefix caching."""

    name = "vllm"

    def __init__(self, prompt: FewShotPrompt, gen: GeneratorConfig, server: ServerConfig) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise GeneratorUnavailable(
                f"--engine vllm: cannot import vllm ({exc}); `pip install 'vllm{SUPPORTED_VLLM}'` on a CUDA "
                "machine, or use --engine hf"
            ) from exc
        if server.random_init is not None:
            raise ConfigError("the vllm engine loads weights from --model; random_init is for --engine hf")
        self._vllm = vllm
        self.version = str(getattr(vllm, "__version__", "?"))
        if not vllm_version_supported(self.version):
            log.warning("vllm %s is outside the supported range %s; the API may differ",
                        self.version, SUPPORTED_VLLM)
        self.prompt = prompt
        self.gen = gen
        self.max_beam_width = server.max_beam_width
        self.max_logprobs = 2 * server.max_beam_width
        dtype = "bfloat16" if gen.dtype == "auto" else gen.dtype
        self.llm = vllm.LLM(
            model=gen.model,
            dtype=dtype,
            seed=gen.seed,
            enable_prefix_caching=True,
            gpu_memory_utilization=server.gpu_memory_utilization,
            max_logprobs=self.max_logprobs,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.eos_id = getattr(self.tokenizer, "eos_token_id", None)
        self.prefix_ids = list(self.tokenizer(prompt.prefix)["input_ids"])
        self.max_model_len = int(self._model_len() or 4096)
        self._stats = {"beam_search_calls": 0, "generate_calls": 0, "requests": 0}

    def _model_len(self) -> int | None:
        cfg = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        return getattr(cfg, "max_model_len", None)

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def _prompt_ids(self, goal: str) -> dict[str, Any]:
        """A ``TokensPrompt``: the rendered prompt's ids, the goal cut from the front if it would not fit."""
        ids = list(self.tokenizer(self.prompt.render(goal))["input_ids"])
        budget = self.max_model_len - self.gen.max_new_tokens
        if len(ids) > budget:
            n = len(self.prefix_ids)
            keep = budget - n
            if keep < 16:
                raise GeneratorError(f"the few-shot prefix ({n} tokens) leaves no room for a goal within "
                                     f"{self.max_model_len} positions")
            ids = ids[:n] + ids[len(ids) - keep:]
        return {"prompt_token_ids": ids}

    def _pairs(self, seqs: Sequence[tuple[Sequence[int], Sequence[float]]], k: int) -> Pairs:
        cands = []
        for toks, logps in seqs:
            got = tactic_from_tokens(toks, logps, self._decode, eos_id=self.eos_id)
            if got is not None:
                cands.append(Candidate(*got))
        return [(c.tactic, c.score) for c in dedupe(cands, k)]

    def run(self, requests: Sequence[tuple[str, int]]) -> list[Pairs]:
        self._stats["requests"] += len(requests)
        if self.gen.temperature > 0:
            return self._sample(requests)
        return self._beam(requests)

    def _beam(self, requests: Sequence[tuple[str, int]]) -> list[Pairs]:
        from vllm.sampling_params import BeamSearchParams

        results: list[Pairs | None] = [None] * len(requests)
        by_k: dict[int, list[int]] = {}
        for i, (_, k) in enumerate(requests):
            if k > self.max_beam_width:
                raise GeneratorError(
                    f"beam width {k} > {self.max_beam_width}: vLLM's beam search needs 2 x width logprobs "
                    f"(max_logprobs={self.max_logprobs}); raise ServerConfig.max_beam_width"
                )
            by_k.setdefault(k, []).append(i)
        for k, idx in by_k.items():
            prompts = [self._prompt_ids(requests[i][0]) for i in idx]
            params = BeamSearchParams(beam_width=k, max_tokens=self.gen.max_new_tokens)
            outs = self.llm.beam_search(prompts, params)
            self._stats["beam_search_calls"] += 1
            if len(outs) != len(idx):
                raise GeneratorError(f"vllm beam_search returned {len(outs)} outputs for {len(idx)} prompts")
            for i, out in zip(idx, outs, strict=True):
                seqs = []
                for seq in out.sequences:
                    steps = list(seq.logprobs)
                    gen_ids = list(seq.tokens[len(seq.tokens) - len(steps):]) if steps else []
                    try:
                        logps = [float(step[t].logprob) for step, t in zip(steps, gen_ids, strict=True)]
                    except KeyError as exc:
                        raise GeneratorError(f"vllm beam lacks the log-prob of its own token {exc}") from exc
                    seqs.append((gen_ids, logps))
                results[i] = self._pairs(seqs, k)
        return [r if r is not None else [] for r in results]

    def _sample(self, requests: Sequence[tuple[str, int]]) -> list[Pairs]:
        from vllm import SamplingParams

        temperature = self.gen.temperature
        assert temperature > 0, "n > 1 at temperature 0 raises in vLLM: temperature 0 is beam search"
        params = [
            SamplingParams(n=k, temperature=temperature, max_tokens=self.gen.max_new_tokens,
                           stop=[STOP_MARKER], seed=self.gen.seed, logprobs=0)
            for _, k in requests
        ]
        prompts = [self._prompt_ids(goal) for goal, _ in requests]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        self._stats["generate_calls"] += 1
        results: list[Pairs] = []
        for out, (_, k) in zip(outs, requests, strict=True):
            seqs = []
            for o in out.outputs:
                ids = list(o.token_ids)
                if o.logprobs is None:
                    raise GeneratorError("vllm returned no logprobs; SamplingParams(logprobs=0) asked")
                seqs.append((ids, [float(step[t].logprob) for step, t in zip(o.logprobs, ids, strict=True)]))
            results.append(self._pairs(seqs, k))
        return results

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "model": self.gen.model, "vllm": self.version,
                "vllm_supported": SUPPORTED_VLLM, "max_logprobs": self.max_logprobs,
                "max_beam_width": self.max_beam_width, "prefix_cache": "vllm-automatic"}

    def stats(self) -> dict[str, Any]:
        return dict(self._stats)

    def close(self) -> None:
        self.llm = None
