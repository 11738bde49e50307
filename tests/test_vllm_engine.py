"""The vllm engine against stand-ins for vLLM's documented API objects (vllm is not needed).

The stand-ins carry the documented attributes of vLLM 0.33: ``LLM(max_logprobs=20 by default)``,
``LLM.beam_search(prompts, BeamSearchParams)`` -> ``[BeamSearchOutput(sequences=[BeamSearchSequence(
tokens=prompt+generated, logprobs=[{id: Logprob}] per generated step, cum_logprob, text)])]`` (beam search
asks for ``2 * beam_width`` logprobs per step and fails above ``max_logprobs``), ``SamplingParams``
(``n > 1`` at temperature 0 raises), ``LLM.generate`` -> ``[RequestOutput(outputs=[CompletionOutput(
token_ids, logprobs, cumulative_logprob, text)])]``, and ``Logprob(logprob, rank, decoded_token=None)``.
One test per API point the engine relies on.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from llemma_prover.core.config import GeneratorConfig
from llemma_prover.core.errors import GeneratorError
from llemma_prover.generators.prompts import load_prompt
from llemma_prover.serving.config import ServerConfig
from llemma_prover.serving.vllm_engine import (
    SUPPORTED_VLLM,
    VLLMEngine,
    tactic_from_tokens,
    vllm_version_supported,
)

# -- a tokenizer: one id per character, plus a few multi-character pieces --------------------------

PIECES = ["<eos>", "li", "a\n", "--", "-\n"] + [chr(c) for c in range(32, 127)] + ["\n"]
EOS = 0


class Tok:
    eos_token_id = EOS

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": [PIECES.index(c) for c in text]}

    def ids(self, *pieces: str) -> list[int]:
        return [PIECES.index(p) for p in pieces]

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join("" if (i == EOS and skip_special_tokens) else PIECES[i] for i in ids)


TOK = Tok()

# -- stand-ins for vLLM's documented objects -----------------------------------------------------


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None  # no longer filled per step (2026-07)


@dataclass
class BeamSearchSequence:
    tokens: list[int]
    logprobs: list[dict[int, Logprob]]
    cum_logprob: float = 0.0
    text: str | None = None


@dataclass
class BeamSearchOutput:
    sequences: list[BeamSearchSequence]


@dataclass
class BeamSearchParams:
    beam_width: int
    max_tokens: int
    ignore_eos: bool = False
    temperature: float = 0.0
    length_penalty: float = 1.0
    include_stop_str_in_output: bool = False


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    max_tokens: int | None = 16
    stop: list[str] | None = None
    seed: int | None = None
    logprobs: int | None = None

    def __post_init__(self) -> None:
        if self.n > 1 and self.temperature < 1e-5:
            raise ValueError(f"n must be 1 when using greedy sampling, got {self.n}.")


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = "stop"


@dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool = True


def steps(ids: list[int], lps: list[float]) -> list[dict[int, Logprob]]:
    """Per-step dicts as beam search keeps them: the chosen token plus an alternative."""
    alt = PIECES.index("z")
    return [{t: Logprob(lp, rank=1), alt: Logprob(lp - 3.0, rank=2)} for t, lp in zip(ids, lps, strict=True)]


@dataclass
class FakeLLM:
    """``vllm.LLM`` with canned continuations: (ids, log-probs) per beam, the same for every prompt."""

    model: str
    max_logprobs: int = 20
    kwargs: dict[str, Any] = field(default_factory=dict)
    beams: list[tuple[list[int], list[float]]] = field(default_factory=list)
    calls: list[tuple[str, Any, Any]] = field(default_factory=list)

    def get_tokenizer(self) -> Tok:
        return TOK

    def beam_search(self, prompts: list[dict[str, Any]], params: BeamSearchParams) -> list[BeamSearchOutput]:
        # documented: each step is generate(..., SamplingParams(logprobs=2 * beam_width, max_tokens=1))
        if 2 * params.beam_width > self.max_logprobs:
            raise ValueError(f"Requested sample logprobs of {2 * params.beam_width}, which is greater than "
                             f"max allowed: {self.max_logprobs}")
        self.calls.append(("beam_search", prompts, params))
        out = []
        for p in prompts:
            seqs = []
            for ids, lps in self.beams[: params.beam_width]:
                ids, lps = ids[: params.max_tokens], lps[: params.max_tokens]  # no stop strings: runs on
                toks = list(p["prompt_token_ids"]) + ids
                seqs.append(BeamSearchSequence(toks, steps(ids, lps), sum(lps), TOK.decode(toks)))
            out.append(BeamSearchOutput(seqs))
        return out

    def generate(self, prompts: list[dict[str, Any]], params: list[SamplingParams],
                 use_tqdm: bool = True) -> list[RequestOutput]:
        self.calls.append(("generate", prompts, params))
        out = []
        for i, (p, sp) in enumerate(zip(prompts, params, strict=True)):
            if sp.logprobs is not None and sp.logprobs > self.max_logprobs:
                raise ValueError("too many logprobs")
            comps = []
            for j, (ids, lps) in enumerate(self.beams[: sp.n]):
                # a stop string ends the text; the token that completed it is still in token_ids
                text = TOK.decode(ids)
                cut = text.find("\n---")
                comps.append(CompletionOutput(j, text[:cut] if cut >= 0 else text, ids, sum(lps),
                                              [{t: Logprob(lp)} for t, lp in zip(ids, lps, strict=True)]))
            out.append(RequestOutput(str(i), p["prompt_token_ids"], comps))
        return out


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    made: list[FakeLLM] = []

    def LLM(model: str, max_logprobs: int = 20, **kwargs: Any) -> FakeLLM:  # noqa: N802 - vLLM's name
        llm = FakeLLM(model, max_logprobs, kwargs)
        made.append(llm)
        return llm

    mod = types.ModuleType("vllm")
    mod.__version__ = "0.33.0"  # type: ignore[attr-defined]
    mod.LLM = LLM  # type: ignore[attr-defined]
    mod.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    sp = types.ModuleType("vllm.sampling_params")
    sp.BeamSearchParams = BeamSearchParams  # type: ignore[attr-defined]
    sp.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    mod.sampling_params = sp  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    return types.SimpleNamespace(module=mod, made=made)


def engine(fake: types.SimpleNamespace, beams: list[tuple[list[int], list[float]]], *,
           temperature: float = 0.0, **server: Any) -> tuple[VLLMEngine, FakeLLM]:
    gen = GeneratorConfig(name="llemma", model="/models/llemma", temperature=temperature, max_new_tokens=12)
    eng = VLLMEngine(load_prompt("coq"), gen, ServerConfig(engine="vllm", **server))
    llm = fake.made[-1]
    llm.beams = beams
    return eng, llm


LIA = (TOK.ids("l", "i", "a", "\n", "-", "-", "-", "\n", "T", "a", "c"), [-0.1, -0.2, -0.3] + [-4.0] * 8)
RING = (TOK.ids("r", "i", "n", "g", "\n", "-", "-", "-", "x"), [-0.5, -0.5, -0.5, -0.5] + [-0.01] * 5)
LIA_AGAIN = (TOK.ids("l", "i", "a", "\n", "-", "-", "-", "\n", "Z"), [-0.1, -0.2, -0.3] + [-0.01] * 6)


def test_max_logprobs_is_set_for_the_widest_beam(fake_vllm: types.SimpleNamespace) -> None:
    eng, llm = engine(fake_vllm, [LIA, RING])
    assert llm.max_logprobs == 128 == eng.max_logprobs  # default max_beam_width 64 -> 2 x 64
    assert llm.kwargs["enable_prefix_caching"] is True
    out = eng.run([("n : nat\n============================\nn + 0 = n", 32)])  # Llemma's k = 32
    assert [t for t, _ in out[0]] == ["lia", "ring"]  # ranked by tactic score, not cum_logprob
    narrow, llm2 = engine(fake_vllm, [LIA], max_beam_width=8)
    assert llm2.max_logprobs == 16
    with pytest.raises(GeneratorError, match="max_logprobs=16"):
        narrow.run([("goal", 16)])
    assert llm2.calls == []  # refused before vLLM sees it


def test_requests_with_the_same_k_share_one_beam_search_call(fake_vllm: types.SimpleNamespace) -> None:
    eng, llm = engine(fake_vllm, [LIA, RING])
    out = eng.run([("g1", 4), ("g2", 1), ("g3", 4)])
    calls = [(name, len(prompts), params.beam_width) for name, prompts, params in llm.calls]
    assert calls == [("beam_search", 2, 4), ("beam_search", 1, 1)]
    # one result per request, in request order
    assert [[t for t, _ in r] for r in out] == [["lia", "ring"], ["lia"], ["lia", "ring"]]
    prompts = llm.calls[0][1]
    assert prompts[0]["prompt_token_ids"] == TOK(load_prompt("coq").render("g1"))["input_ids"]
    assert prompts[1]["prompt_token_ids"] == TOK(load_prompt("coq").render("g3"))["input_ids"]


def test_beam_cut_at_the_stop_marker_and_scored_on_the_tactic_tokens(
    fake_vllm: types.SimpleNamespace,
) -> None:
    eng, _ = engine(fake_vllm, [LIA, RING, LIA_AGAIN])
    (pairs,) = eng.run([("goal", 3)])
    scores = dict(pairs)
    # "lia" = its 3 own tokens (mean -0.2), not the beam's cum_logprob over 11 tokens (-32.6 / 11)
    assert scores["lia"] == pytest.approx(-0.2)
    assert scores["ring"] == pytest.approx(-0.5)
    # two beams that differ only after the marker are one tactic
    assert [t for t, _ in pairs] == ["lia", "ring"]


def test_tactic_tokens_end_where_the_tactic_text_is_covered() -> None:
    # "li" + "a\n" + "--" + "-\n": the second token already covers "lia" (and starts the marker)
    ids = TOK.ids("li", "a\n", "--", "-\n", "x")
    got = tactic_from_tokens(ids, [-1.0, -2.0, -9.0, -9.0, -9.0], TOK.decode, eos_id=EOS)
    assert got == ("lia", pytest.approx(-1.5))
    # no marker: every token but what follows EOS
    got = tactic_from_tokens(TOK.ids("l", "i") + [EOS] + TOK.ids("q"), [-1.0, -3.0, -0.5, -7.0], TOK.decode,
                             eos_id=EOS)
    assert got == ("li", pytest.approx(-2.0))
    assert tactic_from_tokens(TOK.ids("\n", "-", "-", "-"), [-1.0] * 4, TOK.decode) is None


def test_sampling_only_above_temperature_zero(fake_vllm: types.SimpleNamespace) -> None:
    eng, llm = engine(fake_vllm, [LIA, RING], temperature=0.0)
    eng.run([("g", 2)])
    assert [c[0] for c in llm.calls] == ["beam_search"]  # temperature 0: never SamplingParams(n > 1)
    with pytest.raises(ValueError, match="greedy"):
        SamplingParams(n=2, temperature=0.0)  # what vLLM would do, and why the engine never asks it
    eng, llm = engine(fake_vllm, [LIA, RING], temperature=0.7)
    (pairs,) = eng.run([("g", 2)])
    name, _, params = llm.calls[0]
    assert name == "generate" and params[0].n == 2 and params[0].temperature == 0.7
    assert params[0].stop == ["\n---"] and params[0].logprobs == 0
    assert dict(pairs)["lia"] == pytest.approx(-0.2) and dict(pairs)["ring"] == pytest.approx(-0.5)


def test_supported_versions_declared_and_checked(fake_vllm: types.SimpleNamespace,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    assert SUPPORTED_VLLM == ">=0.10,<0.34"
    assert vllm_version_supported("0.33.0") and vllm_version_supported("0.10.1rc1")
    assert not vllm_version_supported("0.9.2") and not vllm_version_supported("0.34.0")
    eng, _ = engine(fake_vllm, [LIA])
    assert eng.describe()["vllm"] == "0.33.0" and eng.describe()["max_logprobs"] == 128
    fake_vllm.module.__version__ = "0.6.0"
    with caplog.at_level(logging.WARNING):
        engine(fake_vllm, [LIA])
    assert "outside the supported range" in caplog.text


def test_importing_the_engine_does_not_import_vllm() -> None:
    code = ("import sys, llemma_prover.serving.vllm_engine;"
            "print('vllm' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.strip() == "False False"
