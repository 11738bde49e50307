"""Draw the fixed random subset of minif2f-test for the learned-model evaluation (before any run).

    python experiments/learned/draw_subset.py --seed 20261201 --size 20 > experiments/learned/test_subset.txt

The names are sorted, the subset is ``random.Random(seed).sample(names, size)``; nothing about the
problems (or any result) is looked at.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--data-dir", default=os.environ.get("LLEMMA_PROVER_DATA", "../shared/benchmarks/minif2f"))
    args = p.parse_args()
    lines = (Path(args.data_dir) / "coq" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    names = sorted(json.loads(x)["name"] for x in lines if x.strip())
    for name in sorted(random.Random(args.seed).sample(names, args.size)):
        print(name)


if __name__ == "__main__":
    main()
