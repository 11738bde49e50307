"""The Llemma few-shot prompts: format, packaging, and the Coq examples checked against real Coq."""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

import pytest

from llemma_prover.core.errors import ConfigError
from llemma_prover.generators.prompts import (
    PROMPT_SYSTEMS,
    STOP_MARKER,
    format_example,
    load_prompt,
    parse_examples,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("backend", sorted(PROMPT_SYSTEMS))
def test_every_backend_has_a_packaged_prompt(backend: str) -> None:
    prompt = load_prompt(backend)
    assert prompt.system == PROMPT_SYSTEMS[backend]
    assert prompt.prefix.endswith("---\n\n")
    examples = prompt.examples
    assert len(examples) >= 6
    for state, tactic in examples:
        assert state.strip() and tactic.strip()
        assert "\n---" not in tactic and STOP_MARKER not in state
    # the file is package data (found through importlib.resources, not the source tree)
    res = resources.files("llemma_prover.generators").joinpath("prompts", f"{prompt.system}.txt")
    assert res.is_file()


def test_query_is_the_llemma_format() -> None:
    prompt = load_prompt("coq")
    q = prompt.query("\nx : nat\n============================\nx = x\n")
    assert q == "Tactic state:\n---\nx : nat\n============================\nx = x\n---\nNext tactic:\n---\n"
    assert prompt.render("G") == prompt.prefix + prompt.query("G")
    assert parse_examples(format_example("S", "lia.") + "\n") == [("S", "lia.")]


def test_prompt_file_override_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "p.txt"
    good.write_text("Examples:\n\n" + format_example("a : nat\n===\na = a", "reflexivity.") + "\n")
    p = load_prompt("coq", good)
    assert p.examples == [("a : nat\n===\na = a", "reflexivity.")] and p.source == str(good)
    bad = tmp_path / "bad.txt"
    bad.write_text("no examples here\n")
    with pytest.raises(ConfigError, match="holds no example"):
        load_prompt("coq", bad)
    with pytest.raises(ConfigError, match="cannot read prompt file"):
        load_prompt("coq", tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="no few-shot prompt"):
        load_prompt("hol-light")


def test_coq_examples_are_not_minif2f_problems() -> None:
    from conftest import data_dir

    statements = []
    for split in ("test", "valid"):
        f = data_dir() / "coq" / f"{split}.jsonl"
        if f.is_file():
            statements.append(f.read_text())
    text = "\n".join(statements)
    if not text:
        pytest.skip("miniF2F data not found")
    flat = " ".join(text.replace("\\n", " ").split())
    for state, _ in load_prompt("coq").examples:
        hyps = [ln for ln in state.splitlines() if ln and not ln.startswith("====")]
        assert " ".join(" ".join(hyps).split()) not in flat, state


@pytest.mark.coq
def test_coq_prompt_matches_real_coq() -> None:
    """Rebuild coq.txt with coqc: every state is real Coq 8.16 output and every tactic works."""
    path = REPO / "experiments" / "prompts" / "build_coq_prompt.py"
    spec = importlib.util.spec_from_file_location("build_coq_prompt", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = mod  # dataclasses look their module up while the file executes
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[spec.name]
    assert mod.build() == (REPO / "llemma_prover" / "generators" / "prompts" / "coq.txt").read_text()
    # a broken example is caught: a tactic that does not work makes the build fail
    broken = mod.Example("ex_bad", "nat_scope", "forall n : nat, n = S n.", (), "lia.", (), 1)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, pytest.raises(RuntimeError, match="coqc failed"):
        mod.state_of(broken, Path(tmp))
