"""``llemma-prover prove``: best-first search over a miniF2F split, results in a run directory."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from ..core.config import (
    BACKENDS,
    GENERATORS,
    LEAN_TACTIC_TIMEOUT,
    SPLITS,
    GeneratorConfig,
    ProverConfig,
    RunConfig,
)
from ..core.errors import ConfigError, UserError
from ..lm.loading import absolute_model, parse_load_kwargs
from ..serving.config import ENGINES, ServerConfig

log = logging.getLogger("llemma_prover.cli.prove")



def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "prove",
        help="search for proofs of a miniF2F split",
        description="Best-first proof search over a miniF2F split; every proof is re-checked from scratch. "
        "Running the same command again resumes the run.",
    )
    p.add_argument("--split", default="minif2f-test", choices=sorted(SPLITS), help="benchmark split")
    p.add_argument("--backend", default="coq", choices=BACKENDS, help="prover (default: coq)")
    p.add_argument("--generator", default="auto", metavar="NAME",
                   help=f"tactic generator: {'|'.join(GENERATORS)}, or several joined by + (bank+retrieval: "
                   "their candidates mixed on one scale); auto = llemma if a GPU is there and the model "
                   "loads, else bank")
    p.add_argument("--model", default=GeneratorConfig().model,
                   help="model for llemma: hub id, local folder (e.g. a `train` output) or .gguf file")
    p.add_argument("--load-kwarg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra from_pretrained argument for --model, e.g. revision=main (repeatable)")
    p.add_argument("--replay-file", default=None, help="tactics for --generator replay (text or JSONL)")
    p.add_argument("--retrieval-data", default=None, metavar="DIR",
                   help="proof-step data for --generator retrieval: an `llemma-prover extract` output folder")
    p.add_argument("--bank-families", default="", metavar="A,B",
                   help="bank: the candidate families to use (default: all; for ablations, see README)")
    p.add_argument("--data-dir", default=None,
                   help="miniF2F folder holding coq/, lean4/, isabelle/ (default: $LLEMMA_PROVER_DATA, "
                   "else ../shared/benchmarks/minif2f beside the checkout)")
    p.add_argument("--theorems", default="", help="comma-separated theorem names (default: all)")
    p.add_argument("--limit", type=int, default=None, help="only the first N theorems")
    p.add_argument("--out", default=None, help="run directory (default: runs/<split>-<backend>-<generator>)")
    p.add_argument("--workers", type=int, default=None,
                   help="Ray worker actors (default: CPU count; GPU count for llemma on GPUs); "
                   "0 = in this process, no Ray")
    p.add_argument("--ray-address", default=None, help="join an existing Ray cluster at this address")
    p.add_argument("--candidates", type=int, default=None, help="k, candidates per expansion")
    p.add_argument("--max-expansions", type=int, default=None, help="expansions per theorem")
    p.add_argument("--time-budget", type=float, default=None, help="wall-clock seconds per theorem")
    p.add_argument("--tactic-timeout", type=float, default=None,
                   help=f"seconds per tactic (default {ProverConfig().tactic_timeout:g}; "
                   f"{LEAN_TACTIC_TIMEOUT:g} for lean4/leandojo, where a timeout costs a Mathlib re-import)")
    p.add_argument("--model-server", default="auto", choices=("auto", "on", "off"),
                   help="serve llemma from batched model servers (one per GPU) shared by all workers; "
                   "auto = on when a GPU is present and the generator is llemma")
    p.add_argument("--engine", default="auto", choices=ENGINES,
                   help="model-server engine: hf (transformers) or vllm (optional package); "
                   "auto = vllm when installed and a GPU is present, else hf")
    p.add_argument("--lean-repl", default=None, metavar="PATH",
                   help="lean4 backend: a Lake project directory with the REPL built (default: lean_project/ "
                   "of this checkout) or a repl binary")
    p.add_argument("--sandbox", default=ProverConfig().sandbox, choices=("auto", "rlimits"),
                   help="prover processes: auto = rlimits + scrubbed env + no network where the OS allows "
                   "it; rlimits = without the network isolation")
    p.add_argument("--temperature", type=float, default=GeneratorConfig().temperature,
                   help="llemma decoding: 0 = beam search (default), > 0 = sampling at this temperature")
    p.add_argument("--seed", type=int, default=GeneratorConfig().seed, help="llemma sampling seed")
    p.add_argument("--max-new-tokens", type=int, default=GeneratorConfig().max_new_tokens,
                   help="llemma: longest tactic, in tokens")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="YAML file of settings named like the flags (e.g. experiments/configs/*.yaml); "
                   "flags given on the command line win")
    p.set_defaults(_prove_options={a.dest: tuple(a.option_strings) for a in p._actions if a.dest != "help"})
    return p


def _given_on_command_line(args: argparse.Namespace) -> set[str]:
    """Destinations of the flags that appear in ``args._argv`` (``--flag value`` or ``--flag=value``)."""
    argv: list[str] = list(getattr(args, "_argv", []))
    words = {w.split("=", 1)[0] for w in argv if w.startswith("-")}
    return {dest for dest, opts in args._prove_options.items() if words.intersection(opts)}


def apply_config_file(args: argparse.Namespace) -> None:
    """Fill ``args`` from ``--config FILE`` wherever the command line left a flag at its default."""
    if not getattr(args, "config", None):
        return
    import yaml

    try:
        with open(args.config, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ConfigError(f"--config {args.config!r}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {args.config!r}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"--config {args.config!r}: expected a mapping of flag names to values")
    options: dict[str, tuple[str, ...]] = args._prove_options
    settable = sorted(k for k, opts in options.items() if opts and k not in ("config", "verbose", "quiet"))
    given = _given_on_command_line(args)
    for key, value in data.items():
        dest = str(key).replace("-", "_")
        if dest not in settable:
            known = ", ".join(settable)
            raise ConfigError(f"--config {args.config!r}: unknown setting {key!r} (known: {known})")
        if dest == "theorems" and isinstance(value, list):
            value = ",".join(map(str, value))
        if dest not in given:
            setattr(args, dest, value)


def _abspath(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


def _repl_path(path: str | None) -> str | None:
    """``--lean-repl``: an existing path made absolute (workers may run elsewhere); a bare name (looked up
    on PATH by the backend) kept as given."""
    if not path:
        return None
    return os.path.abspath(os.path.expanduser(path)) if os.path.exists(os.path.expanduser(path)) else path


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def build_config(args: argparse.Namespace) -> RunConfig:
    """RunConfig from flags (search budgets are filled once the generator is resolved)."""
    apply_config_file(args)
    names = tuple(n.strip() for n in args.theorems.split(",") if n.strip()) if args.theorems else ()
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    tactic_timeout = args.tactic_timeout
    if tactic_timeout is None:
        from ..backends.base import backend_class

        tactic_timeout = backend_class(args.backend).default_tactic_timeout
    if args.lean_repl and args.backend != "lean4":
        raise ConfigError("--lean-repl is for --backend lean4")
    if args.model_server == "off" and args.engine != "auto":
        raise ConfigError("--engine chooses the model server's engine; it needs --model-server auto or on")
    prover = dataclasses.replace(ProverConfig(), tactic_timeout=tactic_timeout, sandbox=args.sandbox,
                                 executable=_repl_path(args.lean_repl))
    cfg = RunConfig(
        split=args.split,
        backend=args.backend,
        theorems=names,
        limit=args.limit,
        workers=workers,
        ray_address=args.ray_address,
        prover=prover,
        generator=GeneratorConfig(name=args.generator, model=absolute_model(args.model),
                                  load_kwargs=parse_load_kwargs(args.load_kwarg),
                                  max_new_tokens=args.max_new_tokens,
                                  replay_file=_abspath(args.replay_file),
                                  retrieval_data=_abspath(args.retrieval_data),
                                  bank_families=tuple(f for f in args.bank_families.split(",") if f),
                                  temperature=args.temperature, seed=args.seed),
    )
    if args.ray_address and workers == 0:
        raise ConfigError("--ray-address needs --workers >= 1")
    if args.replay_file and not os.path.isfile(args.replay_file):
        raise ConfigError(f"--replay-file {args.replay_file!r} does not exist")
    if args.retrieval_data and not os.path.isfile(os.path.join(args.retrieval_data, "steps.jsonl")):
        raise ConfigError(f"--retrieval-data {args.retrieval_data!r} holds no steps.jsonl "
                          "(give an `llemma-prover extract` output folder)")
    for flag, val in (("--candidates", args.candidates), ("--max-expansions", args.max_expansions)):
        if val is not None and val < 1:
            raise ConfigError(f"{flag} must be >= 1, got {val}")
    if args.time_budget is not None and args.time_budget <= 0:
        raise ConfigError(f"--time-budget must be > 0 seconds, got {args.time_budget}")
    cfg.validate()
    return cfg


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..data.minif2f import DATA_ENV, load_split, resolve_data_dir, select
    from ..results.rundir import RunDir
    from ..results.summary import summarize, summary_lines
    from ..workers.driver import effective_search, preflight, resolve_generator, run_metadata

    console = args._console
    cfg = build_config(args)

    # 1. data: read and validate everything before anything runs
    data_dir = resolve_data_dir(args.data_dir, os.environ.get(DATA_ENV), _repo_root())
    dataset = load_split(data_dir, cfg.data_system, cfg.split_name)
    theorems = select(dataset.theorems, cfg.theorems, cfg.limit)
    cfg = dataclasses.replace(cfg, data_dir=str(data_dir.resolve()))

    # 2. the generator (auto -> llemma or bank), then the budgets that go with it
    preflight(cfg)
    server = ServerConfig(engine=args.engine)
    with resolve_generator(cfg, model_server=args.model_server, server_config=server) as resolved:
        search = effective_search(resolved.name, args.candidates, args.max_expansions, args.time_budget)
        out = Path(args.out) if args.out else Path("runs") / f"{cfg.split}-{cfg.backend}-{resolved.name}"
        cfg = dataclasses.replace(cfg, search=search, generator=resolved.config, out_dir=str(out.resolve()))
        if args.workers is None and resolved.gpus_per_worker:
            # one language-model worker per GPU, not one per CPU core
            cfg = dataclasses.replace(cfg, workers=max(1, resolved.gpu_count))
        meta = run_metadata(cfg, resolved, dataset.files, dataset.sha256, ["llemma-prover", *args._argv])
        run_dir = RunDir.open(out, meta)
        run_log = _attach_run_log(run_dir.path / "run.log")

        todo = [t for t in theorems if not run_dir.done(t.name)]
        old = run_dir.records
        solved_before = sum(1 for t in theorems if t.name in old and old[t.name].proved)
        console.print(f"generator: [bold]{resolved.name}[/bold] ({resolved.note})", highlight=False)
        console.print(f"run directory: {run_dir.path}", highlight=False)
        console.print(
            f"{len(theorems)} theorems ({cfg.split}, {cfg.backend}); "
            f"{len(theorems) - len(todo)} already done, {len(todo)} to run; "
            f"workers: {cfg.workers if cfg.workers else 'in-process'}; budgets: k={search.candidates}, "
            f"max expansions {search.max_expansions}, {search.time_budget:g} s/theorem, "
            f"tactic timeout {cfg.prover.tactic_timeout:g} s",
            highlight=False,
        )
        if run_dir.repaired:
            n = run_dir.repaired
            console.print(f"[yellow]results.jsonl repaired: dropped {n} truncated record(s)[/]")
        try:
            _run_with_progress(cfg, resolved, todo, run_dir, console, solved_before, len(theorems))
        except KeyboardInterrupt:
            done = sum(1 for t in theorems if t.name in run_dir.records)
            console.print(f"interrupted: {done}/{len(theorems)} results kept in {run_dir.path}; "
                          "run the same command again to resume", highlight=False)
            raise
        except UserError:
            # failed before any theorem ran (Ray, the workers or a prover could not start): a new run
            # directory is removed again rather than left half-written
            if not run_dir.records:
                logging.getLogger().removeHandler(run_log)
                run_log.close()
                run_dir.discard_unused()
            raise
        finally:
            text_rows = summary_lines(summarize(run_dir.records[t.name] for t in theorems
                                                if t.name in run_dir.records))
            if run_dir.path.is_dir() and (run_dir.path / "config.json").exists():
                run_dir.write_summary([t.name for t in theorems])
    table = Table(title=f"{cfg.split} / {cfg.backend} / {resolved.name}")
    table.add_column("family")
    table.add_column("solved/total", justify="right")
    table.add_column("rate", justify="right")
    for fam, frac, rate in text_rows:
        table.add_row(fam, frac, rate, style="bold" if fam == "all" else None)
    from rich.console import Console

    Console().print(table)
    print(f"results: {run_dir.path / 'results.jsonl'}")
    return 0


def _run_with_progress(cfg: RunConfig, resolved: Any, todo: list[Any], run_dir: Any, console: Any,
                       solved_before: int, total: int) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..workers.driver import execute

    done_before = total - len(todo)
    solved = [solved_before]
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("solved {task.fields[solved]}"), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=console, transient=False, disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("proving", total=total, completed=done_before, solved=solved[0])

        def on_result(rec: Any) -> None:
            if rec.proved:
                solved[0] += 1
            progress.update(task, advance=1, solved=solved[0])
            log.info("%s: %s (%s; %d expansions, %.1f s)", rec.theorem, rec.status.value, rec.reason.value,
                     rec.expansions, rec.time.total)

        execute(cfg, resolved, todo, run_dir, on_result=on_result)


def _attach_run_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    return handler
