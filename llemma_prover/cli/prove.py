"""``llemma-prover prove``: best-first search over a miniF2F split, results in a run directory."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import (
    BACKENDS,
    BANK_ONCE,
    DATA_SYSTEM,
    DATASET_SPLIT,
    ENGINES,
    GENERATORS,
    LEAN_TACTIC_TIMEOUT,
    LIBRARY_SPLITS,
    SPLITS,
    GeneratorConfig,
    LibraryConfig,
    ProverConfig,
    RunConfig,
    uses_model,
)
from ..core.errors import ConfigError, GeneratorError, UserError
from ..lm.loading import absolute_model, parse_load_kwargs

if TYPE_CHECKING:
    from ..workers.driver import ResolvedGenerator
    from ..workers.plan import Machine, RunRequest

log = logging.getLogger("llemma_prover.cli.prove")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "prove",
        help="search for proofs of a miniF2F split",
        description="Best-first proof search over a miniF2F split; every proof is re-checked from scratch. "
        "Running the same command again resumes the run.",
    )
    p.add_argument("--split", default=None, choices=sorted(SPLITS) + list(LIBRARY_SPLITS),
                   help="benchmark split (default minif2f-test); with --library: the library's by-file split "
                   "train|valid|test (default test)")
    p.add_argument("--library", default=None, metavar="coq-stdlib|DIR",
                   help="prove a library's own lemmas in their files' context instead of a benchmark: "
                   "coq-stdlib, or a folder of .v files (see docs/library.md)")
    p.add_argument("--logical-name", default=None, metavar="NAME",
                   help="--library DIR: the folder's Coq logical name (default: its name)")
    p.add_argument("--files", default="", metavar="A.v,B/C.v",
                   help="--library: only these files (relative to the library root) instead of the split")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="--library: a fixed random sample of N lemmas, drawn with --seed before anything "
                   "runs")
    p.add_argument("--online-learning", action="store_true",
                   help="--library: the steps of the original proofs earlier in the same file join the "
                   "generator's index as the file proceeds (Tactician-style; retrieval generators)")
    p.add_argument("--automation", default="", metavar="M1,M2",
                   help="--library: the automation modules Required at the top of each file where coqdep "
                   "shows "
                   "they do not load it (default: the bank's: Lia, Lra, Psatz, Ring, Field, PreOmega, Zify, "
                   "CoqHammer's Tactics; add Hammer.Plugin.Hammer for CoqHammer's `hammer`)")
    p.add_argument("--lemmas-per-job", type=int, default=LibraryConfig().lemmas_per_job, metavar="N",
                   help="--library: sampled lemmas per worker job (a job replays its file up to them)")
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
                   help="bank: the candidate families to use (default: all; for ablations, see docs/bank.md)")
    p.add_argument("--bank-once", default=",".join(BANK_ONCE), metavar="A,B",
                   help="bank: the cost classes proposed at most once per theorem (default: %(default)s; "
                   "'' for none; docs/bank.md)")
    p.add_argument("--data-dir", default=None,
                   help="miniF2F folder holding coq/, lean4/, isabelle/ (default: $LLEMMA_PROVER_DATA, "
                   "else the copy shipped with the package)")
    p.add_argument("--dataset", default=None, metavar="FILE.jsonl",
                   help="prove the theorems of this JSON-lines file instead of a miniF2F split "
                   "(format: docs/benchmarks.md)")
    p.add_argument("--manifest", default=None, metavar="FILE",
                   help="statement manifest whose flags the summary excludes (default: the shipped one of "
                   "the miniF2F split; `llemma-prover audit` writes one for a --dataset)")
    p.add_argument("--theorems", default="", help="comma-separated theorem names (default: all); with "
                   "--library: lemma ids (file.v:name) or names")
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


def with_config_file(args: argparse.Namespace) -> argparse.Namespace:
    """The settings of a run: a copy of ``args`` filled from ``--config FILE`` wherever the command line
    left a flag at its default. The file is read once: the settings are kept on ``args`` (as
    ``_settings``) and every later call returns them."""
    cached = getattr(args, "_settings", None)
    if cached is not None:
        return cached
    merged = _merge_config_file(args)
    args._settings = merged
    return merged


def _merge_config_file(args: argparse.Namespace) -> argparse.Namespace:
    merged = argparse.Namespace(**vars(args))
    if not getattr(args, "config", None):
        return merged
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
            setattr(merged, dest, value)
    return merged


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


def _check_flags(a: argparse.Namespace) -> None:
    """The checks of flag values that need no plan (one-line ``ConfigError``s); run once per settings
    (``with_config_file``), however often it is called."""
    if getattr(a, "_flags_checked", False):
        return
    _check_flag_values(a)
    a._flags_checked = True


def _check_flag_values(a: argparse.Namespace) -> None:
    if a.model_server == "off" and a.engine != "auto":
        raise ConfigError("--engine chooses the model server's engine; it needs --model-server auto or on")
    if a.ray_address and a.workers == 0:
        raise ConfigError("--ray-address needs --workers >= 1")
    if a.replay_file and not os.path.isfile(a.replay_file):
        raise ConfigError(f"--replay-file {a.replay_file!r} does not exist")
    if a.retrieval_data and not os.path.isfile(os.path.join(a.retrieval_data, "steps.jsonl")):
        raise ConfigError(f"--retrieval-data {a.retrieval_data!r} holds no steps.jsonl "
                          "(give an `llemma-prover extract` output folder)")
    for flag, val in (("--candidates", a.candidates), ("--max-expansions", a.max_expansions)):
        if val is not None and val < 1:
            raise ConfigError(f"{flag} must be >= 1, got {val}")
    if a.time_budget is not None and a.time_budget <= 0:
        raise ConfigError(f"--time-budget must be > 0 seconds, got {a.time_budget}")
    if a.workers is not None and a.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {a.workers}")
    library_only = {"--files": a.files, "--sample": a.sample, "--online-learning": a.online_learning,
                    "--automation": a.automation,
                    "--logical-name": a.logical_name}
    if not a.library:
        given = [flag for flag, val in library_only.items() if val]
        if given:
            raise ConfigError(f"{given[0]} needs --library")
        if a.split in LIBRARY_SPLITS:
            raise ConfigError(f"--split {a.split} is a library split (needs --library); benchmark splits: "
                              f"{', '.join(SPLITS)}")
        if a.split is not None and a.split not in SPLITS:
            raise ConfigError(f"unknown split {a.split!r}; choose one of {', '.join(SPLITS)}")
    elif a.dataset:
        raise ConfigError("--library and --dataset are two sources of theorems; give one")
    elif a.split is not None and a.split not in LIBRARY_SPLITS:
        raise ConfigError(f"--split with --library is one of {', '.join(LIBRARY_SPLITS)}, got {a.split}")


def library_config(a: argparse.Namespace, lemmas: tuple[str, ...] = ()) -> LibraryConfig | None:
    """The library section of a run (None without ``--library``); ``lemmas``: the drawn sample."""
    if not a.library:
        return None
    library = a.library if a.library == "coq-stdlib" else os.path.abspath(a.library)
    cfg = LibraryConfig(library=library, logical=a.logical_name, split=a.split or "test",
                        files=tuple(f.strip() for f in a.files.split(",") if f.strip()),
                        sample=a.sample, seed=a.seed, lemmas=lemmas, online_learning=bool(a.online_learning),
                        automation=tuple(m.strip() for m in a.automation.split(",") if m.strip()),
                        lemmas_per_job=a.lemmas_per_job)
    cfg.validate()
    return cfg


def build_config(args: argparse.Namespace, *, machine: Machine, data_dir: str = "",
                 library: LibraryConfig | None = None, split: str | None = None) -> RunConfig:
    """The one, final ``RunConfig`` of a run: the ``--config`` YAML and the flags as a request
    (``run_request``), planned for ``machine`` (what ``workers.plan.probe_machine`` found) by
    ``workers.plan.plan_run``: ``--generator auto``, model servers and engine, GPUs per worker, the
    worker count, budgets, time policy, run directory. Nothing changes it afterwards."""
    from ..workers.plan import plan_run

    request = run_request(args, data_dir=data_dir, library=library, split=split)
    return plan_run(request, machine)


def run_request(args: argparse.Namespace, *, data_dir: str = "", library: LibraryConfig | None = None,
                split: str | None = None) -> RunRequest:
    """What the flags and the ``--config`` file ask for, checked, as values (paths made absolute)."""
    from ..workers.plan import RunRequest

    a = with_config_file(args)
    _check_flags(a)
    names = tuple(n.strip() for n in a.theorems.split(",") if n.strip()) if a.theorems else ()
    replay_file, retrieval_data = _abspath(a.replay_file), _abspath(a.retrieval_data)
    dataset, executable = _abspath(a.dataset), _repl_path(a.lean_repl)
    families = tuple(f for f in a.bank_families.split(",") if f)
    once = tuple(c.strip() for c in a.bank_once.split(",") if c.strip())
    generator = GeneratorConfig(name=a.generator, model=absolute_model(a.model),
                                load_kwargs=parse_load_kwargs(a.load_kwarg),
                                max_new_tokens=a.max_new_tokens, replay_file=replay_file,
                                retrieval_data=retrieval_data, bank_families=families, bank_once=once,
                                temperature=a.temperature, seed=a.seed)
    return RunRequest(
        backend=a.backend, generator=generator,
        split=split or (DATASET_SPLIT if a.dataset else (a.split or "minif2f-test")),
        dataset=dataset or "", data_dir=data_dir, out=a.out, theorems=names, limit=a.limit,
        workers=a.workers, ray_address=a.ray_address, model_server=a.model_server, engine=a.engine,
        candidates=a.candidates, max_expansions=a.max_expansions, time_budget=a.time_budget,
        tactic_timeout=a.tactic_timeout, sandbox=a.sandbox, executable=executable, library=library,
    )


def start_planned(args: argparse.Namespace, cfg: RunConfig, machine: Machine
                  ) -> tuple[RunConfig, ResolvedGenerator, str]:
    """Start the generator ``cfg`` plans: ``(config, started generator, note)``.

    Under ``--generator auto`` a llemma that cannot load or whose model servers cannot start means
    bank: a new config is then built (same flags, for a machine where llemma failed) before anything
    ran or was recorded; the first one is dropped, never changed.
    """
    from ..workers.driver import start_generator

    why = cfg.generator_choice
    try:
        started = start_generator(cfg)
    except GeneratorError as exc:
        if why is None or not uses_model(cfg.generator.name):  # only a model that auto chose falls back
            raise
        what = "the llemma model server could not start" if cfg.serving else "llemma could not load"
        log.warning("auto: %s, using bank: %s", what, exc)
        failed = dataclasses.replace(machine, llemma_failed=f"{what} ({exc})")
        cfg = build_config(args, data_dir=cfg.data_dir, machine=failed)
        why = cfg.generator_choice
        started = start_generator(cfg)
    if why is None:
        return cfg, started, started.note
    what = started.note if cfg.serving else cfg.generator.name
    if uses_model(cfg.generator.name) and not cfg.serving:
        what = f"{cfg.generator.name} ({cfg.generator.model})"
    return cfg, started, f"{why}, using {what}"


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..data.manifest import flagged_summary, run_manifest
    from ..data.minif2f import DATA_ENV, load_theorems, select
    from ..results.rundir import RunDir
    from ..results.summary import summarize, summary_lines
    from ..workers.driver import preflight, run_metadata
    from ..workers.plan import probe_machine

    console = args._console
    _check_flags(with_config_file(args))  # flag errors first, before the data is looked for
    if with_config_file(args).library:  # ``prove_cmd.run`` sends these to ``prove_library``
        raise ConfigError("prove --library runs through prove_cmd.run (prove_library.run_library)")
    # 1. the one config (flags checked, generator planned for this machine, budgets, workers), then the
    #    data: read and validated before anything runs
    a = with_config_file(args)
    dataset, data_dir = load_theorems(a.dataset, a.data_dir, os.environ.get(DATA_ENV),
                                      DATA_SYSTEM[a.backend], SPLITS[a.split or "minif2f-test"], _repo_root())
    machine = probe_machine(a.generator)
    cfg = build_config(args, data_dir=data_dir, machine=machine)
    theorems = select(dataset.theorems, cfg.theorems, cfg.limit)
    from ..backends.base import proof_dialect

    proof_dialect(cfg.backend).require_footers_honoured(theorems)

    # 2. the prover can be found; the generator starts (auto -> bank if llemma cannot)
    preflight(cfg)
    cfg, started, note = start_planned(args, cfg, machine)
    with started as resolved:
        search = cfg.search
        out = Path(cfg.out_dir)
        meta = run_metadata(cfg, resolved, dataset.files, dataset.sha256, ["llemma-prover", *args._argv],
                            note=note)
        manifest = run_manifest(a.manifest, cfg.data_system, cfg.split_name, theorems)
        if manifest is not None:
            meta["manifest"] = manifest
        run_dir = RunDir.open(out, meta)
        run_log = _attach_run_log(run_dir.path / "run.log")

        todo = [t for t in theorems if not run_dir.done(t.name)]
        old = run_dir.records
        solved_before = sum(1 for t in theorems if t.name in old and old[t.name].proved)
        console.print(f"generator: [bold]{cfg.generator.name}[/bold] ({note})", highlight=False)
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
    table = Table(title=f"{cfg.split} / {cfg.backend} / {cfg.generator.name}")
    table.add_column("family")
    table.add_column("solved/total", justify="right")
    table.add_column("rate", justify="right")
    for fam, frac, rate in text_rows:
        table.add_row(fam, frac, rate, style="bold" if fam == "all" else None)
    from rich.console import Console

    Console().print(table)
    if manifest is not None:
        solved = [n for n, r in run_dir.records.items() if r.proved]
        print(f"solved: {flagged_summary(solved, [t.name for t in theorems], manifest['flagged'])} "
              "by the statement manifest")
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
