"""``llemma-prover doctor``: run the conformance checklist, print the table, write the JSON report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_FAILED = 1


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..doctor.runner import BACKENDS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "doctor",
        help="check that the prover, the model engine and the GPU behave as this package expects",
        description="Runs a conformance checklist against the real component (within --budget seconds) and "
        "prints a table: check, expected, seen, pass/fail, what to do. Exit 1 if any check failed. "
        "Model and GPU checks run when --engine or --model is given.",
    )
    p.add_argument("--backend", choices=BACKENDS, default="coq", help="prover to check (none: skip)")
    p.add_argument("--engine", choices=("hf", "vllm"), default=None, help="model engine to check")
    p.add_argument(
        "--model",
        default=None,
        help="model id or folder, or random:tiny / random:llemma-7b (random weights, offline)",
    )
    p.add_argument("--lean-repl", default=None, help="Lean REPL: a Lake project directory or a repl binary")
    p.add_argument("--isabelle", default=None, help="the isabelle executable (default: on PATH)")
    p.add_argument("--k", type=int, default=4, help="candidates the model checks ask for")
    p.add_argument("--device", default="auto", help="model device: auto, cpu, cuda")
    p.add_argument("--dtype", default="auto", help="model dtype: auto, bfloat16, float32")
    p.add_argument("--no-matmul", action="store_true", help="skip the bf16 matmul-rate measurement")
    p.add_argument("--budget", type=float, default=120.0, help="seconds for all checks (default 120)")
    p.add_argument("--json", type=Path, default=None, help="write the report (every check, environment) here")
    return p


def run(args: argparse.Namespace) -> int:
    from ..doctor import DoctorOptions, run_doctor

    opts = DoctorOptions(
        backend=args.backend,
        engine=args.engine,
        model=args.model,
        lean_repl=args.lean_repl,
        isabelle=args.isabelle,
        budget_s=args.budget,
        k=args.k,
        device=args.device,
        dtype=args.dtype,
        gpu=not args.no_matmul,
    )
    report = run_doctor(opts)
    print_table(report)
    if args.json is not None:
        text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
        args.json.write_text(text, encoding="utf-8")
        print(f"doctor: report written to {args.json}", file=sys.stderr)
    return 0 if report.ok else EXIT_FAILED


def print_table(report: Any) -> None:
    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table
    except ImportError:  # a bare machine (bench/gpu_check.sh runs with torch + transformers only)
        print_plain(report)
        return

    table = Table(show_lines=False)
    for col in ("component", "check", "expected", "seen", "result", "what to do"):
        table.add_column(col, overflow="fold")
    style = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}
    for c in report.checks:
        o = c.outcome.value
        # the checks' own text is shown as it is: "[leandojo]" in a remedy is not a style tag
        table.add_row(
            escape(c.component),
            escape(c.name),
            escape(c.expected),
            escape(f"{c.seen} [{c.elapsed:.2f}s]"),
            f"[{style[o]}]{o}[/]",
            escape(c.remedy),
        )
    console = Console(width=max(160, Console().width))
    console.print(table)
    n = report.counts()
    verdict = "all checks passed" if report.ok else f"{n['fail']} check(s) FAILED"
    console.print(
        f"doctor: {verdict} ({n['pass']} pass, {n['warn']} warn, {n['skip']} skip, "
        f"{n['fail']} fail) in {report.elapsed:.1f} s",
        markup=False,
    )


def print_plain(report: Any) -> None:
    """The table without rich: one check per line."""
    for c in report.checks:
        line = f"{c.component:8} {c.name:28} {c.outcome.value.upper():5} {c.seen} [{c.elapsed:.2f}s]"
        print(line + (f"  -> {c.remedy}" if c.remedy else ""))
    n = report.counts()
    verdict = "all checks passed" if report.ok else f"{n['fail']} check(s) FAILED"
    print(f"doctor: {verdict} in {report.elapsed:.1f} s")


def main(argv: list[str] | None = None) -> int:
    """``python -m llemma_prover.cli.doctor_cmd ...``: the subcommand without the rest of the CLI (no rich
    needed; what bench/gpu_check.sh runs on a machine with only torch + transformers)."""
    from ..core.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m llemma_prover.cli.doctor_cmd")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["doctor", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args)
    except UserError as exc:
        print(f"llemma-prover doctor: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
