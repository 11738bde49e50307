"""``llemma-prover trace``: inspect the searches of a run (list, show, path, html)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from ..core.errors import UserError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "trace",
        help="inspect the search traces of a run",
        description="Inspect a run directory: list theorems, show a search tree, export a proof path, "
        "or write a self-contained HTML viewer.",
    )
    sub = p.add_subparsers(dest="trace_command", metavar="ACTION")
    sub.required = True

    ls = sub.add_parser("list", help="theorems with status, reason, time, expansions")
    ls.add_argument("run", help="run directory")
    ls.add_argument(
        "--status",
        action="append",
        default=[],
        choices=["proved", "failed", "error"],
        help="only this status (repeatable)",
    )
    ls.add_argument("--family", action="append", default=[], help="only this problem family (repeatable)")
    ls.add_argument("--reason", action="append", default=[], help="only this termination reason (repeatable)")
    ls.add_argument("--name", default=None, help="theorem-name glob, e.g. 'mathd_algebra_1*'")
    ls.add_argument(
        "--sort",
        default="theorem",
        choices=["theorem", "status", "reason", "time", "expansions", "nodes", "family"],
    )
    ls.add_argument("--json", action="store_true", help="print the matching records as JSON lines")

    sh = sub.add_parser("show", help="the search tree of one theorem in the terminal")
    sh.add_argument("run")
    sh.add_argument("theorem")
    sh.add_argument("--errors", type=int, default=3, help="failed attempts shown per node (-1: all)")
    sh.add_argument("--goal-lines", type=int, default=3, help="goal lines per node (0: all)")
    sh.add_argument("--proof-only", action="store_true", help="only the proof path")
    sh.add_argument("--max-depth", type=int, default=None, help="do not descend below this depth")
    sh.add_argument("--no-tree", action="store_true", help="only the budget tables")

    pa = sub.add_parser("path", help="the proof (or the path to a node) as a checkable file")
    pa.add_argument("run")
    pa.add_argument("theorem")
    pa.add_argument(
        "--node",
        type=int,
        default=None,
        help="export the path to this trace node (default: the proof, or the deepest node)",
    )
    pa.add_argument(
        "--data-dir", default=None, help="miniF2F folder (default: $LLEMMA_PROVER_DATA, else shipped copy)"
    )
    pa.add_argument("-o", "--output", default=None, help="write here instead of stdout")

    ht = sub.add_parser("html", help="one self-contained HTML viewer for the run")
    ht.add_argument("run")
    ht.add_argument("-o", "--output", default=None, help="output file (default: RUN/trace.html)")
    ht.add_argument("--max-error-chars", type=int, default=2000, help="clip prover error messages")
    ht.add_argument(
        "--compress",
        default="auto",
        choices=["auto", "always", "never"],
        help="embed the data gzipped (auto: when over 2 MB; the page unpacks it itself)",
    )
    return p


def _out() -> Console:
    # piped output (a file, a pager) gets a wide table instead of rich's 80-column default
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def run(args: argparse.Namespace) -> int:
    from ..traces.run import load_run

    run_view = load_run(args.run)
    action = args.trace_command
    if action == "list":
        return _list(run_view, args)
    if action == "show":
        return _show(run_view, args)
    if action == "path":
        return _path(run_view, args)
    if action == "html":
        return _html(run_view, args)
    raise UserError(f"unknown trace action {action!r}")


def _list(run_view: Any, args: argparse.Namespace) -> int:
    from ..traces.run import filter_records, sort_records
    from ..traces.terminal import records_table

    recs = filter_records(
        run_view.records, status=args.status, family=args.family, name=args.name, reason=args.reason
    )
    recs = sort_records(recs, args.sort)
    if args.json:
        for r in recs:
            sys.stdout.write(r.to_json() + "\n")
        return 0
    solved = sum(r.proved for r in recs)
    title = f"{run_view.name}: {len(recs)} theorems, {solved} proved"
    _out().print(records_table(recs, title=title))
    return 0


def _show(run_view: Any, args: argparse.Namespace) -> int:
    from ..traces.terminal import TreeOptions, budget_tables, proof_path_table, records_table, trace_tree

    rec = run_view.record(args.theorem)
    con = _out()
    con.print(records_table([rec], proofs=True))
    trace = run_view.trace(rec)
    if trace is None:
        con.print(
            f"[yellow]no search trace recorded for {rec.theorem}[/yellow]"
            + (f": {rec.error}" if rec.error else "")
        )
        return 0
    if not args.no_tree:
        con.print(
            trace_tree(
                trace,
                TreeOptions(
                    max_errors=args.errors,
                    goal_lines=args.goal_lines,
                    proof_only=args.proof_only,
                    max_depth=args.max_depth,
                ),
            )
        )
    pt = proof_path_table(trace)
    if pt is not None:
        con.print(pt)
    con.print(budget_tables(trace))
    return 0


def _path(run_view: Any, args: argparse.Namespace) -> int:
    from ..data.minif2f import DATA_ENV, default_data_dir
    from ..traces.export import export_path, write_export

    data_dir = args.data_dir or os.environ.get(DATA_ENV) or default_data_dir()
    exported = export_path(run_view, args.theorem, node=args.node, data_dir=data_dir)
    if args.output:
        p = write_export(exported, args.output)
        state = "complete proof" if exported.complete else "partial path (proof left open)"
        print(f"wrote {p} ({state}, {len(exported.tactics)} tactics)", file=sys.stderr)
    else:
        sys.stdout.write(exported.text)
    return 0


def _html(run_view: Any, args: argparse.Namespace) -> int:
    from ..traces.html import HtmlOptions, write_html

    out = Path(args.output) if args.output else run_view.path / "trace.html"
    p = write_html(run_view, out, HtmlOptions(max_error_chars=args.max_error_chars, compress=args.compress))
    size = p.stat().st_size
    print(f"wrote {p} ({len(run_view.records)} theorems, {size / 1e6:.2f} MB); open it in a browser")
    return 0
