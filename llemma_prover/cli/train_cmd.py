"""``llemma-prover train``: fine-tune a causal LM on extracted proof steps; the output drops into
``prove --generator llemma --model DIR``."""

from __future__ import annotations

import argparse
from typing import Any

from ..lm.loading import absolute_model, parse_load_kwargs
from ..train.config import TrainConfig

_D = TrainConfig(model="", data="", out="")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="fine-tune a causal LM on `extract` proof steps (for --generator llemma)",
        description="Fine-tune any transformers causal LM on the train split of an `extract` folder, in the "
        "llemma generator's own prompt format; the output folder (weights, tokenizer, prompt, card.json) "
        "is a --model for `prove --generator llemma`. The data card must hold a miniF2F contamination "
        "result. Running the same command with --resume continues from the last checkpoint.",
    )
    p.add_argument("--model", required=True, help="base model: hub id, local folder or .gguf file")
    p.add_argument("--load-kwarg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra from_pretrained argument (repeatable)")
    p.add_argument("--data", required=True, metavar="DIR", help="an `llemma-prover extract` output folder")
    p.add_argument("--out", required=True, metavar="DIR", help="output model folder")
    p.add_argument("--backend", default=_D.backend, help="prover the data is for (prompt and goal format)")
    p.add_argument("--method", default=_D.method, choices=("full", "lora"), help="full fine-tune or LoRA")
    p.add_argument("--init", default=_D.init, choices=("pretrained", "random"),
                   help="start from the model's weights, or from its architecture with random weights")
    p.add_argument("--lora-r", type=int, default=_D.lora_r, help="LoRA rank")
    p.add_argument("--lora-alpha", type=int, default=_D.lora_alpha, help="LoRA alpha")
    p.add_argument("--steps", type=int, default=_D.steps, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=_D.batch_size, help="examples per micro-batch")
    p.add_argument("--grad-accum", type=int, default=_D.grad_accum, help="micro-batches per step")
    p.add_argument("--lr", type=float, default=_D.lr, help="peak learning rate (warm-up, then cosine)")
    p.add_argument("--warmup-steps", type=int, default=_D.warmup_steps, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=float, default=_D.weight_decay, help="AdamW weight decay")
    p.add_argument("--max-len", type=int, default=_D.max_len,
                   help="longest example in tokens (longer: dropped)")
    p.add_argument("--seed", type=int, default=_D.seed, help="shuffle / init seed")
    p.add_argument("--device", default=_D.device, help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", default=_D.precision, choices=("auto", "bf16", "fp32"),
                   help="auto = bf16 autocast on GPU, fp32 on CPU")
    p.add_argument("--torch-threads", type=int, default=_D.torch_threads,
                   help="CPU threads (0: torch default)")
    p.add_argument("--time-limit", type=float, default=_D.time_limit,
                   help="stop after this many seconds of training and save (0: no limit)")
    p.add_argument("--eval-every", type=int, default=_D.eval_every, help="steps between valid losses")
    p.add_argument("--eval-examples", type=int, default=_D.eval_examples, help="valid examples evaluated")
    p.add_argument("--save-every", type=int, default=_D.save_every, help="steps between checkpoints")
    p.add_argument("--log-every", type=int, default=_D.log_every, help="steps between log lines")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument("--allow-unchecked", action="store_true",
                   help="train on data without a miniF2F contamination result (recorded in the card)")
    p.add_argument("--allow-contaminated", action="store_true",
                   help="train on data that overlaps miniF2F (recorded in the card)")
    return p


def build_config(args: argparse.Namespace) -> TrainConfig:
    cfg = TrainConfig(
        model=absolute_model(args.model), data=args.data, out=args.out,
        load_kwargs=parse_load_kwargs(args.load_kwarg), backend=args.backend, method=args.method,
        init=args.init, lora_r=args.lora_r, lora_alpha=args.lora_alpha, steps=args.steps,
        batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr, warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay, max_len=args.max_len, seed=args.seed, device=args.device,
        precision=args.precision, torch_threads=args.torch_threads, eval_every=args.eval_every,
        time_limit=args.time_limit,
        eval_examples=args.eval_examples, save_every=args.save_every, log_every=args.log_every,
        allow_unchecked=args.allow_unchecked, allow_contaminated=args.allow_contaminated,
    )
    cfg.validate()
    return cfg


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..train.loop import train

    cfg = build_config(args)
    console = args._console
    with Progress(
        TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), console=console, disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("train", total=cfg.steps, info="")
        last: dict[str, Any] = {}

        def on_progress(ev: dict[str, Any]) -> None:
            last.update({k: v for k, v in ev.items() if k in ("loss", "valid_loss")})
            info = f"loss {last['loss']:.3f}" if "loss" in last else ""
            if last.get("valid_loss") is not None:
                info += f" valid {last['valid_loss']:.3f}"
            progress.update(task, completed=ev["step"], info=f"{info} {ev['tokens_per_s']:.0f} tok/s")

        card = train(cfg, resume=args.resume, on_progress=on_progress)
    vl = card["valid_loss"][-1]["loss"] if card["valid_loss"] else None
    print(f"{card['steps']} steps, {card['tokens']} tokens at {card['tokens_per_second']} tokens/s "
          f"({card['train_seconds']} s); loss {card['loss']['first']:.3f} -> {card['loss']['last']:.3f}"
          + (f", valid loss {vl:.3f}" if vl is not None else ""))
    print(f"model: {cfg.out}  (prove --generator llemma --model {cfg.out})")
    return 0
