"""The search tree as data: a ``networkx.DiGraph`` of goal states and tactic attempts.

Nodes are goal states keyed by their *normalised* goal text, so two tactic sequences that reach the
same goals share one node (a transposition adds an edge with outcome ``"duplicate"``, no new node).
Failed attempts are kept as edges to per-attempt error leaves (node status ``"error"``). The graph is
serialised exactly as ``docs/FORMATS.md`` ("Search trace") describes: networkx node-link JSON.

Edge kinds:

* *tree edges* (outcome ``"advanced"`` or ``"proved"``): the edge that created the child; every state
  node except the root has exactly one incoming tree edge, and tree edges form an arborescence;
* *duplicate edges*: a tactic reached a goal that already had a node (may point anywhere, even back
  to an ancestor: they are ignored for acyclicity);
* *attempt edges* to error leaves (``"error"``, ``"timeout"``, ``"rejected"``, ``"prover_error"``).

Status propagation (as in ReProver): PROVED goes up along tree edges from the proving node to the
root; FAILED goes up to an expanded node once every one of its state children has failed (an
expanded node with no state child at all is failed at once).
"""

from __future__ import annotations

import enum
from collections.abc import Container, Iterator
from typing import Any

import networkx as nx

from ..core.types import ERROR_OUTCOMES, TREE_OUTCOMES, EdgeOutcome

#: node attributes written to the trace, in the order of docs/FORMATS.md
NODE_ATTRS = ("goals", "status", "depth", "priority", "expanded_at", "terminal")
EDGE_OUTCOMES = frozenset(EdgeOutcome)


class NodeStatus(str, enum.Enum):
    OPEN = "open"
    EXPANDED = "expanded"
    PROVED = "proved"
    FAILED = "failed"
    #: a failed attempt, not a state
    ERROR = "error"


class TreeInvariantError(AssertionError):
    """``SearchTree.check_invariants`` found an inconsistency (a bug in the search)."""


def normalize_goal(text: str) -> str:
    """The de-duplication key of a goal text: whitespace runs collapsed, ends stripped."""
    return " ".join(text.split())


class SearchTree:
    """A best-first search tree over prover states.

    ``graph`` holds only serialisable data; prover state ids (meaningful only inside the current
    prover session) are kept beside it in ``state_ids``.
    """

    ROOT = 0

    def __init__(self, graph: nx.DiGraph | None = None) -> None:
        self.graph: nx.DiGraph = graph if graph is not None else nx.DiGraph()
        self.state_ids: dict[int, int] = {}
        self._by_key: dict[str, int] = {}
        self._order = 0
        for n, d in self.graph.nodes(data=True):
            if d.get("status") != NodeStatus.ERROR.value and not d.get("terminal", False):
                self._by_key.setdefault(normalize_goal(d.get("goals", "")), n)
        if self.graph.number_of_edges():
            self._order = 1 + max(int(d.get("order", -1)) for _, _, d in self.graph.edges(data=True))

    # -- building --------------------------------------------------------------------------------
    def _new_id(self) -> int:
        return int(self.graph.number_of_nodes())

    def _next_order(self) -> int:
        o = self._order
        self._order += 1
        return o

    def add_root(self, goals: str, state_id: int) -> int:
        if self.graph.number_of_nodes():
            raise ValueError("the tree already has a root")
        self.graph.add_node(
            self.ROOT,
            goals=goals,
            status=NodeStatus.OPEN.value,
            depth=0,
            priority=0.0,
            expanded_at=None,
            terminal=False,
        )
        self.state_ids[self.ROOT] = state_id
        self._by_key[normalize_goal(goals)] = self.ROOT
        return self.ROOT

    def lookup(self, goals: str) -> int | None:
        """The node whose goals normalise like ``goals``, if any."""
        return self._by_key.get(normalize_goal(goals))

    def mark_expanded(self, node: int, expansion: int) -> None:
        d = self.graph.nodes[node]
        if d["status"] != NodeStatus.OPEN.value:
            raise ValueError(f"node {node} is {d['status']}, not open")
        d["status"] = NodeStatus.EXPANDED.value
        d["expanded_at"] = expansion

    def add_advanced(
        self, parent: int, tactic: str, score: float, goals: str, state_id: int, elapsed: float
    ) -> tuple[int, bool]:
        """Record that ``tactic`` took ``parent`` to ``goals``.

        Returns ``(node, is_new)``. A new goal text makes a new open node; a known one adds a
        ``"duplicate"`` edge. When the duplicate reaches a still *open* node by a better path, that
        path becomes the node's tree edge (priority and depth follow it) and the old tree edge
        becomes the duplicate: an open node has no children, so nothing below it goes stale.
        Returns ``(node, False)`` with no edge added when ``parent -> node`` already has an edge
        (explore-once edges).
        """
        pd = self.graph.nodes[parent]
        priority = pd["priority"] + score
        depth = pd["depth"] + 1
        existing = self.lookup(goals)
        if existing is None:
            node = self._new_id()
            self.graph.add_node(
                node,
                goals=goals,
                status=NodeStatus.OPEN.value,
                depth=depth,
                priority=priority,
                expanded_at=None,
                terminal=False,
            )
            self.state_ids[node] = state_id
            self._by_key[normalize_goal(goals)] = node
            self._add_edge(parent, node, tactic, score, EdgeOutcome.ADVANCED, elapsed)
            return node, True
        if self.graph.has_edge(parent, existing):
            return existing, False
        nd = self.graph.nodes[existing]
        if nd["status"] == NodeStatus.OPEN.value and existing != self.ROOT and priority > nd["priority"]:
            old_parent = self.tree_parent(existing)
            assert old_parent is not None
            self.graph.edges[old_parent, existing]["outcome"] = EdgeOutcome.DUPLICATE.value
            self._add_edge(parent, existing, tactic, score, EdgeOutcome.ADVANCED, elapsed)
            nd["priority"] = priority
            nd["depth"] = depth
            self.state_ids[existing] = state_id
        else:
            self._add_edge(parent, existing, tactic, score, EdgeOutcome.DUPLICATE, elapsed)
        return existing, False

    def add_proved(self, parent: int, tactic: str, score: float, elapsed: float) -> int:
        """Record that ``tactic`` closed every goal of ``parent``; mark the path to the root proved."""
        pd = self.graph.nodes[parent]
        node = self._new_id()
        self.graph.add_node(
            node,
            goals="",
            status=NodeStatus.PROVED.value,
            depth=pd["depth"] + 1,
            priority=pd["priority"] + score,
            expanded_at=None,
            terminal=True,
        )
        self._add_edge(parent, node, tactic, score, EdgeOutcome.PROVED, elapsed)
        cur: int | None = parent
        while cur is not None:
            self.graph.nodes[cur]["status"] = NodeStatus.PROVED.value
            cur = self.tree_parent(cur)
        return node

    def add_error(
        self, parent: int, tactic: str, score: float, outcome: EdgeOutcome | str, error: str, elapsed: float
    ) -> int:
        """Record a failed attempt as an edge to a fresh error leaf."""
        if outcome not in ERROR_OUTCOMES:
            raise ValueError(f"not an error outcome: {outcome!r}")
        pd = self.graph.nodes[parent]
        node = self._new_id()
        self.graph.add_node(
            node,
            goals="",
            status=NodeStatus.ERROR.value,
            depth=pd["depth"] + 1,
            priority=pd["priority"] + score,
            expanded_at=None,
            terminal=False,
        )
        self._add_edge(parent, node, tactic, score, outcome, elapsed, error=error)
        return node

    def _add_edge(
        self,
        u: int,
        v: int,
        tactic: str,
        score: float,
        outcome: EdgeOutcome | str,
        elapsed: float,
        error: str | None = None,
    ) -> None:
        attrs: dict[str, Any] = {
            "tactic": tactic,
            "score": float(score),
            "outcome": EdgeOutcome(outcome).value,  # plain text in the trace file
            "elapsed": float(elapsed),
            "order": self._next_order(),
        }
        if error is not None:
            attrs["error"] = error
        self.graph.add_edge(u, v, **attrs)

    # -- failure propagation ---------------------------------------------------------------------
    def state_children(self, node: int) -> list[int]:
        """Children that are states (tree and duplicate edges; no error leaves, no self-loops)."""
        return [
            v
            for v in self.graph.successors(node)
            if v != node and self.graph.nodes[v]["status"] != NodeStatus.ERROR.value
        ]

    def update_failed(self, node: int, pending: Container[int] = ()) -> None:
        """Mark ``node`` failed if it is expanded and all its state children failed; propagate up.

        Nodes in ``pending`` (expanded, with candidates still to try) are never marked failed."""
        stack = [node]
        while stack:
            n = stack.pop()
            d = self.graph.nodes[n]
            if d["status"] != NodeStatus.EXPANDED.value or n in pending:
                continue
            if all(self.graph.nodes[c]["status"] == NodeStatus.FAILED.value for c in self.state_children(n)):
                d["status"] = NodeStatus.FAILED.value
                stack.extend(p for p in self.graph.predecessors(n) if p != n)

    # -- queries ---------------------------------------------------------------------------------
    def tree_parent(self, node: int) -> int | None:
        for p in self.graph.predecessors(node):
            if self.graph.edges[p, node]["outcome"] in TREE_OUTCOMES:
                return int(p)
        return None

    def status(self, node: int) -> NodeStatus:
        return NodeStatus(self.graph.nodes[node]["status"])

    def goals(self, node: int) -> str:
        return str(self.graph.nodes[node]["goals"])

    def priority(self, node: int) -> float:
        return float(self.graph.nodes[node]["priority"])

    def depth(self, node: int) -> int:
        return int(self.graph.nodes[node]["depth"])

    def state_nodes(self) -> Iterator[int]:
        """Nodes that are states (not error leaves), the terminal node included."""
        for n, d in self.graph.nodes(data=True):
            if d["status"] != NodeStatus.ERROR.value:
                yield n

    @property
    def num_states(self) -> int:
        return sum(1 for _ in self.state_nodes())

    def proof_nodes(self) -> list[int] | None:
        """Node ids from the root to the terminal "no goals" node, or None when unproved."""
        terminals = [n for n, d in self.graph.nodes(data=True) if d.get("terminal")]
        if not terminals:
            return None
        path = [terminals[0]]
        cur = self.tree_parent(terminals[0])
        while cur is not None:
            path.append(cur)
            cur = self.tree_parent(cur)
        path.reverse()
        return path

    def proof(self) -> list[str] | None:
        """The tactics of the proof, in order, or None when unproved."""
        nodes = self.proof_nodes()
        if nodes is None:
            return None
        return [self.graph.edges[u, v]["tactic"] for u, v in zip(nodes, nodes[1:], strict=False)]

    # -- invariants ------------------------------------------------------------------------------
    def check_invariants(self) -> None:
        """Raise ``TreeInvariantError`` if the tree is inconsistent."""
        g = self.graph

        def fail(msg: str) -> None:
            raise TreeInvariantError(msg)

        if g.number_of_nodes() == 0:
            fail("the tree has no root")
        if self.ROOT not in g:
            fail("node 0 (the root) is missing")
        if self.tree_parent(self.ROOT) is not None:
            fail("the root has a tree parent")
        tree = nx.DiGraph()
        tree.add_nodes_from(g.nodes)
        tree.add_edges_from((u, v) for u, v, d in g.edges(data=True) if d["outcome"] in TREE_OUTCOMES)
        if not nx.is_directed_acyclic_graph(tree):
            fail("the tree edges contain a cycle")
        keys: dict[str, int] = {}
        terminals = 0
        for n, d in g.nodes(data=True):
            for a in NODE_ATTRS:
                if a not in d:
                    fail(f"node {n} lacks attribute {a!r}")
            try:
                st = NodeStatus(d["status"])
            except ValueError:
                fail(f"node {n} has unknown status {d['status']!r}")
            preds = list(g.predecessors(n))
            tree_preds = [p for p in preds if g.edges[p, n]["outcome"] in TREE_OUTCOMES]
            if n != self.ROOT and st is not NodeStatus.ERROR and len(tree_preds) != 1:
                fail(f"state node {n} has {len(tree_preds)} tree parents")
            if tree_preds and d["depth"] != g.nodes[tree_preds[0]]["depth"] + 1:
                fail(f"node {n} depth {d['depth']} != parent depth + 1")
            if st is NodeStatus.ERROR:
                if len(preds) != 1 or g.out_degree(n) != 0:
                    fail(f"error leaf {n} must have one parent and no children")
                if g.edges[preds[0], n]["outcome"] not in ERROR_OUTCOMES:
                    fail(f"error leaf {n} reached by a non-error edge")
                continue
            if d["terminal"]:
                terminals += 1
                if st is not NodeStatus.PROVED or g.out_degree(n) != 0:
                    fail(f"terminal node {n} must be proved and childless")
                continue
            key = normalize_goal(d["goals"])
            if key in keys:
                fail(f"nodes {keys[key]} and {n} have the same goals")
            keys[key] = n
            if st is NodeStatus.OPEN and (d["expanded_at"] is not None or g.out_degree(n) != 0):
                fail(f"open node {n} has been expanded or has children")
            if st in (NodeStatus.EXPANDED, NodeStatus.FAILED) and d["expanded_at"] is None:
                fail(f"node {n} is {st.value} but was never expanded")
            if st is NodeStatus.FAILED:
                bad = [c for c in self.state_children(n) if g.nodes[c]["status"] != NodeStatus.FAILED.value]
                if bad:
                    fail(f"failed node {n} has children that did not fail: {bad}")
            if st is NodeStatus.PROVED and not any(
                g.nodes[c]["status"] == NodeStatus.PROVED.value and g.edges[n, c]["outcome"] in TREE_OUTCOMES
                for c in g.successors(n)
            ):
                fail(f"proved node {n} has no proved child")
        for u, v, e in g.edges(data=True):
            if e.get("outcome") not in EDGE_OUTCOMES:
                fail(f"edge {u}->{v} has unknown outcome {e.get('outcome')!r}")
            for a in ("tactic", "score", "elapsed", "order"):
                if a not in e:
                    fail(f"edge {u}->{v} lacks attribute {a!r}")
            if e["outcome"] == EdgeOutcome.PROVED and not g.nodes[v]["terminal"]:
                fail(f"edge {u}->{v} is 'proved' but {v} is not terminal")
        if terminals > 1:
            fail(f"{terminals} terminal nodes; the search stops at the first proof")
        if terminals and g.nodes[self.ROOT]["status"] != NodeStatus.PROVED.value:
            fail("a proof was found but the root is not proved")

    # -- serialisation ---------------------------------------------------------------------------
    def to_node_link(self) -> dict[str, Any]:
        """The trace as networkx node-link data (docs/FORMATS.md); JSON-serialisable."""
        return dict(nx.node_link_data(self.graph, edges="edges"))

    @classmethod
    def from_node_link(cls, data: dict[str, Any]) -> SearchTree:
        """Rebuild a tree from ``to_node_link()`` output (state ids are not part of a trace)."""
        graph = nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")
        return cls(graph)
