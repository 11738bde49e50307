"""Valid-fold comparison for expert iteration: bank (the full valid run) vs each fold's mixed run.

    python experiments/expert_iteration/compare_folds.py OUT   (the folder run.sh wrote)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def solved(run: Path) -> dict[str, float]:
    out = {}
    for line in (run / "results.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            out[r["theorem"]] = r["time"]["total"] if r["status"] == "proved" else -1.0
    return out


def main() -> None:
    base = Path(sys.argv[1])
    bank = solved(base / "valid-bank")
    total_b = total_m = 0
    for f in (0, 1):
        mixed = solved(base / f"valid-fold{f}-bank+retrieval")
        names = sorted(mixed)
        b = {n for n in names if bank.get(n, -1) >= 0}
        m = {n for n in names if mixed[n] >= 0}
        total_b += len(b)
        total_m += len(m)
        print(f"fold {f}: {len(names)} problems; bank {len(b)}, bank+retrieval {len(m)}; "
              f"gained {sorted(m - b)}; lost {sorted(b - m)}")
    print(f"both folds: bank {total_b}, bank+retrieval {total_m}")


if __name__ == "__main__":
    main()
