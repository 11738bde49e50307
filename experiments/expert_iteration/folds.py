"""The two folds of minif2f-valid for expert-iteration tuning (fixed before any run).

A valid problem is in fold ``sha256(name) % 2``. Tuning a configuration whose retrieval data holds
valid proofs: each fold is proved with the data of the *other* fold's proofs only (`run.sh`), so no
problem is answered from its own proof.

    python experiments/expert_iteration/folds.py FOLD [--regex] [--data-dir DIR]

prints the fold's theorem names comma-separated (for ``prove --theorems``), or with ``--regex`` a
pattern matching them (for ``extract --from-run ... --match``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from pathlib import Path


def fold_of(name: str) -> int:
    return hashlib.sha256(name.encode()).digest()[0] % 2


def names(data_dir: Path) -> list[str]:
    rows = (data_dir / "coq" / "valid.jsonl").read_text(encoding="utf-8").splitlines()
    return sorted(json.loads(r)["name"] for r in rows if r.strip())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("fold", type=int, choices=(0, 1))
    ap.add_argument("--regex", action="store_true")
    shared = Path(__file__).resolve().parents[3] / "shared/benchmarks/minif2f"
    default = os.environ.get("LLEMMA_PROVER_DATA") or str(shared)
    ap.add_argument("--data-dir", default=default)
    a = ap.parse_args()
    pick = [n for n in names(Path(a.data_dir)) if fold_of(n) == a.fold]
    if a.regex:
        print("/(" + "|".join(re.escape(n) for n in pick) + ")$")
    else:
        print(",".join(pick))


if __name__ == "__main__":
    main()
