"""The training loop of ``llemma-prover train`` and the model folder it writes.

``train(config)`` fine-tunes ``config.model`` (loaded by ``lm.loading``: hub id, folder or ``.gguf``) on
the train split of an ``extract`` folder, as causal LM loss on the completion tokens only (the tactic
and the stop marker; the prompt is context). Token ids are built as ``lm.decoder.Decoder`` builds them at
search time (prefix ids, then the query's ids in the joint tokenization), so the model is trained on
the exact sequence it later continues.

* ``method="full"`` trains every weight; ``"lora"`` trains peft LoRA adapters on every linear layer and
  merges them into the saved model, so the output loads without peft.
* Precision: fp32 on CPU; bf16 autocast (fp32 master weights) on GPU or with ``precision="bf16"``.
* Batches: the next ``B`` examples of an endless sequence of seeded shuffles of the train split
  (examples longer than ``max_len`` skipped; the position is checkpointed), so a resumed run sees the
  same batches as an uninterrupted one. Examples are tokenized when first drawn. AdamW, linear warm-up
  then cosine decay to 10 % of ``lr``.
* Every ``save_every`` steps ``DIR/checkpoint/`` (trainable weights as safetensors, optimizer and
  scheduler state, ``state.json``) is replaced atomically; ``resume=True`` continues from it when the
  settings that matter (``config.RESUME_KEYS``) and the data's sha256 are unchanged.
* Valid loss on a fixed subset of the valid split every ``eval_every`` steps and at the end.

The output folder: ``save_pretrained`` weights + tokenizer, ``llemma_prompt.json`` (the prompt trained
with), ``card.json`` (data sha256, base model, steps, losses, tokens/s, time), ``train_log.jsonl`` (one
line per logged step). Progress is reported through ``on_progress``; nothing here prints.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.config import GeneratorConfig
from ..core.errors import ConfigError, GeneratorUnavailable
from ..generators.prompts import MODEL_PROMPT_FILE, FewShotPrompt, zero_shot_prompt
from ..lm.loading import load_model, load_tokenizer, model_source, resolve_device
from .config import TrainConfig
from .data import Dataset, Example, read_dataset

__all__ = ["CARD_FILE", "train"]

log = logging.getLogger(__name__)

CARD_FILE = "card.json"
LOG_FILE = "train_log.jsonl"
CHECKPOINT = "checkpoint"
#: the cosine schedule decays to this fraction of ``lr``
_FLOOR = 0.1

Progress = Callable[[dict[str, Any]], None]


def _encode(tokenizer: Any, prefix_ids: list[int], ex: Example, prefix: str) -> tuple[list[int], int]:
    """(token ids of prompt + completion, number of prompt tokens), as the decoder tokenizes at search."""
    query = ex.prompt[len(prefix):]
    ids = list(tokenizer(ex.prompt, add_special_tokens=True)["input_ids"])
    if ids[:len(prefix_ids)] != prefix_ids:
        ids = prefix_ids + list(tokenizer(query, add_special_tokens=False)["input_ids"])
    comp = list(tokenizer(ex.completion, add_special_tokens=False)["input_ids"])
    return ids + comp, len(ids)


class _Lazy:
    """Token ids of a split's examples, encoded when first drawn (a run sees a fraction of a large split)."""

    def __init__(self, tokenizer: Any, prompt: FewShotPrompt, examples: list[Example], max_len: int) -> None:
        self.tokenizer, self.prompt, self.examples, self.max_len = tokenizer, prompt, examples, max_len
        self.prefix_ids = list(tokenizer(prompt.prefix, add_special_tokens=True)["input_ids"])
        self._cache: dict[int, tuple[list[int], int] | None] = {}
        self.too_long = 0

    def get(self, i: int) -> tuple[list[int], int] | None:
        """Example ``i``'s (ids, prompt length), or None when it is longer than ``max_len``."""
        if i not in self._cache:
            ids, n_prompt = _encode(self.tokenizer, self.prefix_ids, self.examples[i], self.prompt.prefix)
            fits = len(ids) <= self.max_len
            self.too_long += not fits
            self._cache[i] = (ids, n_prompt) if fits else None
        return self._cache[i]


class _Encoded:
    """Token ids of a split's examples (those within ``max_len``)."""

    def __init__(self, tokenizer: Any, prompt: FewShotPrompt, examples: list[Example], max_len: int) -> None:
        prefix_ids = list(tokenizer(prompt.prefix, add_special_tokens=True)["input_ids"])
        self.rows: list[tuple[list[int], int]] = []
        self.too_long = 0
        for ex in examples:
            ids, n_prompt = _encode(tokenizer, prefix_ids, ex, prompt.prefix)
            if len(ids) > max_len:
                self.too_long += 1
                continue
            self.rows.append((ids, n_prompt))


def _batch(rows: list[tuple[list[int], int]], pad_id: int, device: str) -> tuple[Any, Any, Any, int]:
    """Right-padded input ids, attention mask and labels (-100 on prompt and padding), real tokens."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    inp = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(rows):
        t = torch.tensor(ids, dtype=torch.long)
        inp[i, : len(ids)] = t
        mask[i, : len(ids)] = 1
        labels[i, n_prompt: len(ids)] = t[n_prompt:]
    tokens = int(mask.sum())
    return inp.to(device), mask.to(device), labels.to(device), tokens


def _order(n: int, seed: int, epoch: int) -> list[int]:
    import torch

    g = torch.Generator()
    g.manual_seed(seed * 1_000_003 + epoch)
    return [int(i) for i in torch.randperm(n, generator=g)]


class _Batches:
    """Position ``p`` of the endless sequence of seeded shuffles of ``n`` examples."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self._orders: dict[int, list[int]] = {}

    def indices(self, start: int, count: int) -> list[int]:
        out = []
        for p in range(start, start + count):
            epoch, i = divmod(p, self.n)
            if epoch not in self._orders:
                self._orders = {epoch: _order(self.n, self.seed, epoch)}
            out.append(self._orders[epoch][i])
        return out


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return _FLOOR + (1 - _FLOOR) * 0.5 * (1 + math.cos(math.pi * progress))


def _load(cfg: TrainConfig, device: str) -> tuple[Any, Any]:
    """(model in fp32 on ``device``, tokenizer)."""
    import torch

    gen = GeneratorConfig(name="llemma", model=cfg.model, load_kwargs=dict(cfg.load_kwargs), device=device,
                          dtype="float32", torch_threads=cfg.torch_threads)
    if cfg.init == "pretrained":
        loaded = load_model(gen)
        return loaded.model, loaded.tokenizer
    import transformers

    tokenizer = load_tokenizer(gen)
    src = model_source(cfg.model, cfg.load_kwargs)
    try:
        mconf = transformers.AutoConfig.from_pretrained(src.name, **src.kwargs)
    except Exception as exc:  # noqa: BLE001 - every loader error means the same: no architecture to copy
        raise GeneratorUnavailable(f"cannot read the architecture of {cfg.model!r}: {exc}") from exc
    torch.manual_seed(cfg.seed)
    model = transformers.AutoModelForCausalLM.from_config(mconf)
    return model.to(device), tokenizer


def _drop_gguf_marker(model: Any) -> None:
    """A model read from a ``.gguf`` holds dequantized torch weights but is still marked as quantized
    with gguf, and ``save_pretrained`` refuses such a model; the marker is dropped before saving."""
    quantizer = getattr(model, "hf_quantizer", None)
    method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", "")
    if quantizer is None or "gguf" not in str(getattr(method, "value", method)).lower():
        return
    model.hf_quantizer = None
    if getattr(model, "is_quantized", False):
        model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = "not installed"
    return out


def _trainable_state(model: Any) -> dict[str, Any]:
    return {k: v.detach().contiguous() for k, v in model.named_parameters() if v.requires_grad}


def _save_checkpoint(out: Path, model: Any, opt: Any, sched: Any, state: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import save_file

    tmp = out / (CHECKPOINT + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    final = out / CHECKPOINT
    old = out / (CHECKPOINT + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(out: Path, model: Any, opt: Any, sched: Any) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    ck = out / CHECKPOINT
    weights = load_file(str(ck / "trainable.safetensors"))
    params = dict(model.named_parameters())
    for k, v in weights.items():
        if k not in params:
            raise ConfigError(f"checkpoint {ck} does not fit this model (no parameter {k})")
        with torch.no_grad():
            params[k].copy_(v)
    blob = torch.load(ck / "optimizer.pt", map_location="cpu", weights_only=True)
    opt.load_state_dict(blob["optimizer"])
    sched.load_state_dict(blob["scheduler"])
    state: dict[str, Any] = json.loads((ck / "state.json").read_text(encoding="utf-8"))
    return state


def _check_out(cfg: TrainConfig, out: Path, resume: bool, data_sha: str) -> dict[str, Any] | None:
    """The checkpoint state to resume from (None: start fresh); refuses to overwrite a model."""
    if (out / CARD_FILE).exists():
        raise ConfigError(f"--out {out} already holds a trained model (card.json); choose another --out")
    ck = out / CHECKPOINT / "state.json"
    if not ck.exists():
        if out.exists() and any(out.iterdir()) and not resume:
            raise ConfigError(f"--out {out} exists and is not empty; choose another --out")
        return None
    if not resume:
        raise ConfigError(f"--out {out} holds a checkpoint; pass --resume to continue it or choose another "
                          "--out")
    state: dict[str, Any] = json.loads(ck.read_text(encoding="utf-8"))
    want = {**cfg.resume_key(), "data_sha256": data_sha}
    got = state.get("resume_key", {})
    diff = sorted(k for k in want if got.get(k) != want[k])
    if diff:
        raise ConfigError(f"--resume: the checkpoint in {out} was made with other settings "
                          f"({', '.join(diff)})")
    return state


def _evaluate(model: Any, rows: list[tuple[list[int], int]], batch_size: int, pad_id: int, device: str,
              autocast: Any) -> float | None:
    """Mean loss per completion token over ``rows``."""
    import torch

    if not rows:
        return None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            inp, mask, labels, _ = _batch(chunk, pad_id, device)
            with autocast():
                logits = model(input_ids=inp, attention_mask=mask).logits.float()
            lp = torch.log_softmax(logits[:, :-1], dim=-1)
            tgt = labels[:, 1:]
            keep = tgt != -100
            picked = lp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            total += float(-(picked * keep).sum())
            count += int(keep.sum())
    model.train()
    return total / max(1, count)


def _summary_contamination(ds: Dataset) -> dict[str, Any]:
    c = ds.contamination or {}
    return {"checked": bool(c.get("checked")), "clean": c.get("clean"), "n": c.get("n"),
            "contaminated": [h.get("problem") for h in c.get("contaminated") or []],
            # the data's own problems (``extract --from-run``): expected overlap, not held out
            "expected": list(c.get("expected") or []),
            "unexpected": ([h.get("problem") for h in c.get("unexpected") or []]
                           if "unexpected" in c else None),
            "allowed_despite": list(ds.allowed)}


def train(cfg: TrainConfig, *, resume: bool = False, on_progress: Progress | None = None) -> dict[str, Any]:
    """Fine-tune as ``cfg`` says and write the model folder ``cfg.out``; returns its card."""
    cfg.validate()
    import torch

    wall0 = time.monotonic()
    prompt = zero_shot_prompt(cfg.backend)
    ds = read_dataset(cfg.data, prompt, cfg.backend, allow_unchecked=cfg.allow_unchecked,
                      allow_contaminated=cfg.allow_contaminated)
    out = Path(cfg.out)
    state = _check_out(cfg, out, resume, ds.steps_sha256)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    device = resolve_device(cfg.device)
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.startswith("cuda"))
    dev_type = "cuda" if device.startswith("cuda") else "cpu"

    def autocast() -> Any:
        return torch.autocast(device_type=dev_type, dtype=torch.bfloat16, enabled=bf16)

    model, tokenizer = _load(cfg, device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pad_id = int(pad_id) if pad_id is not None else 0
    train_rows = _Lazy(tokenizer, prompt, ds.examples["train"], cfg.max_len)
    if not ds.examples["train"]:
        raise ConfigError(f"--data {cfg.data}: no train-split step")
    valid_all = list(ds.examples["valid"])
    if valid_all:
        keep = set(_order(len(valid_all), cfg.seed, -1)[: cfg.eval_examples])
        valid_all = [ex for i, ex in enumerate(valid_all) if i in keep]
    valid_rows = _Encoded(tokenizer, prompt, valid_all, cfg.max_len)

    params_total = sum(p.numel() for p in model.parameters())
    if cfg.method == "lora":
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as exc:
            raise ConfigError(f"--method lora needs peft ({exc}); pip install peft") from exc
        lora = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                          lora_dropout=cfg.lora_dropout, target_modules="all-linear")
        model = get_peft_model(model, lora)
    model.train()
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False
    trainable = [p for p in model.parameters() if p.requires_grad]
    params_trainable = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg.warmup_steps, cfg.steps))

    out.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, Any]] = []
    valid_losses: list[dict[str, Any]] = []
    step, tokens, train_seconds, resumed_from, position = 0, 0, 0.0, [], 0
    if state is not None:
        state = _load_checkpoint(out, model, opt, sched)
        step, tokens, train_seconds = int(state["step"]), int(state["tokens"]), float(state["train_seconds"])
        position = int(state["position"])
        valid_losses = list(state.get("valid_losses", []))
        resumed_from = [*state.get("resumed_from", []), step]
        log.info("resuming %s at step %d", out, step)
    log_path = out / LOG_FILE
    if state is None:
        log_path.write_text("", encoding="utf-8")
    batches = _Batches(len(ds.examples["train"]), cfg.seed)
    per_step = cfg.batch_size * cfg.grad_accum

    def checkpoint_state() -> dict[str, Any]:
        key = {**cfg.resume_key(), "data_sha256": ds.steps_sha256}
        return {"step": step, "position": position, "tokens": tokens, "train_seconds": train_seconds,
                "valid_losses": valid_losses, "resumed_from": resumed_from, "resume_key": key}

    def report(kind: str, **extra: Any) -> None:
        if on_progress is not None:
            on_progress({"event": kind, "step": step, "steps": cfg.steps, "tokens": tokens,
                         "tokens_per_s": tokens / train_seconds if train_seconds else 0.0, **extra})

    def next_rows(count: int) -> list[tuple[list[int], int]]:
        nonlocal position
        rows: list[tuple[list[int], int]] = []
        while len(rows) < count:
            if position >= 20 * len(ds.examples["train"]) + count and not rows:
                raise ConfigError(f"--data {cfg.data}: no train-split step fits in --max-len {cfg.max_len}")
            row = train_rows.get(batches.indices(position, 1)[0])
            position += 1
            if row is not None:
                rows.append(row)
        return rows

    report("start", examples=len(ds.examples["train"]))
    window: list[float] = []
    stopped = "steps"
    while step < cfg.steps:
        if cfg.time_limit and train_seconds >= cfg.time_limit:
            stopped = "time_limit"
            break
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for _ in range(cfg.grad_accum):
            inp, mask, labels, n_tok = _batch(next_rows(cfg.batch_size), pad_id, device)
            with autocast():
                loss = model(input_ids=inp, attention_mask=mask, labels=labels).loss
            (loss / cfg.grad_accum).backward()
            loss_sum += float(loss.detach())
            tokens += n_tok
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        sched.step()
        step += 1
        train_seconds += time.perf_counter() - t0
        window.append(loss_sum / cfg.grad_accum)
        out_of_time = bool(cfg.time_limit) and train_seconds >= cfg.time_limit
        if step % cfg.log_every == 0 or step == cfg.steps or out_of_time:
            row = {"step": step, "loss": sum(window) / len(window), "lr": sched.get_last_lr()[0],
                   "tokens": tokens, "train_seconds": round(train_seconds, 3)}
            history.append(row)
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            window = []
            report("log", loss=row["loss"])
        if step % cfg.eval_every == 0 and step < cfg.steps and valid_rows.rows:
            vl = _evaluate(model, valid_rows.rows, cfg.batch_size, pad_id, device, autocast)
            valid_losses.append({"step": step, "loss": vl})
            report("valid", valid_loss=vl)
        if step % cfg.save_every == 0 and step < cfg.steps:
            _save_checkpoint(out, model, opt, sched, checkpoint_state())
            report("checkpoint")
    final_valid = _evaluate(model, valid_rows.rows, cfg.batch_size, pad_id, device, autocast)
    if final_valid is not None:
        valid_losses.append({"step": step, "loss": final_valid})
        report("valid", valid_loss=final_valid)

    if cfg.method == "lora":
        model = model.merge_and_unload()
    model.config.use_cache = True
    model.eval()
    _drop_gguf_marker(model)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / MODEL_PROMPT_FILE).write_text(
        json.dumps({"system": prompt.system, "prefix": prompt.prefix}, indent=1) + "\n", encoding="utf-8")
    all_rows = [json.loads(x) for x in log_path.read_text(encoding="utf-8").splitlines() if x.strip()]
    card = {
        "card_version": 1,
        "base_model": cfg.model,
        "load_kwargs": dict(cfg.load_kwargs),
        "init": cfg.init,
        "method": cfg.method,
        "params": params_total,
        "trainable_params": params_trainable,
        "data": {"folder": ds.folder, "steps_sha256": ds.steps_sha256, "card_counts": ds.card_counts,
                 "contamination": _summary_contamination(ds), "skipped": dict(ds.skipped)},
        "examples": {"train": len(ds.examples["train"]), "train_too_long_seen": train_rows.too_long,
                     "valid_evaluated": len(valid_rows.rows), "valid_total": len(ds.examples["valid"]),
                     "test_unused": len(ds.examples["test"])},
        "steps": step,
        "stopped_by": stopped,
        "examples_seen": step * per_step,
        "epochs": round(step * per_step / len(ds.examples["train"]), 3),
        "tokens": tokens,
        "tokens_per_second": round(tokens / train_seconds, 1) if train_seconds else None,
        "train_seconds": round(train_seconds, 1),
        "wall_seconds_this_run": round(time.monotonic() - wall0, 1),
        "loss": {"first": all_rows[0]["loss"] if all_rows else None,
                 "last": all_rows[-1]["loss"] if all_rows else None, "log": LOG_FILE},
        "valid_loss": valid_losses,
        "resumed_at_steps": resumed_from,
        "device": device,
        "precision": "bf16 autocast" if bf16 else "fp32",
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "prompt": {"system": prompt.system, "prefix": prompt.prefix, "source": prompt.source,
                   "file": MODEL_PROMPT_FILE},
        "config": cfg.to_dict(),
        "versions": _versions(),
        "written_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (out / CARD_FILE).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(out / CHECKPOINT, ignore_errors=True)
    report("done", loss=card["loss"]["last"], valid_loss=final_valid)
    return card
