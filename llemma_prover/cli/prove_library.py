"""``llemma-prover prove --library``: a library's lemmas, each in its file's context (docs/library.md)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from .prove import _attach_run_log, build_config, library_config, start_planned, with_config_file

log = logging.getLogger("llemma_prover.cli.prove")


def run_library(args: argparse.Namespace) -> int:
    from ..results.rundir import RunDir
    from ..workers.driver import preflight, run_metadata
    from ..workers.library_driver import check_retrieval_data, plan_library, write_lemma_list
    from ..workers.plan import probe_machine

    console = args._console
    a = with_config_file(args)
    first = library_config(a)
    assert first is not None
    names = tuple(n.strip() for n in a.theorems.split(",") if n.strip()) if a.theorems else ()
    machine = probe_machine(a.generator)
    # 1. the lemmas: every file of the split walked by Coq (cached), then the sample, before any search
    probe = build_config(args, machine=machine, library=first, split=f"library-{first.split}")
    preflight(probe)
    t0 = time.monotonic()
    scanned = [0]

    def on_file(scan: Any) -> None:
        scanned[0] += 1
        log.info("scanned %s: %d lemmas (%.1f s%s)", scan.job.key, len(scan.lemmas), scan.elapsed,
                 f"; stopped: {scan.failure}" if scan.failure else "")

    plan = plan_library(first, probe.prover, workers=max(1, probe.workers), theorems=names, limit=a.limit,
                        on_file=on_file)
    console.print(f"{plan.source.library}: {len(plan.scans)} files, "
                  f"{sum(len(s.lemmas) for s in plan.scans)} Qed/Defined lemmas found in "
                  f"{time.monotonic() - t0:.1f} s; {len(plan.selected)} selected", highlight=False)
    lemmas = tuple(lem.key for lem in plan.selected)
    library = library_config(a, lemmas)
    cfg = build_config(args, machine=machine, library=library,
                       split=f"{plan.source.library}-{first.split}")
    n_steps = check_retrieval_data(cfg.generator.retrieval_data, plan)
    if n_steps:
        log.info("retrieval data: %d steps, none of a file this run attempts", n_steps)

    # 2. the generator, the run directory, the jobs
    cfg, started, note = start_planned(args, cfg, machine)
    with started as resolved:
        meta = run_metadata(cfg, resolved, plan.files, plan.data_hash, ["llemma-prover", *args._argv],
                            note=note)
        meta["library_plan"] = {
            **plan.source.describe(), "build_root": plan.root,
            "files": {s.job.rel: {"lemmas": len(s.lemmas), "automation": list(plan.automation[s.job.rel]),
                                  "walk_failure": s.failure} for s in plan.scans},
            "selected": len(plan.selected), "without_full_automation": plan.without_automation(),
        }
        run_dir = RunDir.open(Path(cfg.out_dir), meta)
        _attach_run_log(run_dir.path / "run.log")
        write_lemma_list(run_dir, plan)
        keys = [lem.key for lem in plan.selected]
        done = sum(1 for k in keys if run_dir.done(k))
        solved_before = sum(1 for k in keys if k in run_dir.records and run_dir.records[k].proved)
        console.print(f"generator: [bold]{cfg.generator.name}[/bold] ({note})", highlight=False)
        console.print(f"run directory: {run_dir.path}", highlight=False)
        console.print(f"{len(keys)} lemmas ({cfg.split}); {done} already done, {len(keys) - done} to run; "
                      f"{plan.without_automation()} run without part of the automation; workers: "
                      f"{cfg.workers if cfg.workers else 'in-process'}; {cfg.search.time_budget:g} s/lemma, "
                      f"tactic timeout {cfg.prover.tactic_timeout:g} s", highlight=False)
        try:
            _run_with_progress(cfg, resolved, plan, run_dir, console, solved_before, done, len(keys))
        except KeyboardInterrupt:
            kept = sum(1 for k in keys if k in run_dir.records)
            console.print(f"interrupted: {kept}/{len(keys)} results kept in {run_dir.path}; "
                          "run the same command again to resume", highlight=False)
            raise
        except UserError:
            if not run_dir.records:
                run_dir.discard_unused()
            raise
        finally:
            if run_dir.path.is_dir() and (run_dir.path / "config.json").exists():
                run_dir.write_summary(keys)
    solved = sum(1 for k in keys if k in run_dir.records and run_dir.records[k].proved)
    print(f"{cfg.split}: {solved}/{len(keys)} proved and checked")
    print(f"results: {run_dir.path / 'results.jsonl'}")
    return 0


def _run_with_progress(cfg: Any, resolved: Any, plan: Any, run_dir: Any, console: Any, solved_before: int,
                       done_before: int, total: int) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..workers.library_driver import execute_library

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

        execute_library(cfg, resolved, plan, run_dir, on_result=on_result)
