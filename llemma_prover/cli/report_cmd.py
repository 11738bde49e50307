"""``llemma-prover report RUN [RUN...]``: tables (markdown, CSV), plots (PNG) and run comparison."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="tables, plots and comparisons over one or more runs",
        description="Solved/total per split and family, pass@k over runs of the same split, plots "
        "(solved vs expansions / wall-clock, model vs prover time, tactic frequency) and a side-by-side "
        "comparison of every run with the first one.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (the first is the baseline)")
    p.add_argument(
        "-o",
        "--out",
        default=None,
        help="output directory (default: RUN/report for one run, ./report otherwise)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    p.add_argument("--top-tactics", type=int, default=15, help="tactics listed per run")
    return p


def run(args: argparse.Namespace) -> int:
    from ..reports.report import build_report
    from ..traces.run import load_run

    runs = [load_run(r) for r in args.runs]
    names = [r.name for r in runs]
    if len(set(names)) != len(names):  # two runs with the same folder name: tell them apart by position
        runs = [_relabel(r, f"{r.name}#{i + 1}") for i, r in enumerate(runs)]
    out = Path(args.out) if args.out else (runs[0].path / "report" if len(runs) == 1 else Path("report"))
    rep = build_report(runs, out, plots=not args.no_plots, top_tactics=args.top_tactics)
    sys.stdout.write(rep.markdown + "\n")
    print(f"report: {out / 'report.md'} ({len(rep.files)} files)", file=sys.stderr)
    return 0


def _relabel(run: Any, label: str) -> Any:
    import dataclasses

    return dataclasses.replace(run, config={**run.config, "label": label})
