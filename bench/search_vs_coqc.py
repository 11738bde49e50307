"""Expansions per second: our best-first search on a live coqtop vs. re-checking with ``coqc``.

The naive way to search with a compiler-only checker is to write the whole file (header, statement,
the tactics of the path so far, the candidate, ``Admitted.``) and run ``coqc`` on it for every
candidate. This benchmark runs our search on some miniF2F Coq theorems, then re-checks the very same
attempts (same theorems, same paths, same candidates, taken from the search traces) with ``coqc``,
and prints both rates and their ratio (goal: >= 50x).

By default every attempt is re-checked with coqc when there are at most ``--naive-sample`` of them;
otherwise an evenly spread sample of that many is timed and each theorem's naive time is its mean
coqc time per attempt (measured on that theorem's own sampled attempts, or on all sampled attempts
when none of its own were drawn) times its number of attempts. ``--naive-sample 0`` re-checks all.
The coqc verdicts are compared with the search's (accepted vs. rejected) as a sanity check.

    .venv/bin/python bench/search_vs_coqc.py --limit 6
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from llemma_prover.backends.base import make_backend
from llemma_prover.backends.coq.header import prepare_header
from llemma_prover.core.config import BANK_SEARCH, GeneratorConfig, ProverConfig, SearchConfig
from llemma_prover.core.types import Theorem
from llemma_prover.data.minif2f import load_split, resolve_data_dir, select
from llemma_prover.generators.registry import make_generator
from llemma_prover.search import SearchTree, best_first_search

ACCEPTED = {"advanced", "proved", "duplicate"}


@dataclass
class Attempt:
    theorem: Theorem
    prefix: list[str]
    tactic: str
    accepted: bool


def attempts_of(theorem: Theorem, tree: SearchTree) -> list[Attempt]:
    out = []
    edges = sorted(tree.graph.edges(data=True), key=lambda e: e[2]["order"])
    for u, _v, d in edges:
        if d["outcome"] in ("rejected", "prover_error"):
            continue  # never reaches a prover in our search; the naive one would not send it either
        prefix: list[str] = []
        cur: int | None = u
        while cur is not None and cur != tree.ROOT:
            parent = tree.tree_parent(cur)
            assert parent is not None
            prefix.append(tree.graph.edges[parent, cur]["tactic"])
            cur = parent
        prefix.reverse()
        out.append(Attempt(theorem, prefix, d["tactic"], d["outcome"] in ACCEPTED))
    return out


def _sentence(tactic: str) -> str:
    t = tactic.strip()
    return t if t.endswith(".") else t + "."


def coqc_check(att: Attempt, workdir: Path, tactic_timeout: float) -> tuple[float, bool]:
    """Seconds coqc took on the whole file for this attempt, and whether it compiled.

    The candidate runs under ``Timeout`` with the search's per-tactic timeout, as in our search.
    """
    secs = max(1, round(tactic_timeout))
    body = "\n".join([*(_sentence(t) for t in att.prefix), f"Timeout {secs} {_sentence(att.tactic)}"])
    text = f"{prepare_header(att.theorem.header)}\n{att.theorem.statement}\nProof.\n{body}\nAdmitted.\n"
    timeout = 60.0 + tactic_timeout * (len(att.prefix) + 1)
    src = workdir / "Naive.v"
    src.write_text(text, encoding="utf-8")
    t0 = time.perf_counter()
    try:
        r = subprocess.run(
            ["coqc", "-q", str(src)], cwd=workdir, capture_output=True, timeout=timeout, check=False
        )
        ok = r.returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    return time.perf_counter() - t0, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--split", default="test", choices=["test", "valid"])
    ap.add_argument("--theorems", default="", help="comma-separated names (default: --limit spread evenly)")
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--generator", default="bank", choices=["bank", "replay"])
    ap.add_argument("--replay-file", default=None)
    ap.add_argument("--candidates", type=int, default=BANK_SEARCH.candidates)
    ap.add_argument("--max-expansions", type=int, default=BANK_SEARCH.max_expansions)
    ap.add_argument("--time-budget", type=float, default=BANK_SEARCH.time_budget)
    ap.add_argument("--tactic-timeout", type=float, default=5.0)
    ap.add_argument("--naive-sample", type=int, default=80, help="coqc runs to time (0: all attempts)")
    args = ap.parse_args(argv)
    if shutil.which("coqc") is None or shutil.which("coqtop") is None:
        print("coqc/coqtop not found: install Debian's coq", file=sys.stderr)
        return 2

    data_dir = resolve_data_dir(args.data_dir, os.environ.get("LLEMMA_PROVER_DATA"))
    dataset = load_split(data_dir, "coq", args.split)
    names = [n for n in args.theorems.split(",") if n]
    if names:
        theorems = select(dataset.theorems, names)
    else:  # evenly spaced over the split, so that every problem family shows up
        step = max(1, len(dataset.theorems) // args.limit)
        theorems = list(dataset.theorems[::step][: args.limit])
    gen, note = make_generator(
        GeneratorConfig(name=args.generator, replay_file=args.replay_file), "coq"
    )
    search_cfg = SearchConfig(
        candidates=args.candidates, max_expansions=args.max_expansions, time_budget=args.time_budget
    )
    print(
        f"generator: {note}; {len(theorems)} theorems; k={args.candidates}, "
        f"max_expansions={args.max_expansions}"
    )

    # -- ours: best-first search on a live coqtop ------------------------------------------------
    all_attempts: list[Attempt] = []
    per_thm: dict[str, tuple[int, int]] = {}
    ours_time = 0.0
    ours_exp = 0
    ours_tactic_s = 0.0
    backend = make_backend("coq", ProverConfig(tactic_timeout=args.tactic_timeout))
    with backend:
        backend.start()
        for thm in theorems:
            t0 = time.perf_counter()
            out, tree = best_first_search(thm, backend, gen, search_cfg)
            dt = time.perf_counter() - t0
            ours_time += dt
            ours_exp += out.expansions
            ours_tactic_s += sum(d["elapsed"] for _, _, d in tree.graph.edges(data=True))
            atts = attempts_of(thm, tree)
            all_attempts.extend(atts)
            per_thm[thm.name] = (out.expansions, len(atts))
            print(
                f"  ours  {thm.name:32s} {out.reason.value:17s} exp={out.expansions:3d} "
                f"attempts={len(atts):4d} {dt:7.2f}s"
            )
        stats = {k: round(v, 2) for k, v in backend.stats().items()}
    gen.close()
    ours_rate = ours_exp / ours_time

    # -- naive: coqc on the whole file for every attempt -----------------------------------------
    n = len(all_attempts)
    if args.naive_sample and n > args.naive_sample:
        step = n / args.naive_sample
        sample = [all_attempts[int(i * step)] for i in range(args.naive_sample)]
    else:
        sample = all_attempts
    times: dict[str, list[float]] = {}
    agree = 0
    with tempfile.TemporaryDirectory(prefix="bench-coqc-") as tmp:
        for att in sample:
            dt, ok = coqc_check(att, Path(tmp), args.tactic_timeout)
            times.setdefault(att.theorem.name, []).append(dt)
            agree += ok == att.accepted
    flat = [t for ts in times.values() for t in ts]
    pooled = statistics.mean(flat)
    spread = statistics.stdev(flat) if len(flat) > 1 else 0.0
    naive_time = 0.0
    for name, (_exp, natt) in per_thm.items():
        mean = statistics.mean(times[name]) if name in times else pooled
        naive_time += mean * natt
    naive_rate = ours_exp / naive_time

    print()
    print(
        f"attempts (tactic applications): {n}; coqc runs timed: {len(sample)} "
        f"({'all' if len(sample) == n else 'evenly spread sample'}); "
        f"coqc per attempt: mean {pooled:.3f}s, sd {spread:.3f}s"
    )
    print(
        f"ours per attempt: {ours_time / max(1, n):.3f}s; tactics themselves (as coqtop reports them, "
        f"timeouts included): {ours_tactic_s:.2f}s of our {ours_time:.2f}s"
    )
    print(f"last theorem's backend counters: {stats}")
    print(f"coqc verdict agrees with the search on {agree}/{len(sample)} timed attempts")
    print(f"ours : {ours_exp} expansions in {ours_time:8.2f}s = {ours_rate:8.3f} expansions/s")
    print(
        f"naive: {ours_exp} expansions in {naive_time:8.2f}s = {naive_rate:8.3f} expansions/s"
        f"{'' if len(sample) == n else ' (extrapolated from the timed sample)'}"
    )
    print(f"ratio (ours / naive): {ours_rate / naive_rate:.1f}x   (goal: >= 50x)")
    # Both ways run the same tactics; what differs is everything else (coqc: start, load the header,
    # replay the path; ours: restore the state). Derived, not measured separately:
    ours_over = ours_time - ours_tactic_s
    naive_over = naive_time - ours_tactic_s
    if ours_over > 0 and naive_over > 0:
        print(
            f"per-candidate overhead besides running the tactic: ours {ours_over / max(1, n) * 1000:.1f} ms, "
            f"naive {naive_over / max(1, n) * 1000:.1f} ms ({naive_over / ours_over:.0f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
