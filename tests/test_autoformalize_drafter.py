"""The LM sketch drafter with a tiny randomly initialised Llama (real transformers generate, CPU)."""

from __future__ import annotations

import pytest

from llemma_prover.autoformalize.drafter import LMDrafter
from llemma_prover.autoformalize.prompts import load_dsp_prompt
from llemma_prover.core.config import DrafterConfig, GeneratorConfig
from llemma_prover.core.errors import GeneratorError, GeneratorUnavailable
from llemma_prover.core.types import Theorem

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    import torch

    from llemma_prover.lm.synthetic import TINY_LLAMA_SHAPE, save_random_llama

    torch.set_num_threads(1)
    return save_random_llama(tmp_path_factory.mktemp("tiny"), TINY_LLAMA_SHAPE, seed=1)


def _thm(name: str) -> Theorem:
    return Theorem(
        name=name,
        split="test",
        system="coq",
        header="Require Import Reals.\n",
        statement=f"Theorem {name} : forall x : R, x = x.",
        informal_statement="x equals x.",
        informal_proof="Reflexivity.",
    )


def _drafter(model_dir, **kw) -> LMDrafter:
    model = GeneratorConfig(name="llemma", model=str(model_dir), device="cpu", max_new_tokens=12, **kw)
    return LMDrafter(DrafterConfig(name="llemma", samples=3, model=model), "coq", load_dsp_prompt("coq"))


def test_sampling_is_seeded_per_problem_and_greedy_gives_one(tiny_dir):
    d = _drafter(tiny_dir, temperature=1.0, seed=7)
    with pytest.raises(GeneratorError):
        d.draft(_thm("a"), 3)  # not started
    d.start()
    try:
        a1 = d.draft(_thm("a"), 3)
        a2 = d.draft(_thm("a"), 3)
        b = d.draft(_thm("b"), 3)
        assert len(a1) == 3 and [x.text for x in a1] == [x.text for x in a2]
        assert [x.text for x in a1] != [x.text for x in b]
        assert all(x.score <= 0 and x.model_time > 0 for x in a1)
        desc = d.describe()
        assert desc["device"] == "cpu" and desc["decoding"] == "sampling(T=1.0)"
        assert str(desc["prompt"]).endswith("dsp_coq.txt")
    finally:
        d.close()
    g = _drafter(tiny_dir, temperature=0.0)
    g.start()
    try:
        assert len(g.draft(_thm("a"), 3)) == 1  # greedy decoding has one answer
    finally:
        g.close()


def test_missing_model_says_what_to_do(tmp_path):
    d = _drafter(tmp_path / "no-such-model")
    with pytest.raises(GeneratorUnavailable, match="--model"):
        d.start()
