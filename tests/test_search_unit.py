"""Pure unit tests of the search tree and best-first search, with a scripted in-memory backend.

The scripted backend is a unit-test double for the *search logic* only (the real-Coq tests are in
test_search_coq.py): a table ``(goal text, tactic) -> outcome``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import networkx as nx
import pytest

from llemma_prover.backends.base import ProofDialect, ProverBackend
from llemma_prover.core.config import ProverConfig, SearchConfig
from llemma_prover.core.errors import ProverCrashed, ProverStartError, RestartLimitExceeded
from llemma_prover.core.types import (
    Advanced,
    Candidate,
    CheckResult,
    ProofFinished,
    Reason,
    RootState,
    StepResult,
    TacticError,
    TacticTimeout,
    Theorem,
)
from llemma_prover.generators.base import TacticGenerator
from llemma_prover.search import NodeStatus, SearchTree, TreeInvariantError, best_first_search

PROOF = "<proof>"
ERR = "<error>"
TIMEOUT = "<timeout>"
CRASH = "<crash>"
CRASH_ONCE_THEN_PROOF = "<crash-once-then-proof>"
RESTART_LIMIT = "<restart-limit>"

THM = Theorem(name="t", split="test", system="script", header="", statement="A")


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class _NoFiles(ProofDialect):
    def proof_text(self, theorem: Theorem, proof: Sequence[str]) -> str:
        raise NotImplementedError


class ScriptBackend(ProverBackend):
    """States are goal texts; ``script[(goal, tactic)]`` is a goal text or one of the markers."""

    name = "script"
    dialect = _NoFiles("script")

    def __init__(
        self,
        script: dict[tuple[str, str], str],
        root: str = "A",
        clock: FakeClock | None = None,
        cost: float = 1.0,
        start_error: bool = False,
    ) -> None:
        super().__init__(ProverConfig())
        self.script = script
        self.root = root
        self.clock = clock
        self.cost = cost
        self.start_error = start_error
        self.states: list[str] = []
        self.applied: list[tuple[str, str]] = []

    def close(self) -> None:
        pass

    def start_theorem(self, theorem: Theorem) -> RootState:
        if self.start_error:
            raise ProverStartError("header does not load", backend=self.name)
        self.states = [self.root]
        return RootState(state_id=0, goals=(self.root,), elapsed=0.0)

    def apply(self, state_id: int, tactic: str) -> StepResult:
        goal = self.states[state_id]
        self.applied.append((goal, tactic))
        if self.clock is not None:
            self.clock.t += self.cost
        out = self.script.get((goal, tactic), ERR)
        if out == PROOF:
            return ProofFinished(state_id=len(self.states), elapsed=self.cost)
        if out == ERR:
            return TacticError(message=f"{tactic} fails on {goal}", elapsed=self.cost)
        if out == TIMEOUT:
            return TacticTimeout(timeout=5.0, elapsed=self.cost)
        if out == CRASH:
            raise ProverCrashed("coqtop died", backend=self.name)
        if out == CRASH_ONCE_THEN_PROOF:
            self.script[(goal, tactic)] = PROOF
            raise ProverCrashed("coqtop killed mid-tactic", backend=self.name)
        if out == RESTART_LIMIT:
            raise RestartLimitExceeded("too many restarts", backend=self.name)
        self.states.append(out)
        return Advanced(state_id=len(self.states) - 1, goals=(out,), elapsed=self.cost)

    def check(self, theorem: Theorem, proof: Sequence[str]) -> CheckResult:
        raise NotImplementedError


class ListGenerator(TacticGenerator):
    """Per-goal candidate lists (default: ``default``), scores given explicitly."""

    name = "list"

    def __init__(
        self, default: list[tuple[str, float]], per_goal: dict[str, list[tuple[str, float]]] | None = None
    ):
        self.default = default
        self.per_goal = per_goal or {}
        self.calls: list[str] = []
        self.started: list[str] = []

    def start_theorem(self, theorem: Theorem) -> None:
        self.started.append(theorem.name)

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        self.calls.append(goal_text)
        return [Candidate(t, s) for t, s in self.per_goal.get(goal_text, self.default)][:k]


def cfg(**kw: object) -> SearchConfig:
    base: dict[str, object] = {
        "candidates": 8,
        "max_expansions": 50,
        "time_budget": 1e9,
        "debug_invariants": True,
    }
    base.update(kw)
    return SearchConfig(**base)  # type: ignore[arg-type]


# -- best-first order ---------------------------------------------------------------------------


def test_expands_highest_priority_first_and_finds_two_step_proof() -> None:
    script = {
        ("A", "a"): "B",
        ("A", "b"): "C",
        ("B", "x"): "D",
        ("C", "y"): PROOF,
    }
    gen = ListGenerator(
        [],
        per_goal={
            "A": [("a", -0.1), ("b", -0.5)],
            "B": [("x", -1.0)],
            "C": [("y", -0.1)],
            "D": [("z", -0.1)],
        },
    )
    backend = ScriptBackend(script)
    out, tree = best_first_search(THM, backend, gen, cfg())
    # A(0) -> B(-0.1), C(-0.5); B expanded first -> D(-1.1); then C (-0.5 > -1.1) proves.
    assert gen.calls == ["A", "B", "C"]
    assert gen.started == ["t"]
    assert out.reason is Reason.PROVED
    assert out.proof == ("b", "y")
    assert out.expansions == 3
    assert tree.proof() == ["b", "y"]
    assert tree.graph.graph["proof_nodes"] == tree.proof_nodes()
    assert [tree.goals(n) for n in tree.proof_nodes()[:-1]] == ["A", "C"]
    assert tree.status(0) is NodeStatus.PROVED
    assert tree.status(tree.lookup("B")) is NodeStatus.EXPANDED
    assert tree.status(tree.lookup("D")) is NodeStatus.OPEN


def test_ties_broken_by_creation_order() -> None:
    script = {("A", "a"): "B", ("A", "b"): "C", ("C", "p"): PROOF, ("B", "p"): PROOF}
    gen = ListGenerator([("a", -1.0), ("b", -1.0), ("p", -1.0)])
    out, tree = best_first_search(THM, ScriptBackend(script), gen, cfg())
    assert out.proof == ("a", "p")
    assert gen.calls == ["A", "B"]


def test_stops_at_first_proof_and_skips_remaining_candidates() -> None:
    script = {("A", "p"): PROOF, ("A", "q"): PROOF}
    backend = ScriptBackend(script)
    out, tree = best_first_search(THM, backend, ListGenerator([("e", 0.0), ("p", -1.0), ("q", -2.0)]), cfg())
    assert out.proof == ("p",)
    assert backend.applied == [("A", "e"), ("A", "p")]
    assert tree.graph.number_of_nodes() == 3  # root, error leaf, terminal


def test_generator_is_asked_with_the_depth() -> None:
    seen: list[tuple[str, int]] = []

    class DepthGen(ListGenerator):
        def generate_at(self, goal_text: str, k: int, depth: int) -> list[Candidate]:
            seen.append((goal_text, depth))
            return self.generate(goal_text, k)

    best_first_search(THM, ScriptBackend(_chain(2), root="G0"), DepthGen([("step", -1.0)]), cfg())
    assert seen == [("G0", 0), ("G1", 1), ("G2", 2)]


def test_repeated_candidates_are_applied_once() -> None:
    backend = ScriptBackend({("A", "a"): "B"})
    gen = ListGenerator([], per_goal={"A": [("a", -1.0), ("  a ", -2.0), ("b", -3.0), ("a", -4.0)]})
    out, _ = best_first_search(THM, backend, gen, cfg())
    assert backend.applied == [("A", "a"), ("A", "b")]
    assert out.extra["attempts"] == 2


def test_candidates_capped_at_k() -> None:
    backend = ScriptBackend({})
    gen = ListGenerator([(f"t{i}", -i) for i in range(10)])
    out, _ = best_first_search(THM, backend, gen, cfg(candidates=3))
    assert [t for _, t in backend.applied] == ["t0", "t1", "t2"]
    assert out.extra["attempts"] == 3
    assert out.reason is Reason.SEARCH_EXHAUSTED


# -- de-duplication -------------------------------------------------------------------------------


def test_transposition_merged_as_duplicate_edge() -> None:
    script = {
        ("A", "a"): "B",
        ("A", "b"): "C",
        ("B", "b"): "D",
        ("C", "a"): "D  ",  # same goal text up to whitespace
    }
    gen = ListGenerator([("a", -1.0), ("b", -2.0)])
    out, tree = best_first_search(THM, ScriptBackend(script), gen, cfg())
    assert out.reason is Reason.SEARCH_EXHAUSTED
    d = tree.lookup("D")
    assert d is not None
    assert sum(1 for n in tree.state_nodes() if tree.goals(n).strip() == "D") == 1
    outcomes = sorted(tree.graph.edges[p, d]["outcome"] for p in tree.graph.predecessors(d))
    assert outcomes == ["advanced", "duplicate"]
    # B(-1) -> D via b(-2) = -3; C(-2) -> D via a(-1) = -3: equal, so the first path stays
    assert tree.tree_parent(d) == tree.lookup("B")
    assert tree.priority(d) == -3.0
    # D expanded exactly once, everything failed and failure reached the root
    assert tree.graph.nodes[d]["expanded_at"] is not None
    assert all(tree.status(n) is NodeStatus.FAILED for n in tree.state_nodes())
    assert out.nodes == 4


def test_duplicate_with_better_priority_reparents_open_node() -> None:
    script = {("A", "a"): "B", ("A", "b"): "C", ("B", "x"): "D", ("C", "y"): "D", ("D", "p"): PROOF}
    gen = ListGenerator(
        [],
        per_goal={
            "A": [("a", -1.0), ("b", -1.5)],
            "B": [("x", -5.0)],
            "C": [("y", -0.1)],
            "D": [("p", 0.0)],
        },
    )
    out, tree = best_first_search(THM, ScriptBackend(script), gen, cfg())
    # B expanded: D at -6. C expanded (-1.5 > -6): reaches D at -1.6, better -> C's edge is the tree edge.
    assert out.proof == ("b", "y", "p")
    d = tree.lookup("D")
    assert tree.priority(d) == pytest.approx(-1.6)
    assert tree.graph.edges[tree.lookup("B"), d]["outcome"] == "duplicate"
    assert gen.calls == ["A", "B", "C", "D"]


def test_tactic_back_to_same_goal_is_a_self_duplicate() -> None:
    script = {("A", "idtac"): "A", ("A", "p"): PROOF}
    out, tree = best_first_search(
        THM, ScriptBackend(script), ListGenerator([("idtac", 0.0), ("p", -1.0)]), cfg()
    )
    assert out.proof == ("p",)
    assert tree.graph.edges[0, 0]["outcome"] == "duplicate"


def test_failed_propagates_up_only_when_all_children_failed() -> None:
    script = {("A", "a"): "B", ("A", "b"): "C", ("B", "x"): "D"}
    gen = ListGenerator([], per_goal={"A": [("a", -1.0), ("b", -3.0)], "B": [("x", -1.0)]})
    out, tree = best_first_search(THM, ScriptBackend(script), gen, cfg(max_expansions=3))
    # expansions: A, B, D (D has no candidates -> failed; B failed); C still open -> A expanded, not failed
    assert out.reason is Reason.EXPANSION_BUDGET
    assert tree.status(tree.lookup("D")) is NodeStatus.FAILED
    assert tree.status(tree.lookup("B")) is NodeStatus.FAILED
    assert tree.status(tree.lookup("C")) is NodeStatus.OPEN
    assert tree.status(0) is NodeStatus.EXPANDED


# -- budgets --------------------------------------------------------------------------------------


def _chain(n: int) -> dict[tuple[str, str], str]:
    return {(f"G{i}", "step"): f"G{i + 1}" for i in range(n)}


def test_expansion_budget() -> None:
    backend = ScriptBackend(_chain(100), root="G0")
    out, tree = best_first_search(THM, backend, ListGenerator([("step", -1.0)]), cfg(max_expansions=5))
    assert out.reason is Reason.EXPANSION_BUDGET
    assert out.expansions == 5
    assert out.proof is None
    assert tree.graph.graph["reason"] == "expansion_budget"
    assert tree.graph.graph["proved"] is False


def test_proof_on_last_allowed_expansion_is_kept() -> None:
    script = {**_chain(4), ("G4", "done"): PROOF}
    backend = ScriptBackend(script, root="G0")
    out, _ = best_first_search(
        THM, backend, ListGenerator([("step", -1.0), ("done", -2.0)]), cfg(max_expansions=5)
    )
    assert out.reason is Reason.PROVED
    assert out.expansions == 5
    assert out.proof == ("step",) * 4 + ("done",)


def test_time_budget_checked_between_tactics() -> None:
    clock = FakeClock()
    backend = ScriptBackend({}, clock=clock, cost=3.0)
    gen = ListGenerator([(f"t{i}", -i) for i in range(8)])
    out, tree = best_first_search(THM, backend, gen, cfg(time_budget=10.0), clock=clock)
    # tactics start at 0, 3, 6, 9 s (< 10); the 5th would start at 12 s: not tried
    assert out.reason is Reason.TIME_BUDGET
    assert len(backend.applied) == 4
    assert out.time.total == pytest.approx(12.0)
    assert out.time.prover == pytest.approx(12.0)
    assert out.time.model == 0.0
    # an interrupted expansion does not mark the node failed
    assert tree.status(0) is NodeStatus.EXPANDED


def test_proof_on_step_that_crosses_time_budget_is_kept() -> None:
    clock = FakeClock()
    script = {("A", "slow"): PROOF}
    backend = ScriptBackend(script, clock=clock, cost=7.0)
    gen = ListGenerator([("bad", 0.0), ("slow", -1.0), ("never", -2.0)])
    out, _ = best_first_search(THM, backend, gen, cfg(time_budget=10.0), clock=clock)
    # "slow" starts at 7 s (< 10) and ends at 14 s (> 10): its proof counts
    assert out.reason is Reason.PROVED
    assert out.proof == ("slow",)
    assert out.time.total == pytest.approx(14.0)


def test_time_budget_checked_before_expansion() -> None:
    clock = FakeClock()

    class SlowGen(ListGenerator):
        def generate(self, goal_text: str, k: int) -> list[Candidate]:
            clock.t += 6.0
            return super().generate(goal_text, k)

    backend = ScriptBackend(_chain(10), root="G0", clock=clock, cost=0.5)
    out, _ = best_first_search(THM, backend, SlowGen([("step", -1.0)]), cfg(time_budget=10.0), clock=clock)
    # expansion 1 ends at 6.5 s; expansion 2's generator returns at 12.5 s: its tactic is not tried
    assert out.reason is Reason.TIME_BUDGET
    assert out.expansions == 2
    assert len(backend.applied) == 1
    assert out.time.model == pytest.approx(12.0)
    assert out.time.prover == pytest.approx(0.5)


def test_max_depth_limits_expansion() -> None:
    backend = ScriptBackend(_chain(10), root="G0")
    out, tree = best_first_search(THM, backend, ListGenerator([("step", -1.0)]), cfg(max_depth=3))
    assert out.reason is Reason.SEARCH_EXHAUSTED
    assert out.expansions == 3
    assert max(tree.depth(n) for n in tree.state_nodes()) == 3


# -- failures -------------------------------------------------------------------------------------


def test_tactic_errors_and_timeouts_are_error_leaves() -> None:
    script = {("A", "slow"): TIMEOUT, ("A", "ok"): "B"}
    out, tree = best_first_search(
        THM, ScriptBackend(script), ListGenerator([("bad", 0.0), ("slow", -1.0), ("ok", -2.0)]), cfg()
    )
    assert out.reason is Reason.SEARCH_EXHAUSTED
    edges = {d["tactic"]: (d["outcome"], d.get("error")) for _, _, d in tree.graph.out_edges(0, data=True)}
    assert edges["bad"] == ("error", "bad fails on A")
    assert edges["slow"][0] == "timeout" and "5" in edges["slow"][1]
    assert edges["ok"] == ("advanced", None)
    assert out.nodes == 2  # A and B; error leaves are attempts, not states
    orders = [d["order"] for _, _, d in tree.graph.edges(data=True)]
    assert sorted(orders) == list(range(len(orders)))


def test_prover_error_is_recorded_and_search_continues(caplog: pytest.LogCaptureFixture) -> None:
    script = {("A", "boom"): CRASH, ("A", "p"): PROOF}
    with caplog.at_level("WARNING"):
        out, tree = best_first_search(
            THM, ScriptBackend(script), ListGenerator([("boom", 0.0), ("p", -1.0)]), cfg()
        )
    assert out.reason is Reason.PROVED
    # a broken prover says nothing about the tactic: it is tried once more, then given up
    assert out.extra["prover_errors"] == 2
    edges = [d for _, _, d in tree.graph.edges(data=True) if d["tactic"] == "boom"]
    assert len(edges) == 2
    assert all(e["outcome"] == "prover_error" and "coqtop died" in e["error"] for e in edges)
    assert "coqtop died" in caplog.text


def test_tactic_whose_prover_was_killed_is_tried_again() -> None:
    script = {("A", "p"): CRASH_ONCE_THEN_PROOF}
    backend = ScriptBackend(script)
    out, tree = best_first_search(THM, backend, ListGenerator([("p", 0.0)]), cfg())
    assert out.reason is Reason.PROVED and out.proof == ("p",)
    assert out.extra["prover_errors"] == 1
    assert backend.applied == [("A", "p"), ("A", "p")]
    outcomes = sorted(d["outcome"] for _, _, d in tree.graph.edges(data=True))
    assert outcomes == ["proved", "prover_error"]


def test_restart_limit_ends_search_with_prover_crash(caplog: pytest.LogCaptureFixture) -> None:
    script = {("A", "boom"): RESTART_LIMIT, ("A", "p"): PROOF}
    with caplog.at_level("ERROR"):
        out, tree = best_first_search(
            THM, ScriptBackend(script), ListGenerator([("boom", 0.0), ("p", -1.0)]), cfg()
        )
    assert out.reason is Reason.PROVER_CRASH
    assert out.proof is None
    assert "too many restarts" in out.error
    assert "too many restarts" in caplog.text
    assert tree.graph.graph["reason"] == "prover_crash"


def test_start_failure_is_start_failed() -> None:
    out, tree = best_first_search(THM, ScriptBackend({}, start_error=True), ListGenerator([]), cfg())
    assert out.reason is Reason.START_FAILED
    assert "header does not load" in out.error
    assert out.expansions == 0
    assert tree.graph.number_of_nodes() == 0
    assert tree.graph.graph["reason"] == "start_failed"


def test_no_candidates_is_search_exhausted_and_root_failed() -> None:
    out, tree = best_first_search(THM, ScriptBackend({}), ListGenerator([]), cfg())
    assert out.reason is Reason.SEARCH_EXHAUSTED
    assert out.expansions == 1
    assert tree.status(0) is NodeStatus.FAILED


def test_on_event_called_per_expansion() -> None:
    events = []
    out, _ = best_first_search(
        THM,
        ScriptBackend(_chain(3), root="G0"),
        ListGenerator([("step", -1.0)]),
        cfg(),
        on_event=events.append,
    )
    assert [e.expansions for e in events] == [1, 2, 3, 4]
    assert events[0].nodes == 2 and events[0].best_priority == -1.0


# -- trace format and invariants ----------------------------------------------------------------


def test_trace_node_link_round_trip_matches_formats_doc() -> None:
    script = {("A", "a"): "B", ("A", "b"): "C", ("B", "x"): "C", ("C", "p"): PROOF}
    gen = ListGenerator([("a", -1.0), ("b", -3.0), ("x", -1.0), ("p", -0.5), ("bad", -9.0)])
    out, tree = best_first_search(THM, ScriptBackend(script), gen, cfg())
    data = json.loads(json.dumps(tree.to_node_link()))
    g = data["graph"]
    assert set(g) >= {
        "theorem",
        "backend",
        "generator",
        "reason",
        "proved",
        "proof",
        "proof_nodes",
        "expansions",
        "time",
        "config",
    }
    assert g["proved"] is True and g["proof"] == list(out.proof)
    assert set(g["time"]) == {"total", "model", "prover"}
    assert g["config"] == {"candidates": 8, "max_expansions": 50, "time_budget": 1e9, "stage_penalty": 0.0}
    assert "edges" in data and "links" not in data
    root = next(n for n in data["nodes"] if n["id"] == 0)
    assert set(root) == {"id", "goals", "status", "depth", "priority", "expanded_at", "terminal"}
    assert root["status"] == "proved" and root["goals"] == "A"
    for e in data["edges"]:
        assert {"source", "target", "tactic", "score", "outcome", "elapsed", "order"} <= set(e)
        if e["outcome"] in ("error", "timeout", "rejected", "prover_error"):
            assert "error" in e
    assert {e["outcome"] for e in data["edges"]} >= {"advanced", "duplicate", "error", "proved"}
    back = SearchTree.from_node_link(data)
    back.check_invariants()
    assert nx.utils.graphs_equal(back.graph, tree.graph)
    assert back.proof() == list(out.proof)
    assert back.lookup("C") == tree.lookup("C")


def test_check_invariants_detects_corruption() -> None:
    _, tree = best_first_search(
        THM,
        ScriptBackend({("A", "a"): "B", ("B", "b"): "C"}),
        ListGenerator([("a", -1.0), ("b", -1.0)]),
        cfg(),
    )
    tree.check_invariants()
    b, c = tree.lookup("B"), tree.lookup("C")

    broken = SearchTree(tree.graph.copy())
    broken.graph.add_edge(c, b, tactic="z", score=0.0, outcome="advanced", elapsed=0.0, order=99)
    with pytest.raises(TreeInvariantError):
        broken.check_invariants()

    broken = SearchTree(tree.graph.copy())
    broken.graph.nodes[0]["status"] = "proved"
    with pytest.raises(TreeInvariantError, match="no proved child"):
        broken.check_invariants()

    broken = SearchTree(tree.graph.copy())
    broken.graph.nodes[b]["status"] = "failed"
    broken.graph.nodes[c]["status"] = "open"
    with pytest.raises(TreeInvariantError):
        broken.check_invariants()

    broken = SearchTree(tree.graph.copy())
    broken.graph.nodes[c]["goals"] = "B"
    with pytest.raises(TreeInvariantError, match="same goals"):
        broken.check_invariants()

    with pytest.raises(TreeInvariantError, match="no root"):
        SearchTree().check_invariants()


# -- cost stages (Candidate.stage, SearchConfig.stage_penalty) -----------------------------------


class StagedGenerator(ListGenerator):
    """Like ListGenerator, with a stage per tactic: ``(tactic, score, stage)``."""

    def __init__(self, per_goal: dict[str, list[tuple[str, float, int]]]) -> None:
        super().__init__([])
        self.staged = per_goal

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        self.calls.append(goal_text)
        return [Candidate(t, s, st) for t, s, st in self.staged.get(goal_text, [])][:k]


def test_cheap_tactics_everywhere_run_before_expensive_ones_anywhere() -> None:
    # A: cheap step "a" -> B, expensive "h" (would prove); B: cheap "p" proves.
    script = {("A", "a"): "B", ("A", "h"): PROOF, ("B", "p"): PROOF}
    gen = StagedGenerator({"A": [("h", -0.1, 1), ("a", -5.0, 0)], "B": [("p", -5.0, 0)]})
    backend = ScriptBackend(script)
    out, tree = best_first_search(THM, backend, gen, cfg(stage_penalty=100.0))
    # the expensive tactic at the root waits for the cheap ones below it, although its score is best
    assert backend.applied == [("A", "a"), ("B", "p")]
    assert out.proof == ("a", "p")
    assert out.expansions == 2


def test_deferred_stage_runs_when_the_cheap_tree_is_exhausted() -> None:
    script = {("A", "a"): "B", ("A", "h"): PROOF}
    gen = StagedGenerator({"A": [("a", -1.0, 0), ("h", -1.0, 2)], "B": [("x", -1.0, 0), ("y", -1.0, 1)]})
    backend = ScriptBackend(script)
    out, tree = best_first_search(THM, backend, gen, cfg(stage_penalty=100.0))
    # stage 0 of A and B, then B's stage 1 (priority -1 - 100) before A's stage 2 (0 - 200)
    assert backend.applied == [("A", "a"), ("B", "x"), ("B", "y"), ("A", "h")]
    assert out.proof == ("h",) and out.expansions == 4
    assert gen.calls == ["A", "B"]  # the generator is asked once per node


def test_a_node_with_pending_stages_is_not_failed() -> None:
    # every tactic fails: the search exhausts only after the last stage, and then the root fails
    gen = StagedGenerator({"A": [("a", -1.0, 0), ("h", -1.0, 1)]})
    out, tree = best_first_search(THM, ScriptBackend({("A", "a"): "B"}), gen, cfg(stage_penalty=10.0))
    assert out.reason is Reason.SEARCH_EXHAUSTED
    assert out.expansions == 3  # A stage 0, B stage 0, A stage 1
    assert tree.status(0) is NodeStatus.FAILED


def test_without_stages_the_search_is_unchanged() -> None:
    script = {("A", "a"): "B", ("A", "b"): "C", ("C", "y"): PROOF}
    gen = StagedGenerator({"A": [("a", -0.1, 0), ("b", -0.5, 0)], "C": [("y", -0.1, 0)]})
    out, _ = best_first_search(THM, ScriptBackend(script), gen, cfg(stage_penalty=100.0))
    assert out.proof == ("b", "y") and out.expansions == 3
