"""Solved counts, model vs prover time and tactics generated per model-second of the runs given.

    python experiments/learned/summarize.py runs/learned/bank runs/learned/llemma runs/learned/bank+llemma
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    print("| run | solved | theorems | expansions | candidates | model s | prover s | check s "
          "| tactics/model-s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for arg in sys.argv[1:]:
        run = Path(arg)
        recs = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines() if x.strip()]
        cands = 0
        for r in recs:
            trace = run / r["trace"] if r.get("trace") else None
            if trace and trace.exists():
                data = json.loads(trace.read_text())
                cands += len(data.get("links") or data.get("edges") or [])
        t = {k: sum(r["time"][k] for r in recs) for k in ("model", "prover", "check")}
        rate = f"{cands / t['model']:.2f}" if t["model"] > 1 else "-"
        solved = sorted(r["theorem"] for r in recs if r["status"] == "proved")
        exps = sum(r["expansions"] for r in recs)
        times = " | ".join(f"{t[k]:.0f}" for k in ("model", "prover", "check"))
        print(f"| {run.name} | {len(solved)} | {len(recs)} | {exps} | {cands} | {times} | {rate} |")
        print(f"<!-- {run.name} solved: {', '.join(solved) or 'none'} -->")


if __name__ == "__main__":
    main()
