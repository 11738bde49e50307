"""Small run directories written exactly as docs/FORMATS.md describes (records + node-link traces).

Used by the trace/report/html tests so they do not depend on a `prove` run; the real-run tests are in
test_trace_real.py. This module also checks that the fixture itself satisfies the format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llemma_prover.core.records import TheoremRecord
from llemma_prover.core.types import CheckResult, Reason, Status, TimeSplit, family_of

ROOT_GOAL = "x : nat\nH : x + 1 = 3\n============================\nx = 2"


def _node(
    i: int,
    goals: str,
    status: str,
    depth: int,
    priority: float,
    expanded_at: int | None = None,
    terminal: bool = False,
) -> dict[str, Any]:
    return {
        "id": i,
        "goals": goals,
        "status": status,
        "depth": depth,
        "priority": priority,
        "expanded_at": expanded_at,
        "terminal": terminal,
    }


def _edge(
    s: int,
    t: int,
    tactic: str,
    score: float,
    outcome: str,
    order: int,
    elapsed: float = 0.01,
    error: str | None = None,
) -> dict[str, Any]:
    e = {
        "source": s,
        "target": t,
        "tactic": tactic,
        "score": score,
        "outcome": outcome,
        "elapsed": elapsed,
        "order": order,
    }
    if error is not None:
        e["error"] = error
    return e


def proved_trace(theorem: str) -> dict[str, Any]:
    """root -intros-> 1 -lia-> 2 (terminal); failures and a duplicate on the side."""
    nodes = [
        _node(0, ROOT_GOAL, "proved", 0, 0.0, 0),
        _node(
            1, "x : nat\nH : x + 1 = 3\n============================\nx = 2 /\\ True", "proved", 1, -0.5, 1
        ),
        _node(2, "", "proved", 2, -0.7, None, True),
        _node(3, "", "error", 1, -1.2),
        _node(4, "", "error", 2, -1.9),
        _node(5, "x : nat\n============================\nfalse_goal", "open", 1, -2.0),
    ]
    edges = [
        _edge(0, 1, "split.", -0.5, "advanced", 0),
        _edge(0, 3, "ring.", -1.2, "error", 1, error="Error: ring failed: not an equation of a ring"),
        _edge(0, 5, "clear H.", -2.0, "advanced", 2),
        _edge(1, 4, "reflexivity.", -1.4, "error", 3, error="Error: In environment\nUnable to unify."),
        _edge(1, 0, "idtac.", -0.1, "duplicate", 4),
        _edge(1, 2, "lia.", -0.2, "proved", 5, elapsed=0.05),
    ]
    return _graph(theorem, nodes, edges, True, ["split.", "lia."], [0, 1, 2], "proved", 2)


def failed_trace(theorem: str) -> dict[str, Any]:
    nodes = [
        _node(0, ROOT_GOAL.replace("x = 2", "x = 7"), "failed", 0, 0.0, 0),
        _node(1, "x : nat\n============================\nx = 7", "failed", 1, -0.3, 1),
    ]
    edges = [_edge(0, 1, "revert H.", -0.3, "advanced", 0)]
    order = 1
    msgs = ["Error: lia failed: cannot find witness", "Error: Tactic failure: nia", "Timeout after 5s"]
    for i in range(7):
        nid = len(nodes)
        outcome = "timeout" if i == 6 else "error"
        nodes.append(_node(nid, "", "error", 1, -1.0 - i))
        edges.append(
            _edge(0, nid, f"tac{i}.", -1.0 - i, outcome, order, error=msgs[min(i, 2)] if i < 6 else msgs[2])
        )
        order += 1
    nid = len(nodes)
    nodes.append(_node(nid, "", "error", 2, -2.5))
    edges.append(_edge(1, nid, "lia.", -2.2, "error", order, error="Error: lia failed: cannot find witness"))
    return _graph(theorem, nodes, edges, False, None, None, "search_exhausted", 2)


def _graph(
    theorem: str,
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]],
    proved: bool,
    proof: list[str] | None,
    proof_nodes: list[int] | None,
    reason: str,
    expansions: int,
) -> dict[str, Any]:
    return {
        "directed": True,
        "multigraph": False,
        "graph": {
            "theorem": theorem,
            "backend": "coq",
            "generator": "bank",
            "reason": reason,
            "proved": proved,
            "proof": proof,
            "proof_nodes": proof_nodes,
            "expansions": expansions,
            "time": {"total": 1.5, "model": 0.2, "prover": 1.1},
            "config": {"candidates": 8, "max_expansions": 10, "time_budget": 30.0},
        },
        "nodes": nodes,
        "edges": edges,
    }


def make_run(
    root: Path,
    name: str = "runA",
    solved: tuple[str, ...] = ("mathd_algebra_10", "amc12a_2002_p6"),
    failed: tuple[str, ...] = ("mathd_numbertheory_3", "imo_1959_p1"),
    errored: tuple[str, ...] = (),
    split: str = "minif2f-test",
    truncated_tail: bool = False,
) -> Path:
    """A run directory with proved theorems (traces + proof files), failed ones (traces) and errors."""
    run = root / name
    (run / "traces").mkdir(parents=True)
    (run / "proofs").mkdir()
    config = {
        "format_version": 1,
        "split": split,
        "backend": "coq",
        "generator": {"name": "bank"},
        "search": {"candidates": 8, "max_expansions": 10, "time_budget": 30.0},
    }
    (run / "config.json").write_text(json.dumps(config))
    lines = []
    for i, th in enumerate(solved):
        (run / "traces" / f"{th}.json").write_text(json.dumps(proved_trace(th)))
        (run / "proofs" / f"{th}.v").write_text(f"Theorem {th} : True.\nProof.\n  split.\n  lia.\nQed.\n")
        lines.append(
            TheoremRecord(
                theorem=th,
                split=split,
                family=family_of(th),
                backend="coq",
                generator="bank",
                status=Status.PROVED,
                reason=Reason.PROVED,
                proof=("split.", "lia."),
                expansions=2 + i,
                nodes=6,
                time=TimeSplit(total=1.5 + i, model=0.2, prover=1.1, check=0.1),
                check=CheckResult(ok=True, checker="coqc", elapsed=0.1),
                trace=f"traces/{th}.json",
            ).to_json()
        )
    for th in failed:
        (run / "traces" / f"{th}.json").write_text(json.dumps(failed_trace(th)))
        lines.append(
            TheoremRecord(
                theorem=th,
                split=split,
                family=family_of(th),
                backend="coq",
                generator="bank",
                status=Status.FAILED,
                reason=Reason.SEARCH_EXHAUSTED,
                proof=None,
                expansions=2,
                nodes=10,
                time=TimeSplit(total=9.0, model=1.0, prover=7.5),
                trace=f"traces/{th}.json",
            ).to_json()
        )
    for th in errored:
        lines.append(
            TheoremRecord(
                theorem=th,
                split=split,
                family=family_of(th),
                backend="coq",
                generator="bank",
                status=Status.ERROR,
                reason=Reason.START_FAILED,
                proof=None,
                error="coqtop: statement did not load",
            ).to_json()
        )
    text = "\n".join(lines) + "\n"
    if truncated_tail:
        text += '{"theorem": "cut_short", "sta'
    (run / "results.jsonl").write_text(text)
    return run


def test_fixture_traces_follow_the_format(tmp_path: Path) -> None:
    """The fixture traces parse with networkx and obey the search tree's own invariants."""
    import networkx as nx

    from llemma_prover.search.tree import SearchTree

    for data in (proved_trace("t1"), failed_trace("t2")):
        g = nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")
        assert g.number_of_nodes() == len(data["nodes"])
        SearchTree(g).check_invariants()
