"""``llemma-prover train``: data checks, the prompt format shared with the generator, checkpoints and
resume, LoRA, and a tiny model trained here that then proves a miniF2F theorem through ``prove``."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli

from llemma_prover.core.errors import ConfigError
from llemma_prover.generators.prompts import MODEL_PROMPT_FILE, STOP_MARKER, zero_shot_prompt
from llemma_prover.train.config import TrainConfig
from llemma_prover.train.data import coq_goal_text, read_dataset, render_example

CLEAN = {"checked": True, "clean": True, "n": 30, "contaminated": []}


def _linear_goal(rnd: random.Random) -> str:
    a, b, c = rnd.randint(2, 9), rnd.randint(1, 9), rnd.randint(1, 30)
    v = rnd.choice("xyzab")
    return rnd.choice([
        f"forall {v} : R, {a} * {v} + {b} = {c} -> {v} = ({c} - {b}) / {a}",
        f"forall {v} : R, {v} * ({a} / {b} + 1) = {c} -> {v} = {c} / ({a} / {b} + 1)",
        f"forall {v} w : R, {v} + w = {c} -> {v} - w = {b} -> {v} = ({c} + {b}) / 2",
    ])


def write_extract(folder: Path, n: int = 24, contamination: dict[str, Any] | None = CLEAN,
                  tactic: str = "intros; lra") -> Path:
    """A hand-made ``extract`` folder: linear real goals, each closed by ``tactic``; 1 file in 6 valid."""
    rnd = random.Random(0)
    recs = [{"library": "hand", "file": f"f{i % 6}.v", "theorem": f"t{i}", "statement": "", "step": 0,
             "goals_before": [{"hyps": [], "concl": _linear_goal(rnd)}], "tactic": tactic, "goals_after": [],
             "split": "valid" if i % 6 == 5 else "train"} for i in range(n)]
    raw = "".join(json.dumps(r) + "\n" for r in recs).encode()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "steps.jsonl").write_bytes(raw)
    card: dict[str, Any] = {"backend": "coq", "steps_sha256": hashlib.sha256(raw).hexdigest()}
    if contamination is not None:
        card["contamination"] = contamination
    (folder / "card.json").write_text(json.dumps(card))
    return folder


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from llemma_prover.lm.synthetic import TINY_LLAMA_SHAPE, save_random_llama

    torch.set_num_threads(1)
    return save_random_llama(tmp_path_factory.mktemp("tiny-llama"), TINY_LLAMA_SHAPE, seed=0)


def test_goals_render_as_the_coq_backend_shows_them() -> None:
    goals = [{"hyps": ["x, y : R", "h :  x <   y"], "concl": "x <= y"},
             {"hyps": ["z : nat"], "concl": "z = z"}]
    assert coq_goal_text(goals) == "x, y : R\nh : x < y\n============================\nx <= y\n\nz = z"
    assert coq_goal_text([{"hyps": [], "concl": "True"}]) == "============================\nTrue"
    rec = {"goals_before": goals[:1], "tactic": "lra", "split": "valid"}
    ex = render_example(rec, zero_shot_prompt("coq"), "coq")
    assert ex.split == "valid" and ex.completion == "lra.\n---"
    assert ex.prompt == zero_shot_prompt("coq").render(coq_goal_text(goals[:1]))


def test_data_without_a_clean_contamination_check_is_refused(tmp_path: Path) -> None:
    prompt = zero_shot_prompt("coq")
    unchecked = write_extract(tmp_path / "u", contamination=None)
    with pytest.raises(ConfigError, match="no miniF2F contamination result"):
        read_dataset(unchecked, prompt, "coq")
    assert read_dataset(unchecked, prompt, "coq", allow_unchecked=True).allowed == ["unchecked"]
    skipped = write_extract(tmp_path / "s", contamination={"checked": False, "reason": "skipped"})
    with pytest.raises(ConfigError, match="no miniF2F contamination result"):
        read_dataset(skipped, prompt, "coq")
    dirty = write_extract(tmp_path / "d", contamination={
        "checked": True, "clean": False, "contaminated": [{"problem": "mathd_algebra_10", "hits": 3}]})
    with pytest.raises(ConfigError, match="overlaps miniF2F.*mathd_algebra_10"):
        read_dataset(dirty, prompt, "coq")
    assert read_dataset(dirty, prompt, "coq", allow_contaminated=True).allowed == ["contaminated"]
    ds = read_dataset(write_extract(tmp_path / "c"), prompt, "coq")
    assert (len(ds.examples["train"]), len(ds.examples["valid"]), ds.allowed) == (20, 4, [])


def test_changed_steps_and_non_extract_folders_are_refused(tmp_path: Path) -> None:
    folder = write_extract(tmp_path / "x")
    with (folder / "steps.jsonl").open("a") as fh:
        fh.write("\n")
    with pytest.raises(ConfigError, match="sha256"):
        read_dataset(folder, zero_shot_prompt("coq"), "coq")
    with pytest.raises(ConfigError, match="extract"):
        read_dataset(tmp_path, zero_shot_prompt("coq"), "coq")
    with pytest.raises(ConfigError, match="lora"):
        TrainConfig(model="m", data="d", out="o", method="lora", init="random").validate()


@pytest.mark.model
def test_training_tokens_are_the_tokens_the_decoder_feeds(tiny_model_dir: Path) -> None:
    """The prompt ids ``train`` builds equal the decoder's prefix ids + query ids at search time."""
    from llemma_prover.core.config import GeneratorConfig
    from llemma_prover.lm.decoder import Decoder
    from llemma_prover.lm.loading import load_tokenizer
    from llemma_prover.lm.synthetic import TINY_LLAMA_SHAPE, random_llama
    from llemma_prover.train.loop import _encode

    tok = load_tokenizer(GeneratorConfig(model=str(tiny_model_dir)))
    prompt = zero_shot_prompt("coq")
    model = random_llama({**TINY_LLAMA_SHAPE, "vocab_size": len(tok)})
    dec = Decoder(model, tok, prompt.prefix, prefix_cache=False, stop=STOP_MARKER)
    goal = "x : R\nh : 2 * x = 4\n============================\nx = 2"
    ex = render_example({"goals_before": [{"hyps": ["x : R", "h : 2 * x = 4"], "concl": "x = 2"}],
                         "tactic": "lra"}, prompt, "coq")
    ids, n_prompt = _encode(tok, dec.prefix_ids, ex, prompt.prefix)
    assert ids[:n_prompt] == dec.prefix_ids + list(dec.request(prompt, goal, 1).query_ids)
    assert tok.decode(ids[n_prompt:]) == "lra.\n---"


@pytest.mark.model
def test_checkpoint_resume_gives_the_uninterrupted_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    from llemma_prover.train.loop import train

    data = write_extract(tmp_path / "data", n=12)
    base = TrainConfig(model=str(tiny_model_dir), data=str(data), out="", steps=4, batch_size=2, lr=1e-3,
                       warmup_steps=1, save_every=2, eval_every=2, log_every=1, torch_threads=1, device="cpu")
    whole = train(TrainConfig(**{**base.to_dict(), "out": str(tmp_path / "whole")}))

    class Stop(Exception):
        pass

    def stop_at_3(ev: dict[str, Any]) -> None:
        if ev["event"] == "log" and ev["step"] == 3:
            raise Stop

    cut = TrainConfig(**{**base.to_dict(), "out": str(tmp_path / "cut")})
    with pytest.raises(Stop):
        train(cut, on_progress=stop_at_3)
    assert (tmp_path / "cut" / "checkpoint" / "state.json").exists()
    with pytest.raises(ConfigError, match="--resume"):
        train(cut)
    with pytest.raises(ConfigError, match="other settings.*lr"):
        train(TrainConfig(**{**cut.to_dict(), "lr": 5e-4}), resume=True)
    card = train(cut, resume=True)
    assert card["resumed_at_steps"] == [2] and card["steps"] == 4
    assert not (tmp_path / "cut" / "checkpoint").exists()
    log_whole = [json.loads(x) for x in (tmp_path / "whole" / "train_log.jsonl").read_text().splitlines()]
    log_cut = [json.loads(x) for x in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()]
    # steps 1-2 logged before the cut, step 3 again after it; the losses are those of the whole run
    by_step = {r["step"]: r["loss"] for r in log_cut}
    assert by_step == pytest.approx({r["step"]: r["loss"] for r in log_whole}, rel=1e-4)
    assert card["valid_loss"][-1]["loss"] == pytest.approx(whole["valid_loss"][-1]["loss"], rel=1e-4)
    for key in ("steps_sha256",):
        assert card["data"][key] == whole["data"][key] == hashlib.sha256(
            (data / "steps.jsonl").read_bytes()).hexdigest()
    with pytest.raises(ConfigError, match="already holds a trained model"):
        train(cut)


@pytest.mark.model
def test_lora_merges_into_a_plain_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    import transformers

    from llemma_prover.train.loop import train

    data = write_extract(tmp_path / "data", n=12)
    out = tmp_path / "lora"
    card = train(TrainConfig(model=str(tiny_model_dir), data=str(data), out=str(out), method="lora", lora_r=4,
                             steps=3, batch_size=2, lr=1e-3, torch_threads=1, device="cpu", time_limit=1e-6))
    assert card["method"] == "lora" and 0 < card["trainable_params"] < card["params"] / 5
    assert (card["steps"], card["stopped_by"]) == (1, "time_limit")  # stopped by the clock, then saved
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in k for k in model.state_dict())
    assert json.loads((out / MODEL_PROMPT_FILE).read_text())["prefix"] == zero_shot_prompt("coq").prefix


@pytest.mark.coq
@pytest.mark.model
@pytest.mark.slow
def test_a_model_trained_here_proves_a_theorem_through_prove(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Train (CLI) a tiny Llama on hand-made steps closed by ``intros; lra``, then ``prove --generator
    llemma --model DIR`` on a miniF2F-valid theorem that one such step proves; Coq re-checks the proof."""
    data = write_extract(tmp_path / "data")
    model = tmp_path / "model"
    argv = ["train", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(model),
            "--steps", "40", "--batch-size", "8", "--lr", "5e-3", "--warmup-steps", "4",
            "--torch-threads", "1", "--eval-every", "20", "--save-every", "20"]
    proc = subprocess.run([sys.executable, "-m", "llemma_prover.cli.main", *argv], capture_output=True,
                          text=True, timeout=900, env=cli_env(), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((model / "card.json").read_text())
    assert card["steps"] == 40 and card["loss"]["last"] < card["loss"]["first"] / 10
    assert card["tokens_per_second"] > 0 and card["data"]["contamination"]["checked"]
    assert not list(model.glob("checkpoint*"))
    out = tmp_path / "run"
    proc = run_cli("--split", "minif2f-valid", "--generator", "llemma", "--model", str(model),
                   "--theorems", "amc12a_2008_p2", "--workers", "0", "--candidates", "2",
                   "--max-expansions", "2", "--max-new-tokens", "12", "--time-budget", "120",
                   "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
    assert rec["status"] == "proved", rec
    assert rec["proof"] == ["intros; lra."] and rec["check"]["ok"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["generator"]["describe"]["prompt"].endswith(MODEL_PROMPT_FILE)


@pytest.mark.model
@pytest.mark.slow
def test_a_model_read_from_gguf_can_be_saved(tmp_path: Path) -> None:
    """transformers marks a model read from a .gguf as quantized and refuses ``save_pretrained``; the
    weights are dequantized torch tensors, so ``train`` drops the marker and saves them unchanged."""
    import torch

    from llemma_prover.core.config import GeneratorConfig
    from llemma_prover.lm.loading import load_model
    from llemma_prover.lm.synthetic import smollm2_gguf
    from llemma_prover.train.loop import _drop_gguf_marker

    torch.set_num_threads(1)
    loaded = load_model(GeneratorConfig(model=str(smollm2_gguf()), device="cpu", dtype="float32"))
    with pytest.raises(ValueError, match="gguf"):
        loaded.model.save_pretrained(tmp_path / "refused")
    _drop_gguf_marker(loaded.model)
    loaded.model.save_pretrained(tmp_path / "m")
    loaded.tokenizer.save_pretrained(tmp_path / "m")
    again = load_model(GeneratorConfig(model=str(tmp_path / "m"), device="cpu", dtype="float32"))
    before, after = dict(loaded.model.named_parameters()), dict(again.model.named_parameters())
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
