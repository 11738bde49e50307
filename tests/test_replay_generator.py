"""The ``replay`` generator (both file formats, errors) and ``make_generator`` resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llemma_prover.core.config import GeneratorConfig
from llemma_prover.core.errors import ConfigError, DataError, GeneratorUnavailable
from llemma_prover.core.types import Theorem
from llemma_prover.generators.registry import make_generator
from llemma_prover.generators.replay import ReplayGenerator


def thm(name: str) -> Theorem:
    return Theorem(name=name, split="test", system="coq", header="", statement="")


def test_text_file_offers_same_candidates_in_order(tmp_path: Path) -> None:
    f = tmp_path / "tactics.txt"
    f.write_text("# a comment\nintros.\n\n  lia.  \nnia.\nintros.\n{\n", encoding="utf-8")
    gen = ReplayGenerator(f)
    assert gen.format == "text"
    gen.start_theorem(thm("anything"))
    cands = gen.generate("goal 1", 10)
    assert [c.tactic for c in cands] == ["intros.", "lia.", "nia.", "{"]  # duplicate dropped
    assert [c.score for c in cands] == [0.0, -1.0, -2.0, -3.0]
    assert gen.generate("another goal", 2) == cands[:2]
    assert gen.generate_at("another goal", 10, 3) == cands  # text: the same at every depth
    assert gen.describe()["format"] == "text"


def test_jsonl_per_theorem_lists(tmp_path: Path) -> None:
    f = tmp_path / "proofs.jsonl"
    f.write_text(
        "\n".join(
            [
                json.dumps({"theorem": "a", "tactics": ["intros.", "lia."]}),
                "",
                json.dumps({"theorem": "b", "tactics": ["nia."]}),
                json.dumps({"theorem": "a", "tactics": ["lia.", "ring."]}),
                # a results.jsonl record works too; a null proof is skipped
                json.dumps({"theorem": "c", "status": "proved", "proof": ["auto."]}),
                json.dumps({"theorem": "d", "status": "failed", "proof": None}),
            ]
        ),
        encoding="utf-8",
    )
    gen = ReplayGenerator(f)
    assert gen.format == "jsonl"
    assert gen.theorems == ["a", "b", "c"]
    gen.start_theorem(thm("a"))
    assert [(c.tactic, c.score) for c in gen.generate("g", 8)] == [
        ("intros.", 0.0),
        ("lia.", -1.0),
        ("ring.", -2.0),
    ]
    # the search asks with the depth: the d-th tactic of each proof comes first
    assert [(c.tactic, c.score) for c in gen.generate_at("g", 8, 0)] == [
        ("intros.", 0.0),
        ("lia.", -1.0),
        ("ring.", -2.0),
    ]
    assert [c.tactic for c in gen.generate_at("g", 8, 1)] == ["lia.", "ring.", "intros."]
    assert [c.tactic for c in gen.generate_at("g", 2, 1)] == ["lia.", "ring."]
    assert [c.tactic for c in gen.generate_at("g", 8, 5)] == ["intros.", "lia.", "ring."]
    gen.start_theorem(thm("c"))
    assert [c.tactic for c in gen.generate("g", 8)] == ["auto."]
    gen.start_theorem(thm("zzz"))
    assert gen.generate("g", 8) == []


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="replay file not found") as ei:
        ReplayGenerator(tmp_path / "nope.txt")
    assert "nope.txt" in str(ei.value)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "empty.txt"
    f.write_text("\n# only a comment\n", encoding="utf-8")
    with pytest.raises(DataError, match="no tactics"):
        ReplayGenerator(f)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("{not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ('{"tactics": ["lia."]}', '"theorem"'),
        ('{"theorem": "x"}', '"tactics"'),
        ('{"theorem": "x", "tactics": "lia."}', "list of strings"),
        ('{"theorem": "x", "tactics": [1]}', "list of strings"),
    ],
)
def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path, bad: str, match: str) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"theorem": "ok", "tactics": ["lia."]}) + "\n\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=match) as ei:
        ReplayGenerator(f)
    assert f"{f}:3:" in str(ei.value)
    assert ei.value.line == 3


def test_make_generator_replay(tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    f.write_text("lia.\n", encoding="utf-8")
    gen, note = make_generator(GeneratorConfig(name="replay", replay_file=str(f)), "coq")
    assert isinstance(gen, ReplayGenerator)
    assert str(f) in note
    with pytest.raises(ConfigError, match="--replay-file"):
        make_generator(GeneratorConfig(name="replay"), "coq")


def test_make_generator_unknown_name() -> None:
    with pytest.raises(ConfigError, match="unknown generator"):
        make_generator(GeneratorConfig(name="gpt"), "coq")


def test_auto_is_resolved_in_one_place_before_anything_is_built() -> None:
    from llemma_prover.workers.plan import resolve_auto

    assert resolve_auto("auto", gpus=0) == ("bank", "auto: no GPU found")
    assert resolve_auto("auto", gpus=2) == ("llemma", "auto: GPU found")
    assert resolve_auto("auto", gpus=2, model_failed="llemma could not load (x)") == (
        "bank", "auto: llemma could not load (x)")
    assert resolve_auto("llemma+bank", gpus=0) == ("llemma+bank", None)  # named: nothing resolved
    with pytest.raises(ConfigError, match="resolved before"):
        make_generator(GeneratorConfig(name="auto"), "coq")


def test_explicit_llemma_that_cannot_load_says_why(tmp_path: Path) -> None:
    pytest.importorskip("llemma_prover.generators.llemma")
    missing = tmp_path / "no-such-model"
    cfg = GeneratorConfig(name="llemma", model=str(missing), device="cpu")
    with pytest.raises(GeneratorUnavailable) as ei:
        make_generator(cfg, "coq")
    msg = str(ei.value)
    assert "no-such-model" in msg


def test_auto_with_gpu_falls_back_to_bank_when_llemma_cannot_load(tmp_path: Path) -> None:
    """``--generator auto --workers 0`` on a GPU machine (simulated): the model chosen by auto cannot load
    for real (no such model), so the run is planned again for bank, saying why."""
    pytest.importorskip("llemma_prover.generators.llemma")
    from llemma_prover.cli import prove
    from llemma_prover.cli.main import build_parser
    from llemma_prover.workers.plan import Machine

    argv = ["prove", "--generator", "auto", "--model", str(tmp_path / "no-such-model"), "--workers", "0"]
    args = build_parser().parse_args(argv)
    args._argv = argv
    machine = Machine(gpus=1, cpus=2)
    planned = prove.build_config(args, machine=machine)
    assert planned.generator.name == "llemma" and planned.generator_choice == "auto: GPU found"
    cfg, resolved, note = prove.start_planned(args, planned, machine)
    try:
        assert cfg.generator.name == "bank" and resolved.local_context is not None
        choice = cfg.generator_choice
        assert choice is not None and choice.startswith("auto: llemma could not load (")
        assert note.startswith("auto: llemma could not load (") and note.endswith("using bank"), note
    finally:
        resolved.close()


def test_the_served_model_stands_for_the_model_part_of_a_mixture(tmp_path: Path) -> None:
    """With model servers, a worker builds ``llemma+bank`` with the served generator as its model part
    (here a replay generator stands for the servers' ``ServerGenerator``) and the bank built as usual."""
    pytest.importorskip("llemma_prover.generators.bank")
    tactics = tmp_path / "t.txt"
    tactics.write_text("ring.\n")
    served = ReplayGenerator(str(tactics))
    gen, note = make_generator(GeneratorConfig(name="llemma+bank", model="m"), "coq", served=served)
    try:
        parts = [p["name"] for p in gen.describe()["parts"]]  # type: ignore[union-attr]
        assert parts == ["replay", "bank"] and "m on the model servers" in note
    finally:
        gen.close()
    served = ReplayGenerator(str(tactics))
    alone, _ = make_generator(GeneratorConfig(name="llemma", model="m"), "coq", served=served)
    try:
        assert alone.describe()["name"] == "replay"
    finally:
        alone.close()
