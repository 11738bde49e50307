"""The ``retrieval`` generator and generator mixing: names adapted, scores on one scale, real Coq proofs."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli_env, run_cli

from llemma_prover.backends.base import ProverBackend, make_backend
from llemma_prover.core.config import GeneratorConfig, ProverConfig, SearchConfig
from llemma_prover.core.errors import ConfigError, DataError
from llemma_prover.core.types import Candidate, Reason, Theorem
from llemma_prover.generators.bank import BankGenerator
from llemma_prover.generators.mixture import MixtureGenerator, mix
from llemma_prover.generators.registry import make_generator
from llemma_prover.generators.retrieval import RetrievalGenerator, adapt_names, tokenize
from llemma_prover.search import best_first_search


def _step(concl: str, tactic: str, hyps: list[str] | None = None, split: str = "train",
          theorem: str = "t", step: int = 0) -> dict[str, object]:
    return {"library": "hand", "file": "hand/T.v", "theorem": theorem, "statement": "", "step": step,
            "goals_before": [{"hyps": hyps or [], "concl": concl}], "tactic": tactic,
            "goals_after": [], "split": split}


def write_steps(folder: Path, records: list[dict[str, object]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "steps.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    return folder


#: a tiny hand-made data set: the two steps of a modus-ponens proof, with other names than the target's
MP_STEPS = [
    _step("forall A B : Prop, A -> (A -> B) -> B", "intros A B HA HAB", theorem="mp", step=0),
    _step("B", "exact (HAB HA)", ["A, B : Prop", "HA : A", "HAB : A -> B"], theorem="mp", step=1),
    _step("forall n : nat, n + 0 = n", "intros n; induction n; simpl; auto", theorem="add0"),
    _step("x = x", "reflexivity", ["x : nat"], theorem="refl"),
    _step("forall A B : Prop, A -> B", "intros; tauto", split="test", theorem="held_out"),
]


# -- unit ------------------------------------------------------------------------------------------
def test_tokenize_keeps_qualified_names_and_symbols() -> None:
    assert tokenize("Nat.add_comm (x+1) <= y'") == ["Nat.add_comm", "(", "x", "+", "1", ")", "<=", "y'"]


def test_adapt_names_maps_by_type_through_dependent_hypotheses() -> None:
    src = ["A, B : Prop", "HA : A", "HAB : A -> B"]
    tgt = ["P, Q : Prop", "hp : P", "hpq : P -> Q"]
    assert adapt_names("exact (HAB HA)", src, tgt) == "exact (hpq hp)"
    # whole identifiers only; names without a counterpart stay
    assert adapt_names("apply HAB; exact Nat.HA || exact HA0", src, tgt) \
        == "apply hpq; exact Nat.HA || exact HA0"
    # a name that exists with the same type is kept; simultaneous swap
    assert adapt_names("rewrite H; rewrite H0", ["H : a = b", "H0 : c = d"], ["H0 : a = b", "H : c = d"]) \
        == "rewrite H0; rewrite H"
    # token overlap when no type is equal
    assert adapt_names("lra", ["H : x > 0"], ["h : y > 0"]) == "lra"
    assert adapt_names("apply Rlt_le in H", ["H : x > 0 + 1"], ["h : x > 0 + 2"]) == "apply Rlt_le in h"


def test_mix_deduplicates_and_adds_probabilities() -> None:
    a = [Candidate("intros; lia", math.log(0.5)), Candidate("auto", math.log(0.25))]
    b = [Candidate("intros;  lia", math.log(0.2)), Candidate("reflexivity", math.log(0.8))]
    out = mix([a, b], [0.5, 0.5], 10)
    assert [c.tactic for c in out] == ["reflexivity", "intros; lia", "auto"]
    scores = {c.tactic: c.score for c in out}
    assert math.isclose(scores["intros; lia"], math.log(0.5 * 0.5 + 0.5 * 0.2))
    assert math.isclose(scores["reflexivity"], math.log(0.4))
    assert math.isclose(scores["auto"], math.log(0.125))
    assert len(mix([a, b], [0.5, 0.5], 2)) == 2
    assert all(c.score <= 0 for c in out)


def test_retrieval_scores_are_a_log_distribution(tmp_path: Path) -> None:
    gen = RetrievalGenerator(write_steps(tmp_path / "d", MP_STEPS))
    gen.start()
    cands = gen.generate("P, Q : Prop\nhp : P\nhpq : P -> Q\n============================\nQ", 8)
    assert cands[0].tactic == "exact (hpq hp)"
    assert all(c.score <= 0 for c in cands)
    assert math.isclose(sum(math.exp(c.score) for c in cands), 1.0, rel_tol=1e-6)
    # the test split is not indexed by default
    assert all(c.tactic != "intros; tauto" for c in gen.generate("forall A B : Prop, A -> B", 8))
    assert gen.describe()["steps"] == 4
    assert gen.generate("zzz_unknown_token", 4) == []


def test_retrieval_needs_data(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        RetrievalGenerator(tmp_path).start()
    with pytest.raises(ConfigError):
        GeneratorConfig(name="retrieval").validate()
    for bad in ("bank+auto", "bank+bank", "bank+nope"):
        with pytest.raises(ConfigError):
            GeneratorConfig(name=bad).validate()
    GeneratorConfig(name="bank+retrieval", retrieval_data=str(tmp_path)).validate()


def test_registry_builds_mixtures_by_name(tmp_path: Path) -> None:
    data = write_steps(tmp_path / "d", MP_STEPS)
    gen, note = make_generator(GeneratorConfig(name="bank+retrieval", retrieval_data=str(data)), "coq")
    try:
        assert isinstance(gen, MixtureGenerator) and gen.name == "bank+retrieval"
        assert "bank" in note and "retrieval" in note
        desc = gen.describe()
        assert [p["name"] for p in desc["parts"]] == ["bank", "retrieval"]  # type: ignore[index]
        goal = "a, b : nat\n============================\na + b = b + a"
        cands = gen.generate(goal, 100)
        keys = [" ".join(c.tactic.split()) for c in cands]
        assert len(keys) == len(set(keys))
        bank = {c.tactic: c.score for c in BankGenerator("coq").generate(goal, 100)}
        for c in cands:  # a bank-only tactic has half its bank probability
            if c.tactic in bank and c.tactic not in {"reflexivity"}:
                assert c.score >= math.log(0.5) + bank[c.tactic] - 1e-9
    finally:
        gen.close()


# -- real Coq --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def backend() -> Iterator[ProverBackend]:
    b = make_backend("coq", ProverConfig(tactic_timeout=10.0, warm_spare=False))
    b.start()
    try:
        yield b
    finally:
        b.close()


@pytest.mark.coq
@pytest.mark.skipif(shutil.which("coqtop") is None, reason="coqtop not installed")
def test_retrieval_proves_a_theorem_from_hand_made_steps(backend: ProverBackend, tmp_path: Path) -> None:
    thm = Theorem(name="mp2", split="test", system="coq", header="",
                  statement="Theorem mp2 : forall P Q : Prop, P -> (P -> Q) -> Q.")
    gen = RetrievalGenerator(write_steps(tmp_path / "d", MP_STEPS))
    gen.start()
    outcome, _ = best_first_search(thm, backend, gen, SearchConfig(candidates=4, max_expansions=6,
                                                                   time_budget=60.0))
    assert outcome.reason is Reason.PROVED, outcome
    assert list(outcome.proof or ()) == ["intros A B HA HAB", "exact (HAB HA)"]
    assert backend.check(thm, outcome.proof).ok


@pytest.mark.coq
@pytest.mark.skipif(shutil.which("coqtop") is None, reason="coqtop not installed")
def test_renamed_tactic_is_needed_on_real_coq(backend: ProverBackend, tmp_path: Path) -> None:
    """The goal after ``intros p q hp hpq`` names its hypotheses differently from the data: only the
    adapted tactic closes it."""
    thm = Theorem(name="mp3", split="test", system="coq", header="",
                  statement="Theorem mp3 : forall P Q : Prop, P -> (P -> Q) -> Q.")
    data = write_steps(tmp_path / "d", [MP_STEPS[1]])
    gen = RetrievalGenerator(data)
    root = backend.start_theorem(thm)
    step = backend.apply(root.state_id, "intros p q hp hpq")
    cands = gen.generate(step.goal_text, 4)  # type: ignore[union-attr]
    assert cands[0].tactic == "exact (hpq hp)"
    from llemma_prover.core.types import ProofFinished, TacticError

    assert isinstance(backend.apply(step.state_id, cands[0].tactic), ProofFinished)  # type: ignore[union-attr]
    assert isinstance(backend.apply(step.state_id, "exact (HAB HA)"), TacticError)  # type: ignore[union-attr]


@pytest.mark.coq
@pytest.mark.skipif(shutil.which("coqtop") is None, reason="coqtop not installed")
def test_prove_cli_mixes_and_records(tmp_path: Path) -> None:
    data = write_steps(tmp_path / "data", MP_STEPS)
    out = tmp_path / "run"
    res = run_cli("--theorems", "mathd_algebra_160", "--workers", "0", "--out", str(out),
                  "--generator", "bank+retrieval", "--retrieval-data", str(data),
                  env=cli_env(CUDA_VISIBLE_DEVICES=""))
    assert res.returncode == 0, res.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["generator"]["name"] == "bank+retrieval"
    assert cfg["generator"]["retrieval_data"] == os.path.abspath(data)
    assert [p["name"] for p in cfg["generator"]["describe"]["parts"]] == ["bank", "retrieval"]
    assert cfg["generator"]["describe"]["weights"] == [0.5, 0.5]
    rec = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert rec["generator"] == "bank+retrieval" and rec["status"] == "proved", rec
    bad = run_cli("--theorems", "mathd_algebra_160", "--workers", "0", "--out", str(tmp_path / "r2"),
                  "--generator", "retrieval")
    assert bad.returncode == 2 and "--retrieval-data" in bad.stderr
