"""A read-only, typed view of one search trace (``traces/<theorem>.json``, docs/FORMATS.md).

The trace is networkx node-link JSON of a ``DiGraph``. We parse the dict directly (no networkx
needed to read), accepting both ``"edges"`` and networkx's older ``"links"`` key. Node kinds:

* state nodes (``status`` open/expanded/proved/failed); node 0 is the root;
* the terminal "no goals" node (``terminal`` true) reached by the edge with outcome ``"proved"``;
* error leaves (``status`` ``"error"``): one per failed attempt; they are attempts, not states.

Tree edges (``advanced``/``proved``) form an arborescence from the root; ``duplicate`` edges point
to an already known state (possibly an ancestor) and are never followed when walking the tree.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import RunDirError
from ..core.types import ERROR_OUTCOMES, TREE_OUTCOMES


@dataclass(frozen=True)
class TraceNode:
    id: int
    goals: str
    status: str
    depth: int
    #: None when the writer did not know it (e.g. imported runs)
    priority: float | None
    expanded_at: int | None
    terminal: bool

    @property
    def is_error(self) -> bool:
        return self.status == "error"


@dataclass(frozen=True)
class TraceEdge:
    source: int
    target: int
    tactic: str
    #: None when the writer did not know it (e.g. imported runs)
    score: float | None
    outcome: str
    elapsed: float
    order: int
    error: str = ""

    @property
    def is_tree(self) -> bool:
        return self.outcome in TREE_OUTCOMES

    @property
    def is_error(self) -> bool:
        return self.outcome in ERROR_OUTCOMES


@dataclass(frozen=True)
class OutcomeStat:
    outcome: str
    count: int
    seconds: float


@dataclass(frozen=True)
class DepthStat:
    depth: int
    states: int
    expanded: int
    attempts: int
    seconds: float


@dataclass(frozen=True)
class BranchStat:
    """One child subtree of the root: how much of the search went below it."""

    tactic: str
    child: int
    expansions: int
    states: int
    attempts: int
    seconds: float
    on_proof: bool


@dataclass(frozen=True)
class Budget:
    """Where a search spent its budget."""

    expansions: int
    states: int
    attempts: int
    by_outcome: tuple[OutcomeStat, ...]
    by_depth: tuple[DepthStat, ...]
    by_branch: tuple[BranchStat, ...]
    #: (tactic, attempts, attempts that advanced/proved) most attempted first
    tactics: tuple[tuple[str, int, int], ...]
    #: (error message head, count), most frequent first
    errors: tuple[tuple[str, int], ...]
    time: dict[str, float] = field(default_factory=dict)


class Trace:
    """A parsed search trace. Build with ``Trace.from_node_link`` or ``load_trace``."""

    def __init__(self, graph: dict[str, Any], nodes: dict[int, TraceNode], edges: list[TraceEdge]) -> None:
        self.graph = graph
        self.nodes = nodes
        self.edges = sorted(edges, key=lambda e: e.order)
        self._out: dict[int, list[TraceEdge]] = defaultdict(list)
        self._tree_parent: dict[int, TraceEdge] = {}
        for e in self.edges:
            self._out[e.source].append(e)
            if e.is_tree:
                self._tree_parent[e.target] = e

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_node_link(cls, data: dict[str, Any]) -> Trace:
        if not isinstance(data, dict) or "nodes" not in data:
            raise RunDirError("not a node-link trace (no 'nodes')")
        raw_edges = data.get("edges", data.get("links", []))
        try:
            nodes = {}
            for n in data["nodes"]:
                nid = int(n["id"])
                nodes[nid] = TraceNode(
                    id=nid,
                    goals=str(n.get("goals", "")),
                    status=str(n.get("status", "open")),
                    depth=int(n.get("depth", 0)),
                    priority=_opt_float(n.get("priority")),
                    expanded_at=None if n.get("expanded_at") is None else int(n["expanded_at"]),
                    terminal=bool(n.get("terminal", False)),
                )
            edges = [
                TraceEdge(
                    source=int(e["source"]),
                    target=int(e["target"]),
                    tactic=str(e.get("tactic", "")),
                    score=_opt_float(e.get("score")),
                    outcome=str(e.get("outcome", "")),
                    elapsed=float(e.get("elapsed", 0.0) or 0.0),
                    order=int(e.get("order", i)),
                    error=str(e.get("error", "") or ""),
                )
                for i, e in enumerate(raw_edges)
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise RunDirError(f"malformed trace: {exc!r}") from exc
        graph = dict(data.get("graph", {}) or {})
        return cls(graph, nodes, edges)

    # -- graph attributes ------------------------------------------------------------------
    @property
    def theorem(self) -> str:
        return str(self.graph.get("theorem", ""))

    @property
    def proved(self) -> bool:
        return bool(self.graph.get("proved", False))

    @property
    def reason(self) -> str:
        return str(self.graph.get("reason", ""))

    @property
    def root(self) -> int:
        return 0 if 0 in self.nodes else min(self.nodes, default=0)

    # -- structure -------------------------------------------------------------------------
    def out_edges(self, node: int) -> list[TraceEdge]:
        """Every attempt made from ``node``, in the order they were tried."""
        return self._out.get(node, [])

    def tree_parent_edge(self, node: int) -> TraceEdge | None:
        return self._tree_parent.get(node)

    def path_to(self, node: int) -> list[TraceEdge]:
        """Tree edges from the root to ``node``."""
        path: list[TraceEdge] = []
        seen = set()
        cur = node
        while cur in self._tree_parent and cur not in seen:
            seen.add(cur)
            e = self._tree_parent[cur]
            path.append(e)
            cur = e.source
        path.reverse()
        return path

    def proof_nodes(self) -> list[int] | None:
        pn = self.graph.get("proof_nodes")
        if isinstance(pn, list) and pn:
            return [int(x) for x in pn]
        terminals = [n.id for n in self.nodes.values() if n.terminal]
        if not terminals:
            return None
        path = self.path_to(terminals[0])
        return [self.root] + [e.target for e in path]

    def proof_edges(self) -> list[TraceEdge]:
        """The edges of the proof path (empty when unproved)."""
        nodes = self.proof_nodes()
        if not nodes:
            return []
        return self.path_to(nodes[-1])

    def proof_edge_keys(self) -> set[tuple[int, int]]:
        return {(e.source, e.target) for e in self.proof_edges()}

    def state_nodes(self) -> Iterator[TraceNode]:
        return (n for n in self.nodes.values() if not n.is_error)

    def subtree(self, node: int) -> list[int]:
        """State nodes below ``node`` along tree edges, ``node`` included."""
        out, stack = [], [node]
        seen = set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            out.append(n)
            stack.extend(e.target for e in self.out_edges(n) if e.is_tree)
        return out

    def best_open_node(self) -> int:
        """The deepest-priority non-error state the search reached (for exporting a partial path)."""
        cands = [n for n in self.state_nodes() if not n.terminal]
        if not cands:
            return self.root
        return max(cands, key=lambda n: (n.depth, n.priority if n.priority is not None else 0.0)).id

    # -- analysis --------------------------------------------------------------------------
    def budget(self, top: int = 10) -> Budget:
        by_outcome: dict[str, list[float]] = defaultdict(list)
        for e in self.edges:
            by_outcome[e.outcome].append(e.elapsed)
        depth_states: Counter[int] = Counter()
        depth_expanded: Counter[int] = Counter()
        depth_attempts: Counter[int] = Counter()
        depth_secs: dict[int, float] = defaultdict(float)
        for n in self.state_nodes():
            depth_states[n.depth] += 1
            if n.expanded_at is not None:
                depth_expanded[n.depth] += 1
        for e in self.edges:
            d = self.nodes[e.source].depth if e.source in self.nodes else 0
            depth_attempts[d] += 1
            depth_secs[d] += e.elapsed
        depths = sorted(set(depth_states) | set(depth_attempts))
        proof_keys = self.proof_edge_keys()
        branches = []
        for e in self.out_edges(self.root):
            if not e.is_tree:
                continue
            sub = self.subtree(e.target)
            sub_set = set(sub)
            attempts = [x for x in self.edges if x.source in sub_set]
            branches.append(
                BranchStat(
                    tactic=e.tactic,
                    child=e.target,
                    expansions=sum(1 for n in sub if self.nodes[n].expanded_at is not None),
                    states=len(sub),
                    attempts=len(attempts),
                    seconds=sum(x.elapsed for x in attempts),
                    on_proof=(e.source, e.target) in proof_keys,
                )
            )
        branches.sort(key=lambda b: (-b.expansions, -b.attempts))
        tac_all: Counter[str] = Counter()
        tac_ok: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for e in self.edges:
            tac_all[e.tactic] += 1
            if e.is_tree:
                tac_ok[e.tactic] += 1
            if e.is_error:
                errors[error_head(e.error) or e.outcome] += 1
        time = self.graph.get("time") or {}
        return Budget(
            expansions=int(
                self.graph.get("expansions", sum(1 for n in self.nodes.values() if n.expanded_at is not None))
            ),
            states=sum(1 for _ in self.state_nodes()),
            attempts=len(self.edges),
            by_outcome=tuple(
                OutcomeStat(o, len(v), sum(v))
                for o, v in sorted(by_outcome.items(), key=lambda kv: -len(kv[1]))
            ),
            by_depth=tuple(
                DepthStat(d, depth_states[d], depth_expanded[d], depth_attempts[d], depth_secs[d])
                for d in depths
            ),
            by_branch=tuple(branches),
            tactics=tuple((t, c, tac_ok[t]) for t, c in tac_all.most_common(top)),
            errors=tuple(errors.most_common(top)),
            time={k: float(v) for k, v in time.items() if isinstance(v, (int, float))},
        )


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def error_head(message: str, width: int = 80) -> str:
    """The first meaningful line of a prover error, for grouping and one-line display."""
    for line in message.splitlines():
        line = " ".join(line.split())
        if line and not line.lower().startswith(("toplevel input", "> ")):
            return line[:width]
    return " ".join(message.split())[:width]


def load_trace(path: str | os.PathLike[str]) -> Trace:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"trace not found: {p}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{p}: unreadable trace ({exc})") from None
    try:
        return Trace.from_node_link(data)
    except RunDirError as exc:
        raise RunDirError(f"{p}: {exc}") from None
