"""Throughput of the contamination scan (MB/s), side by side with a naive implementation.

Builds a synthetic corpus in a temporary directory (never in the repo): lines of words drawn from the
benchmark's own vocabulary (the worst case for our prefilter: almost every token is a benchmark token),
with a few planted copies of benchmark texts. Then, in one run:

* ours:  ``contamination.overlap.scan`` (numpy window hashes, searchsorted, token-verified hits);
* naive: a Python set of 30-gram tuples, every corpus window looked up one by one.

Both must report the same hits. Prints MB/s of each and the ratio.

    .venv/bin/python bench/contamination.py [--mb 64] [--naive-mb 8] [-n 30]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llemma_prover.contamination.ngrams import WhitespaceTokenizer  # noqa: E402
from llemma_prover.contamination.overlap import NgramIndex, benchmark_items, naive_scan, scan  # noqa: E402


def make_corpus(path: Path, mb: float, vocab: list[str], plants: list[str], seed: int = 0) -> int:
    rng = random.Random(seed)
    target = int(mb * 1e6)
    size = 0
    with open(path, "w", encoding="utf-8") as fh:
        block = []
        while size < target:
            line = " ".join(rng.choices(vocab, k=14)) + "\n"
            block.append(line)
            size += len(line.encode("utf-8"))
            if len(block) >= 2000:
                if plants and rng.random() < 0.05:
                    block.append(rng.choice(plants) + "\n")
                fh.writelines(block)
                block = []
        fh.writelines(block)
    return path.stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "benchmarks" / "minif2f"))
    ap.add_argument("--mb", type=float, default=64.0, help="corpus size for our scan")
    ap.add_argument("--naive-mb", type=float, default=8.0, help="prefix of the corpus for the naive scan")
    ap.add_argument("-n", type=int, default=30)
    args = ap.parse_args()

    items = benchmark_items(args.data_dir)
    t0 = time.perf_counter()
    index = NgramIndex(items, WhitespaceTokenizer(), args.n)
    t_index = time.perf_counter() - t0
    vocab = sorted({w for it in items for w in it.text.split()})
    plants = [it.text for it in items if it.field == "informal_proof" and len(it.text.split()) > 2 * args.n][
        :20
    ]
    with tempfile.TemporaryDirectory(prefix="llemma-contam-") as tmp:
        big = Path(tmp) / "corpus.txt"
        size = make_corpus(big, args.mb, vocab, plants)
        small = Path(tmp) / "prefix.txt"
        small_size = make_corpus(small, args.naive_mb, vocab, plants)

        c0 = time.process_time()
        res = scan(index, [big])
        ours_cpu = time.process_time() - c0
        ours_mbps = res.mb_per_s
        res_small = scan(index, [small])
        c0, t0 = time.process_time(), time.perf_counter()
        text = small.read_text(encoding="utf-8")
        naive = naive_scan(items, [text], args.n)
        t_naive = time.perf_counter() - t0
        naive_cpu = time.process_time() - c0
    naive_mbps = small_size / 1e6 / t_naive
    same = {p.problem: p.hits for p in res_small.contaminated()} == naive
    print(
        f"benchmark: {len(items)} texts, {index.size} {args.n}-grams, {len(vocab)} distinct tokens "
        f"(index built in {t_index:.2f} s)"
    )
    print(
        f"corpus: synthetic, benchmark vocabulary, {size / 1e6:.1f} MB ({res.corpus_tokens} tokens); "
        f"naive on a {small_size / 1e6:.1f} MB corpus of the same kind"
    )
    # wall-clock MB/s depends on what else the machine runs; CPU-time MB/s is this process's own work
    ours_cpu_mbps = size / 1e6 / ours_cpu
    naive_cpu_mbps = small_size / 1e6 / naive_cpu
    print(f"{'implementation':<16}{'MB/s wall':>11}{'MB/s CPU':>10}{'problems hit':>14}")
    print(f"{'ours (numpy)':<16}{ours_mbps:>11.1f}{ours_cpu_mbps:>10.1f}{len(res.contaminated()):>14}")
    print(f"{'naive (tuples)':<16}{naive_mbps:>11.1f}{naive_cpu_mbps:>10.1f}{len(naive):>14}")
    print(
        f"ratio ours/naive: {ours_mbps / naive_mbps:.1f}x wall, {ours_cpu_mbps / naive_cpu_mbps:.1f}x CPU; "
        f"same hits on the shared corpus: {same}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
