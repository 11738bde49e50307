"""``llemma-prover autoformalize``: Draft, Sketch, Prove over a miniF2F split, results in a run directory."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import (
    AUTO,
    BACKENDS,
    DATA_SYSTEM,
    DRAFTERS,
    LEAN_TACTIC_TIMEOUT,
    SPLITS,
    AutoformalizeConfig,
    DrafterConfig,
    GeneratorConfig,
    HolePolicy,
    ProverConfig,
)
from ..core.errors import ConfigError
from ..lm.loading import absolute_model, parse_load_kwargs

if TYPE_CHECKING:
    from ..workers.plan import AutoformalizeRequest, Machine

log = logging.getLogger("llemma_prover.cli.autoformalize")

_DEFAULT_MODEL = GeneratorConfig().model
_GENERATOR_CHOICES = (AUTO, *DRAFTERS)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "autoformalize",
        help="Draft, Sketch, Prove: informal proof -> formal sketch with holes -> automation -> check",
        description="For each problem a model drafts formal proof sketches from the informal statement and "
        "proof; automation fills each hole under a time limit; the filled proof is re-checked from scratch. "
        "--generator none is the baseline: one hole for the whole proof (pure automation). Running the same "
        "command again resumes the run.",
    )
    p.add_argument("--split", default="minif2f-test", choices=sorted(SPLITS), help="benchmark split")
    p.add_argument("--backend", default="coq", choices=BACKENDS, help="prover (default: coq)")
    p.add_argument(
        "--generator",
        default="auto",
        choices=_GENERATOR_CHOICES,
        help="who drafts sketches: llemma (a causal LM), replay (--replay-file), none (one hole = "
        "pure automation); auto = llemma when a GPU is visible, else none",
    )
    p.add_argument("--model", default=_DEFAULT_MODEL,
                   help="model for --generator llemma: hub id, local folder or .gguf file")
    p.add_argument(
        "--load-kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra from_pretrained argument, e.g. gguf_file=model.gguf (repeatable)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), bfloat16, float16, float32"
    )
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (one sketch); > 0 = sampling")
    p.add_argument("--samples", type=int, default=1, help="sketches per problem (pass@n)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (combined with the problem name)")
    p.add_argument("--max-new-tokens", type=int, default=DrafterConfig().model.max_new_tokens,
                   help="longest sketch, in tokens")
    p.add_argument(
        "--prompt-file", default=None, help="few-shot file (default experiments/prompts/dsp_<backend>.txt)"
    )
    p.add_argument(
        "--replay-file",
        default=None,
        help='sketches for --generator replay: JSONL lines {"theorem": NAME, "sketches": [...]}',
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="miniF2F folder holding coq/, lean4/, isabelle/ (default: $LLEMMA_PROVER_DATA, "
        "else the copy shipped with the package)",
    )
    p.add_argument("--dataset", default=None, metavar="FILE.jsonl",
                   help="the theorems of this JSON-lines file, not a miniF2F split (docs/benchmarks.md)")
    p.add_argument("--theorems", default="", help="comma-separated theorem names (default: all)")
    p.add_argument("--limit", type=int, default=None, help="only the first N theorems")
    p.add_argument(
        "--out", default=None, help="run directory (default: runs/dsp-<split>-<backend>-<generator>)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="Ray worker actors filling holes in parallel, each with its own prover "
        "(default 0: in this process, no Ray)",
    )
    p.add_argument("--ray-address", default=None, help="join an existing Ray cluster at this address")
    p.add_argument(
        "--tactic-timeout", type=float, default=None,
        help="seconds per automation attempt (default: the backend's, as for prove: "
        f"{ProverConfig().tactic_timeout:g} for coq, {LEAN_TACTIC_TIMEOUT:g} for lean4/leandojo)"
    )
    p.add_argument(
        "--hole-time-limit",
        type=float,
        default=HolePolicy().hole_time_limit,
        help=f"seconds for all attempts on one hole (default {HolePolicy().hole_time_limit:g})",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        default=HolePolicy().theorem_time_limit,
        help="seconds of hole filling per problem (all samples)",
    )
    p.add_argument(
        "--hammer",
        choices=("auto", "on", "off"),
        default="auto",
        help="Coq: also try CoqHammer's sauto/hauto on each hole (Debian libcoq-hammer); "
        "auto = on when the library is installed",
    )
    p.add_argument(
        "--sledgehammer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Isabelle: run Sledgehammer when no heuristic closes a hole",
    )
    p.add_argument(
        "--sledgehammer-timeout",
        type=float,
        default=HolePolicy().sledgehammer_timeout,
        help="Isabelle: seconds Sledgehammer may run on one hole",
    )
    return p


def build_config(args: argparse.Namespace, *, machine: Machine,
                 data_dir: str = "") -> tuple[AutoformalizeConfig, str]:
    """The one, final config of an ``autoformalize`` run and why its drafter was chosen: the flags as a
    request, planned for ``machine`` (what ``workers.plan.probe_machine`` found) by
    ``workers.plan.plan_autoformalize``. Nothing changes it afterwards."""
    from ..workers.plan import plan_autoformalize

    request = autoformalize_request(args, data_dir)
    return plan_autoformalize(request, machine)


def autoformalize_request(args: argparse.Namespace, data_dir: str = "") -> AutoformalizeRequest:
    """What the flags ask for, checked, as values (paths made absolute)."""
    from ..workers.plan import AutoformalizeRequest

    names = tuple(n.strip() for n in args.theorems.split(",") if n.strip()) if args.theorems else ()
    if args.replay_file and not os.path.isfile(args.replay_file):
        raise ConfigError(f"--replay-file {args.replay_file!r} does not exist")
    if args.prompt_file and not os.path.isfile(args.prompt_file):
        raise ConfigError(f"--prompt-file {args.prompt_file!r} does not exist")
    replay_file = os.path.abspath(args.replay_file) if args.replay_file else None
    prompt_file = os.path.abspath(args.prompt_file) if args.prompt_file else None
    model = GeneratorConfig(
        name=DrafterConfig().model.name,
        model=absolute_model(args.model),
        temperature=args.temperature,
        max_new_tokens=args.max_new_tokens,
        device=args.device,
        dtype=args.dtype,
        load_kwargs=parse_load_kwargs(args.load_kwarg),
        seed=args.seed,
    )
    return AutoformalizeRequest(
        backend=args.backend,
        split=args.split,
        drafter=DrafterConfig(name=args.generator, samples=args.samples, replay_file=replay_file,
                              prompt_file=prompt_file, model=model),
        holes=HolePolicy(hole_time_limit=args.hole_time_limit, theorem_time_limit=args.time_budget,
                         sledgehammer=args.sledgehammer, sledgehammer_timeout=args.sledgehammer_timeout),
        hammer=args.hammer,
        tactic_timeout=args.tactic_timeout,
        dataset=os.path.abspath(args.dataset) if args.dataset else "",
        data_dir=data_dir,
        out=args.out,
        theorems=names,
        limit=args.limit,
        workers=args.workers,
        ray_address=args.ray_address,
    )



def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..autoformalize.drafter import make_drafter
    from ..autoformalize.pipeline import TheoremOutcome, pass_markdown, pass_summary, run_metadata, run_split
    from ..backends.base import proof_dialect
    from ..core.types import Theorem
    from ..data.minif2f import DATA_ENV, load_theorems, select
    from ..results.rundir import RunDir
    from ..results.summary import summarize, summary_lines
    from ..workers.plan import probe_machine

    console = args._console
    dataset, data_dir = load_theorems(args.dataset, args.data_dir, os.environ.get(DATA_ENV),
                                      DATA_SYSTEM[args.backend], SPLITS[args.split], _repo_root())
    cfg, note = build_config(args, machine=probe_machine(args.generator, args.device), data_dir=data_dir)
    drafter_name = cfg.drafter.name
    theorems = select(dataset.theorems, cfg.theorems, cfg.limit)
    proof_dialect(cfg.backend).require_footers_honoured(theorems)
    out = Path(cfg.out_dir)

    drafter = make_drafter(cfg.drafter, cfg.backend)
    drafter.start()  # GeneratorUnavailable (a UserError) says why and what to do
    try:
        meta = run_metadata(
            cfg, drafter.describe(), note, list(dataset.files), dataset.sha256, ["llemma-prover", *args._argv]
        )
        run_dir = RunDir.open(out, meta)
        todo = [t for t in theorems if not run_dir.done(t.name)]
        console.print(
            f"sketches: [bold]{drafter_name}[/bold] ({note}); {drafter.describe()}", highlight=False
        )
        console.print(f"run directory: {run_dir.path}", highlight=False)
        console.print(
            f"{len(theorems)} theorems ({cfg.split}, {cfg.backend}); "
            f"{len(theorems) - len(todo)} already done, {len(todo)} to run; samples {cfg.drafter.samples}; "
            f"tactic timeout {cfg.prover.tactic_timeout:g} s, "
            f"hole limit {cfg.holes.hole_time_limit:g} s, {cfg.holes.theorem_time_limit:g} s/problem; "
            f"CoqHammer sauto/hauto: {'on' if cfg.holes.use_hammer else 'off'}; "
            f"workers: {cfg.workers or 'in-process'}",
            highlight=False,
        )
        solved = [sum(1 for t in theorems if t.name in run_dir.records and run_dir.records[t.name].proved)]

        def draft(th: Theorem) -> tuple[list[Any], float]:
            t0 = time.monotonic()
            drafts = drafter.draft(th, cfg.drafter.samples)
            return drafts, time.monotonic() - t0

        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("solved {task.fields[solved]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task(
                "autoformalize", total=len(theorems), completed=len(theorems) - len(todo), solved=solved[0]
            )

            def write(outcome: TheoremOutcome) -> None:
                rec = outcome.record
                if outcome.proof_text is not None:
                    run_dir.write_proof(rec.theorem, outcome.proof_text, proof_dialect(cfg.backend).proof_ext)
                run_dir.append(rec)
                if rec.proved:
                    solved[0] += 1
                progress.update(task, advance=1, solved=solved[0])
                log.info(
                    "%s: %s (%s; %.1f s)", rec.theorem, rec.status.value, rec.reason.value, rec.time.total
                )

            run_split(cfg, todo, draft, write)
    finally:
        drafter.close()
    recs = [run_dir.records[t.name] for t in theorems if t.name in run_dir.records]
    run_dir.write_summary([t.name for t in theorems])
    ps = pass_summary(recs)
    with open(run_dir.path / "summary.md", "a", encoding="utf-8") as fh:
        fh.write(pass_markdown(ps))
    for fam, frac, rate in summary_lines(summarize(recs)):
        console.print(f"{fam:>20}  {frac:>9}  {rate:>6}", highlight=False)
    print(
        f"pass@1 {100 * ps.pass_at_1:.1f}%"
        + (f"  pass@{ps.n} {100 * ps.pass_at_n:.1f}%" if ps.n > 1 else "")
        + f"  ({ps.solved}/{ps.problems} solved)"
    )
    print(f"results: {run_dir.path / 'results.jsonl'}")
    return 0
