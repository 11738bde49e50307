"""``llemma-prover contamination CORPUS...``: n-gram overlap between miniF2F and a corpus."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "contamination",
        help="n-gram overlap between the benchmark and a corpus (leakage check)",
        description="Report, per miniF2F problem, how many n-grams of its text (formal statements, informal "
        "statement and proof) occur in a corpus: hits, longest match, where. The corpus is streamed "
        "(constant memory): directories of text files, JSONL files (--text-field), or a saved `datasets` "
        "directory.",
    )
    p.add_argument("corpus", nargs="+", metavar="CORPUS", help="text/JSONL files, directories, datasets dirs")
    p.add_argument("-n", "--ngram", type=int, default=30, help="n-gram length in tokens (default 30)")
    p.add_argument(
        "--tokenizer",
        default="whitespace",
        help="'whitespace' (default) or a Hugging Face tokenizer name / local path",
    )
    p.add_argument("--tokenizer-gguf", default=None, help="GGUF file inside the --tokenizer folder")
    p.add_argument("--lowercase", action="store_true", help="lower-case before whitespace tokenisation")
    p.add_argument(
        "--data-dir", default=None, help="miniF2F folder (default: $LLEMMA_PROVER_DATA, else shipped copy)"
    )
    p.add_argument("--splits", default="test,valid", help="benchmark splits (default test,valid)")
    p.add_argument("--systems", default="coq,lean4,isabelle", help="formal statements of these systems")
    p.add_argument(
        "--fields",
        default="statement,informal_statement,informal_proof",
        help="benchmark texts to check (default: all three)",
    )
    p.add_argument("--text-field", default="text", help="text field of JSONL records / dataset rows")
    p.add_argument("--dataset-split", default=None, help="split of a saved DatasetDict (default: all)")
    p.add_argument(
        "--suffix", default="", help="in directories, only files ending so (comma list, e.g. .txt,.md)"
    )
    p.add_argument("--max-locations", type=int, default=5, help="locations kept per problem")
    p.add_argument("--out", default=None, help="write one JSON line per problem here")
    p.add_argument("--show", type=int, default=30, help="problems shown in the table (default 30)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _split(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def run(args: argparse.Namespace) -> int:
    from ..contamination.corpus import corpus_size
    from ..contamination.ngrams import make_tokenizer
    from ..contamination.overlap import NgramIndex, benchmark_items, scan
    from ..core.errors import ConfigError
    from ..data.minif2f import DATA_ENV, resolve_data_dir

    if args.ngram < 1:
        raise ConfigError(f"--ngram must be >= 1, got {args.ngram}")
    data_dir = resolve_data_dir(args.data_dir, os.environ.get(DATA_ENV))
    load_kwargs = {"gguf_file": args.tokenizer_gguf} if args.tokenizer_gguf else {}
    tokenizer = make_tokenizer(args.tokenizer, lowercase=args.lowercase, **load_kwargs)
    items = benchmark_items(
        data_dir, splits=_split(args.splits), systems=_split(args.systems), fields=_split(args.fields)
    )
    index = NgramIndex(items, tokenizer, args.ngram)
    err = Console(stderr=True)
    err.print(f"benchmark: {len(items)} texts, {index.size} {args.ngram}-grams ({tokenizer.name})")
    paths = [Path(c) for c in args.corpus]
    suffixes = tuple(_split(args.suffix))
    if args.no_progress or not err.is_terminal:
        result = scan(
            index,
            paths,
            text_field=args.text_field,
            dataset_split=args.dataset_split,
            suffixes=suffixes,
            max_locations=args.max_locations,
        )
    else:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        total = corpus_size(paths) or None
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("scanning corpus", total=total)
            result = scan(
                index,
                paths,
                text_field=args.text_field,
                dataset_split=args.dataset_split,
                suffixes=suffixes,
                max_locations=args.max_locations,
                progress=lambda nb: bar.advance(task, nb),
            )
    hits = result.contaminated()
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as fh:
            for pr in sorted(result.problems, key=lambda p: p.problem):
                fh.write(json.dumps(pr.to_dict(), ensure_ascii=False) + "\n")
    con = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if hits:
        t = Table(title=f"problems with a {result.n}-gram overlap", header_style="bold")
        for c in (
            "problem",
            "split",
            "hits",
            "longest",
            "n-grams seen",
            "fields",
            "first / longest match at",
        ):
            t.add_column(c, justify="right" if c in ("hits", "longest", "n-grams seen") else "left")
        for pr in hits[: args.show]:
            w = pr.where[0] if pr.where else None
            t.add_row(
                pr.problem,
                pr.split,
                str(pr.hits),
                str(pr.longest),
                f"{pr.ngrams_matched}/{pr.ngrams_total}",
                ",".join(sorted(pr.fields)),
                f"{w.source}:{w.line}" if w else "",
            )
        con.print(t)
    con.print(
        f"{len(hits)}/{len(result.problems)} problems share at least one {result.n}-gram with the corpus; "
        f"scanned {result.corpus_bytes / 1e6:.1f} MB, {result.corpus_tokens} tokens, {result.documents} "
        f"documents in {result.seconds:.1f} s ({result.mb_per_s:.1f} MB/s)"
        + (f"; per-problem results: {args.out}" if args.out else "")
    )
    return 0
