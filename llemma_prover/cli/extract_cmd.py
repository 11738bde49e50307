"""``llemma-prover extract``: proof-step data from Coq sources (steps.jsonl + card.json in --out)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "extract",
        help="proof-step data from Coq sources (every proof replayed step by step)",
        description="Replay every proof of the given Coq sources sentence by sentence in coqidetop and "
        "write one JSON line per tactic step (goals before, tactic, goals after) to DIR/steps.jsonl, with "
        "a data card DIR/card.json (counts, failures, time, sha256, miniF2F contamination check). "
        "Running the same command again resumes: files already done are skipped.",
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="folders of .v files")
    p.add_argument("--from-run", action="append", default=[], metavar="RUN",
                   help="instead of sources: the re-checked proofs of a `prove` run directory, read from its "
                   "traces (expert iteration; repeatable; a minif2f-test run is refused)")
    p.add_argument("--backend", default="coq", choices=("coq",), help="prover of the sources (coq)")
    p.add_argument("--coq-stdlib", action="store_true",
                   help="the installed standard library ($(coqc -where)/theories)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--logical-name", default=None,
                   help="logical name of a (single, non-installed) SOURCE folder (default: its folder name)")
    p.add_argument("--workers", type=int, default=None, help="parallel replays on Ray (default: CPU count; "
                   "0 = in this process)")
    p.add_argument("--ray-address", default=None, help="join an existing Ray cluster at this address")
    p.add_argument("--match", default=None, metavar="REGEX", help="only files whose library/path matches")
    p.add_argument("--limit", type=int, default=None, help="only the first N files (sorted by path)")
    p.add_argument("--split", default=None, choices=("train", "valid", "test"),
                   help="only the files of this by-file split (e.g. train: what retrieval indexes for "
                   "prove --library; the other files are not replayed)")
    p.add_argument("--file-timeout", type=float, default=900.0,
                   help="seconds to replay one file (default 900)")
    p.add_argument("--sandbox", default="auto", choices=("auto", "rlimits"),
                   help="prover process confinement")
    p.add_argument("--data-dir", default=None, help="miniF2F folder for the contamination check "
                   "(default: $LLEMMA_PROVER_DATA, else the copy shipped with the package)")
    p.add_argument("--skip-contamination", action="store_true",
                   help="do not run the miniF2F contamination check "
                   "(the card then says so; `train` refuses it)")
    return p


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..backends.sandbox import sandbox_for
    from ..core.config import ProverConfig
    from ..extract.card import build_card, check_contamination
    from ..extract.run import ExtractDir, ReplayOptions
    from ..extract.sources import compile_library, coq_stdlib, jobs_for, library_source
    from ..workers.extract_job import run_jobs

    console = args._console
    if args.from_run:
        if args.sources or args.coq_stdlib:
            raise ConfigError("--from-run writes its own data folder; give SOURCE folders/--coq-stdlib "
                              "in another `extract` run")
        return _from_runs(args)
    if not args.sources and not args.coq_stdlib:
        raise ConfigError("give SOURCE folders, --coq-stdlib or --from-run RUN")
    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {args.workers}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    if args.file_timeout <= 0:
        raise ConfigError("--file-timeout must be > 0")
    if args.logical_name and len(args.sources) != 1:
        raise ConfigError("--logical-name names exactly one SOURCE folder")
    if shutil.which("coqidetop.opt") is None:
        raise ConfigError("coqidetop.opt not found; install Coq 8.16 (Debian: apt-get install coq)")
    match, data_dir = _selection(args)
    sources = ([coq_stdlib()] if args.coq_stdlib else []) + [library_source(s, args.logical_name)
                                                            for s in args.sources]
    if len({s.library for s in sources}) != len(sources):
        raise ConfigError("two sources have the same library name; pass them separately")
    workers = (os.cpu_count() or 1) if args.workers is None else args.workers
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file")
    xdir = ExtractDir(out)
    settings = {"sources": [s.describe() for s in sources], "match": args.match, "limit": args.limit}
    if args.split:  # only then (an extract folder written before --split existed still resumes)
        settings["split"] = args.split
    _check_resume(out / "extract.json", settings)

    t0 = time.monotonic()
    started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    sandbox = sandbox_for(ProverConfig(sandbox=args.sandbox))
    options = ReplayOptions(file_timeout=args.file_timeout)
    build = tempfile.mkdtemp(prefix="llemma-extract-build-")
    compile_errors: dict[str, str] = {}
    done_before: int | None = None
    try:
        jobs = []
        for src in sources:
            root = None
            if not src.installed:
                root = str(Path(build) / src.library)
                console.print(f"compiling {src.library} ({src.root}) in dependency order", highlight=False)
                errs = compile_library(src, root, sandbox=sandbox)
                compile_errors.update({f"{src.library}/{k}": v for k, v in errs.items()})
            jobs += jobs_for(src, root)
        jobs = [j for j in jobs if (match is None or match.search(j.key))
                and (args.split is None or j.split == args.split)]
        jobs.sort(key=lambda j: j.key)
        if args.limit:
            jobs = jobs[: args.limit]
        if not jobs:
            raise ConfigError("no .v files to replay")
        done_before = sum(1 for j in jobs if xdir.done(j.key))
        console.print(f"{len(jobs)} files ({done_before} done already); workers: {workers or 'in-process'}; "
                      f"output {out}", highlight=False)
        counts = {"proofs": 0, "steps": 0, "failed": 0}
        for j in jobs:
            if xdir.done(j.key):
                s = xdir.summary(j.key)
                counts["proofs"] += s["proofs"]
                counts["steps"] += s["steps"]
                counts["failed"] += bool(s["failure"])
        with Progress(TextColumn("extracting"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("proofs {task.fields[proofs]} steps {task.fields[steps]} "
                                 "failed files {task.fields[failed]}"),
                      TimeElapsedColumn(), console=console, disable=not console.is_terminal) as bar:
            task = bar.add_task("extract", total=len(jobs), completed=done_before, **counts)

            def on_result(res: Any) -> None:
                counts["proofs"] += res.proofs
                counts["steps"] += len(res.steps)
                counts["failed"] += bool(res.failure)
                bar.update(task, advance=1, **counts)

            run_jobs(jobs, xdir, options, sandbox, workers=workers, ray_address=args.ray_address,
                     on_result=on_result)
    finally:
        shutil.rmtree(build, ignore_errors=True)
        # every run (an interrupted one too) is in the ledger: the card adds up the time of all runs
        with open(out / "runs.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"started_at": started_at, "wall_seconds": round(time.monotonic() - t0, 1),
                                 "workers": workers, "files_done_before": done_before,
                                 "command": ["llemma-prover", *args._argv]}) + "\n")
    wall = time.monotonic() - t0
    ledger = [json.loads(line) for line in (out / "runs.jsonl").read_text(encoding="utf-8").splitlines()
              if line.strip()]
    sha, lines = xdir.assemble(j.key for j in jobs)
    contamination: dict[str, Any] = {"checked": False, "reason": "--skip-contamination"}
    if data_dir is not None:
        console.print("checking the sources against miniF2F (30-gram overlap)", highlight=False)
        contamination = check_contamination([s.root for s in sources], data_dir)
    summaries = [xdir.summary(j.key) for j in jobs]
    card = build_card(summaries, sources=settings["sources"], steps_sha256=sha, steps_lines=lines,
                      options={**options.__dict__, "sandbox": sandbox.describe()}, wall_seconds=wall,
                      workers=workers, command=["llemma-prover", *args._argv], compile_errors=compile_errors,
                      contamination=contamination, runs=ledger)
    (out / "card.json").write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    c = card["counts"]
    print(f"{c['proofs']} proofs, {c['steps']} steps from {c['files']} files "
          f"({c['files_failed']} stopped early: {card['failures_by_kind'] or 'none'}); "
          f"{c['admitted_skipped']} Admitted skipped; this run {wall:.0f} s")
    if contamination.get("checked"):
        bad = [p["problem"] for p in contamination["contaminated"]]
        print(f"contamination (30-gram overlap with miniF2F): {', '.join(bad) if bad else 'none'}")
    print(f"data: {out / 'steps.jsonl'}  card: {out / 'card.json'}")
    return 0


def _selection(args: argparse.Namespace) -> tuple[re.Pattern[str] | None, Path | None]:
    """``--match`` compiled, and the miniF2F folder of the contamination check (None: skipped)."""
    match = None
    if args.match:
        try:
            match = re.compile(args.match)
        except re.error as exc:
            raise ConfigError(f"--match {args.match!r}: {exc}") from exc
    if args.skip_contamination:
        return match, None
    from ..data.minif2f import DATA_ENV, resolve_data_dir

    return match, resolve_data_dir(args.data_dir, os.environ.get(DATA_ENV), _repo_root())


def _from_runs(args: argparse.Namespace) -> int:
    """``extract --from-run RUN...``: the steps of the runs' re-checked proofs (``extract/from_runs.py``)."""
    from ..extract.card import build_run_card, check_contamination
    from ..extract.from_runs import expected_overlap, steps_from_run
    from ..results.rundir import atomic_write

    match, data_dir = _selection(args)
    t0 = time.monotonic()
    runs = [steps_from_run(r, data_dir, match) for r in args.from_run]
    if len({Path(r.run).name for r in runs}) != len(runs):
        raise ConfigError("two --from-run folders have the same name; their libraries would collide")
    steps = [s for r in runs for s in r.steps]
    if not steps:
        raise ConfigError("the runs hold no re-checked proof with a trace (nothing to extract)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file")
    out.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in steps)
    atomic_write(out / "steps.jsonl", text)
    contamination: dict[str, Any] = {"checked": False, "reason": "--skip-contamination"}
    if data_dir is not None:
        # the proof files of the theorems kept, not the whole proofs/ folder (--match leaves some out)
        contamination = check_contamination([f for r in runs for f in r.files], data_dir,
                                            expected=expected_overlap(runs))
    card = build_run_card(runs, text.encode("utf-8"), contamination=contamination,
                          wall_seconds=time.monotonic() - t0, command=["llemma-prover", *args._argv])
    atomic_write(out / "card.json", json.dumps(card, indent=1, ensure_ascii=False) + "\n")
    for r in runs:
        print(f"{r.run} ({r.split}): {len(r.theorems)} proofs, {len(r.steps)} steps; "
              f"{len(r.skipped)} proved theorems left out")
    if contamination.get("checked"):
        bad = [p["problem"] for p in contamination["unexpected"]]
        print(f"contamination beyond the runs' own problems (30-gram overlap with miniF2F): "
              f"{', '.join(bad) if bad else 'none'}")
    print(f"data: {out / 'steps.jsonl'}  card: {out / 'card.json'}")
    return 0


def _check_resume(path: Path, settings: dict[str, Any]) -> None:
    """First run: record the settings; a rerun must ask for the same files (else: another --out)."""
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != settings:
            raise ConfigError(f"{path.parent} holds an extraction of other sources or files; "
                              "use another --out")
        return
    path.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
