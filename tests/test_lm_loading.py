"""One model loader for every command (``lm.loading``): hub id, folder or ``.gguf`` file.

The unit tests need no model; the end-to-end test runs ``prove --model <SmolLM2 .gguf>`` on real Coq.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from llemma_prover.core.config import GeneratorConfig
from llemma_prover.core.errors import ConfigError, GeneratorUnavailable
from llemma_prover.generators.prompts import (
    MODEL_PROMPT_FILE,
    load_prompt,
    prompt_for_model,
    zero_shot_prompt,
)
from llemma_prover.lm.loading import absolute_model, load_tokenizer, model_source, parse_load_kwargs


def test_a_gguf_file_becomes_its_folder_and_gguf_file(tmp_path: Path) -> None:
    f = tmp_path / "m.Q4.gguf"
    f.write_bytes(b"GGUF")
    src = model_source(str(f))
    assert src.name == str(tmp_path.resolve()) and src.kwargs == {"gguf_file": "m.Q4.gguf"} and src.local
    assert model_source(str(f), {"gguf_file": "m.Q4.gguf", "revision": "x"}).kwargs["revision"] == "x"
    with pytest.raises(ConfigError, match="gguf_file"):
        model_source(str(f), {"gguf_file": "other.gguf"})


def test_a_folder_with_one_gguf_and_no_config_uses_it(tmp_path: Path) -> None:
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    assert model_source(str(tmp_path)).kwargs == {"gguf_file": "a.gguf"}
    (tmp_path / "config.json").write_text("{}")
    assert model_source(str(tmp_path)).kwargs == {}  # a transformers folder: loaded as one


def test_hub_ids_pass_and_missing_paths_say_what_to_do(tmp_path: Path) -> None:
    src = model_source("EleutherAI/llemma_7b", {"revision": "main"})
    assert (src.name, src.kwargs, src.local) == ("EleutherAI/llemma_7b", {"revision": "main"}, False)
    assert "huggingface-cli download" in src.hint
    for missing in (str(tmp_path / "nothing"), str(tmp_path / "x.gguf"), "./not-here"):
        with pytest.raises(GeneratorUnavailable, match="no such file or directory.*--model"):
            model_source(missing)


def test_load_kwargs_and_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_load_kwargs(["a=true", "b=3", "c=x=y", "d=main", 'e="q"']) == {
        "a": True, "b": 3, "c": "x=y", "d": "main", "e": "q"}
    assert parse_load_kwargs({"gguf_file": "m.gguf"}) == {"gguf_file": "m.gguf"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_load_kwargs(["novalue"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert absolute_model("m.gguf") == str(tmp_path.resolve() / "m.gguf")
    assert absolute_model("org/model") == "org/model"


def test_an_unloadable_tokenizer_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(GeneratorUnavailable, match="cannot load model"):
        load_tokenizer(GeneratorConfig(model=str(tmp_path)))


def test_a_model_folder_carries_its_prompt(tmp_path: Path) -> None:
    assert prompt_for_model("coq", str(tmp_path)) == load_prompt("coq")  # nothing carried: the default
    zs = zero_shot_prompt("coq")
    assert zs.prefix == "Given the Coq tactic state, suggest a next tactic.\n\n" and not zs.examples
    (tmp_path / MODEL_PROMPT_FILE).write_text(json.dumps({"system": zs.system, "prefix": zs.prefix}))
    got = prompt_for_model("coq", str(tmp_path))
    assert got.prefix == zs.prefix and got.render("g") == zs.render("g")
    assert prompt_for_model("coq", str(tmp_path), load_prompt("coq").source.replace(
        "llemma_prover/generators/", str(Path(__file__).parents[1] / "llemma_prover/generators") + "/"
    )).examples  # an explicit prompt file wins
    with pytest.raises(ConfigError, match="trained for coq goals"):
        prompt_for_model("lean4", str(tmp_path))
    (tmp_path / MODEL_PROMPT_FILE).write_text("not json")
    with pytest.raises(ConfigError, match="cannot read the model's prompt"):
        prompt_for_model("coq", str(tmp_path))


@pytest.mark.coq
@pytest.mark.model
@pytest.mark.slow
def test_prove_with_a_gguf_file_runs_end_to_end(tmp_path: Path) -> None:
    """``prove --model FILE.gguf`` used to fail ("config file ... is not a valid JSON file")."""
    from llemma_prover.lm.synthetic import smollm2_gguf

    gguf = smollm2_gguf()
    out = tmp_path / "run"
    proc = run_cli(
        "--split", "minif2f-valid", "--model", str(gguf), "--generator", "llemma",
        "--theorems", "algebra_sqineq_36azm9asqle36zsq", "--workers", "0", "--candidates", "2",
        "--max-expansions", "1", "--max-new-tokens", "12", "--time-budget", "60", "--out", str(out),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["generator"]["name"] == "llemma" and cfg["generator"]["model"] == str(gguf)
    assert cfg["generator"]["max_new_tokens"] == 12
    assert cfg["generator"]["describe"]["params"] > 100_000_000  # SmolLM2-135M, dequantized
    (rec,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
    assert rec["theorem"] == "algebra_sqineq_36azm9asqle36zsq" and rec["expansions"] == 1
    assert rec["time"]["model"] > 0 and rec["time"]["prover"] > 0  # its tactics reached Coq
