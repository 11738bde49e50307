"""``llemma-prover import llemma-f2f FILE... --out RUN``: published results -> our run format."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..core.errors import UserError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "import",
        help="import published proof-search results as a run directory",
        description="Convert published result files into a run directory that `trace` and `report` read.",
    )
    sub = p.add_subparsers(dest="import_format", metavar="FORMAT")
    sub.required = True
    f = sub.add_parser(
        "llemma-f2f",
        help="Llemma formal2formal miniF2F (Lean 4) result shards",
        description="Import results__<model>__<shard>.json files of "
        "github.com/wellecks/llemma_formal2formal. "
        "Theorems that are not problems of the benchmark split (the helper lemma sum_pairs) are excluded "
        "and listed in config.json.",
    )
    f.add_argument("files", nargs="+", metavar="FILE", help="result shards of one model")
    f.add_argument("--out", required=True, help="new run directory")
    f.add_argument(
        "--statements",
        default=None,
        help="JSONL of the benchmark's problems (name or full_name per line) used to drop non-problems "
        "(default: lean4/<split>.jsonl of the miniF2F data dir)",
    )
    f.add_argument(
        "--data-dir", default=None, help="miniF2F folder (default: $LLEMMA_PROVER_DATA, else shipped copy)"
    )
    f.add_argument("--split", default="test", choices=["test", "valid"], help="benchmark split of the shards")
    f.add_argument(
        "--keep-all", action="store_true", help="do not exclude theorems missing from the statements"
    )
    f.add_argument("--label", default=None, help="run label in reports (default: the model name)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..importers.llemma_f2f import import_llemma_f2f, read_benchmark_names

    if args.import_format != "llemma-f2f":
        raise UserError(f"unknown import format {args.import_format!r}")
    names = None
    if not args.keep_all:
        stmts = args.statements
        if stmts is None:
            from ..data.minif2f import DATA_ENV, resolve_data_dir

            data_dir = resolve_data_dir(args.data_dir, os.environ.get(DATA_ENV))
            stmts = str(data_dir / "lean4" / f"{args.split}.jsonl")
        names = read_benchmark_names(stmts, split=args.split)
    res = import_llemma_f2f(
        args.files, args.out, benchmark_names=names, label=args.label, command=getattr(args, "_argv", [])
    )
    rate = 100.0 * res.proved / res.records if res.records else 0.0
    print(f"imported {res.records} theorems of {res.model} ({res.proved} proved, {rate:.2f}%) into {res.out}")
    for e in res.excluded:
        print(f"excluded {e.theorem} ({e.file}): {e.reason}", file=sys.stderr)
    for d in res.duplicates:
        print(f"note: {d} appears in more than one shard; a proof from any shard was kept", file=sys.stderr)
    return 0
