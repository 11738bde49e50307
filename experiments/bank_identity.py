"""Whether two source trees' bank generators propose the same candidates (issue 11's before/after).

Run once per tree, then compare the two outputs byte for byte:

    PYTHONPATH=TREE_A .venv/bin/python experiments/bank_identity.py TRACES_DIR a.json
    PYTHONPATH=TREE_B .venv/bin/python experiments/bank_identity.py TRACES_DIR b.json
    cmp a.json b.json

TRACES_DIR: a run's ``traces/`` folder (a minif2f-valid run): every node's goal text is a probe. For each
backend and four settings it records ``describe()`` (without the installed-automation probe), every
candidate (tactic, score, stage) for every goal, and ``generate(goal, 64)`` for the first 200 goals.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    traces, out = Path(argv[0]), Path(argv[1])
    goals = sorted({n["goals"] for f in traces.glob("*.json") for n in json.loads(f.read_text())["nodes"]
                    if n.get("goals")})
    from llemma_prover.generators.bank import BankGenerator

    result = {}
    for backend in ("coq", "lean4", "leandojo", "isabelle"):
        for kw in ({}, {"goal_aware": False}, {"families": ["closers", "structure"]}, {"intro_first": False}):
            g = BankGenerator(backend, **kw)  # type: ignore[arg-type]
            d = g.describe()
            d.pop("automation", None)
            result[f"{backend} {sorted(kw.items())}"] = {
                "describe": d,
                "cands": [[(c.tactic, round(c.score, 12), c.stage) for c in g.candidates_for(t)]
                          for t in goals],
                "gen": [[c.tactic for c in g.generate(t, 64)] for t in goals[:200]],
            }
    out.write_text(json.dumps({"n_goals": len(goals), "out": result}, sort_keys=True))
    print(f"{len(goals)} goal texts -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
