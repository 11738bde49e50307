"""Issue 19's table: solved lemmas per configuration on the same sample, split by what automation the file
could load, the lemmas each configuration proves that others do not, and time per lemma (model, prover,
check). Reads run directories only (their results.jsonl and config.json); runs nothing.

    python experiments/library/table.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def load(run: Path) -> dict[str, dict]:
    recs: dict[str, dict] = {}
    for line in (run / "results.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            recs[r["theorem"]] = r
    return recs


def main(argv: list[str]) -> int:
    runs = [Path(a) for a in argv]
    data = {r.name: load(r) for r in runs}
    names = list(data)
    lemmas = sorted(set().union(*[set(d) for d in data.values()]))
    proved = {n: {t for t, r in d.items() if r["status"] == "proved"} for n, d in data.items()}
    any_rec = {t: next(d[t] for d in data.values() if t in d) for t in lemmas}
    hammer_ok = {t for t, r in any_rec.items()
                 if "Hammer.Tactics.Tactics" in r["extra"].get("automation", [])}
    print(f"{len(lemmas)} lemmas; {len(hammer_ok)} in files where CoqHammer's tactics can be loaded\n")
    print("| configuration | proved | % | where CoqHammer loads | elsewhere | only this one | "
          "search s/lemma (model + prover) | check s/proof |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        p = proved[n]
        others = set().union(*[proved[m] for m in names if m != n]) if len(names) > 1 else set()
        recs = list(data[n].values())
        search = statistics.mean(r["time"]["model"] + r["time"]["prover"] for r in recs)
        checks = [r["time"]["check"] for r in recs if r["status"] == "proved"]
        check = statistics.mean(checks) if checks else 0.0
        print(f"| {n} | {len(p)}/{len(data[n])} | {100 * len(p) / max(1, len(data[n])):.1f} | "
              f"{len(p & hammer_ok)}/{len(hammer_ok)} | "
              f"{len(p - hammer_ok)}/{len(lemmas) - len(hammer_ok)} | "
              f"{len(p - others)} | {search:.2f} | {check:.2f} |")
    if len(names) > 1:
        print("\npairs (row proves, column does not):\n")
        print("| | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for a in names:
            print(f"| {a} | " + " | ".join(str(len(proved[a] - proved[b])) if a != b else "-" for b in names)
                  + " |")
        union = set().union(*proved.values())
        print(f"\nunion of all: {len(union)}/{len(lemmas)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
