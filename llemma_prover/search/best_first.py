"""Best-first proof search as in the Llemma evaluation.

Priority of a node = sum, along the path from the root, of each tactic's score (for a language model,
the tactic's mean token log-prob). The open node with the highest priority is expanded next: the
generator proposes ``k`` candidates for its goals and each is applied to the node's prover state.
The search stops at the first proof, or when a budget (expansions, wall clock, depth) runs out.

Budgets: the expansion budget is checked before each expansion; the time budget before each
expansion and between tactic applications, so an overrun is bounded by one tactic (or one
generator call). A proof found on the step that crosses a budget is kept.

Failures: a tactic error/timeout is an error leaf in the tree. A ``ProverError`` from ``apply`` is
logged and recorded as a ``"prover_error"`` attempt, and the search goes on (the backend restarts its
process on the next call); ``RestartLimitExceeded`` ends the search with ``Reason.PROVER_CRASH``, and
a ``ProverError`` from ``start_theorem`` with ``Reason.START_FAILED``.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..backends.base import ProverBackend
from ..core.config import SearchConfig
from ..core.errors import ProverError, RestartLimitExceeded
from ..core.types import (
    Advanced,
    Candidate,
    EdgeOutcome,
    ProofFinished,
    Reason,
    SearchOutcome,
    StepResult,
    TacticError,
    TacticTimeout,
    Theorem,
    TimeSplit,
)
from ..generators.base import TacticGenerator
from .tree import NodeStatus, SearchTree

log = logging.getLogger(__name__)


#: times a tactic is tried again after the prover process broke while running it (a killed or crashed
#: prover says nothing about the tactic; the backend restores the state on a fresh process first)
PROVER_ERROR_RETRIES = 1


@dataclass(frozen=True)
class SearchEvent:
    """Progress after each expansion (for progress bars; the search itself never prints)."""

    theorem: str
    expansions: int
    nodes: int
    elapsed: float
    best_priority: float
    proved: bool = False
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class _Clocks:
    model: float = 0.0
    prover: float = 0.0


def best_first_search(
    theorem: Theorem,
    backend: ProverBackend,
    generator: TacticGenerator,
    config: SearchConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_event: Callable[[SearchEvent], None] | None = None,
) -> tuple[SearchOutcome, SearchTree]:
    """Search for a proof of ``theorem``; return the outcome and the whole search tree.

    The tree's graph carries the trace's graph attributes (docs/FORMATS.md) when this returns.
    ``clock`` is injectable so that tests can drive the time budget deterministically.
    """
    return _Search(theorem, backend, generator, config, clock, on_event).run()


class _Search:
    """One search: its tree, open-node heap, budgets and counters. ``run`` starts the theorem and calls
    ``_step`` (one expansion: ``_generate_tactics``, then ``_run_tactic`` and ``_record`` per candidate)
    until a proof, an empty heap or a budget ends it; ``_finish`` builds the outcome."""

    def __init__(self, theorem: Theorem, backend: ProverBackend, generator: TacticGenerator,
                 config: SearchConfig, clock: Callable[[], float],
                 on_event: Callable[[SearchEvent], None] | None) -> None:
        self.theorem, self.backend, self.generator, self.config = theorem, backend, generator, config
        self.clock, self.on_event = clock, on_event
        self.t0 = clock()
        self.clocks = _Clocks()
        self.tree = SearchTree()
        self.expansions = 0
        self.error = ""
        self.prover_errors = 0
        self.attempts = 0
        # heap of (-entry priority, node id, stage): highest first, ties -> lowest (oldest) node id, then
        # earliest stage. Stage 0 of a node is its first expansion (the generator is called then); stage
        # s > 0 tries the node's stage-s candidates, at the node's priority minus s * stage_penalty.
        self.heap: list[tuple[float, int, int]] = []
        # expanded nodes whose later stages have not run yet: node -> the remaining (stage, candidates)
        self.deferred: dict[int, list[tuple[int, list[Candidate]]]] = {}

    def run(self) -> tuple[SearchOutcome, SearchTree]:
        if not self._start():
            return self._finish(Reason.START_FAILED)
        try:
            while True:
                popped = self._pop()
                if popped is None:
                    return self._finish(Reason.SEARCH_EXHAUSTED)
                if self.expansions >= self.config.max_expansions:
                    return self._finish(Reason.EXPANSION_BUDGET)
                if self._out_of_time():
                    return self._finish(Reason.TIME_BUDGET)
                reason = self._step(*popped)
                if reason is not None:
                    return self._finish(reason)
        except RestartLimitExceeded:
            return self._finish(Reason.PROVER_CRASH)

    # -- the heap --------------------------------------------------------------------------------

    def _out_of_time(self) -> bool:
        return self.clock() - self.t0 >= self.config.time_budget

    def _entry_priority(self, node: int, stage: int) -> float:
        return self.tree.priority(node) - stage * self.config.stage_penalty

    def _push(self, node: int, stage: int = 0) -> None:
        if self.config.max_depth is not None and self.tree.depth(node) >= self.config.max_depth:
            return  # stays open: never expanded
        heapq.heappush(self.heap, (-self._entry_priority(node, stage), node, stage))

    def _current(self, neg: float, node: int, stage: int) -> bool:
        """Whether a popped heap entry is still what it stands for (not stale)."""
        if -neg != self._entry_priority(node, stage):
            return False  # re-prioritised since: a fresh entry was pushed
        if stage == 0:
            return self.tree.status(node) is NodeStatus.OPEN
        return bool(self.deferred.get(node)) and self.deferred[node][0][0] == stage

    def _pop(self) -> tuple[int, int] | None:
        """The best still-current ``(node, stage)``, or None when nothing is left to expand."""
        while self.heap:
            neg, node, stage = heapq.heappop(self.heap)
            if self._current(neg, node, stage):
                return node, stage
        return None

    # -- one expansion ---------------------------------------------------------------------------

    def _start(self) -> bool:
        """Start the theorem on the generator and the prover; False if the prover could not."""
        self.generator.start_theorem(self.theorem)
        tp = self.clock()
        try:
            root = self.backend.start_theorem(self.theorem)
        except ProverError as exc:
            self.clocks.prover += self.clock() - tp
            log.warning("%s: the prover could not start the theorem: %s", self.theorem.name, exc)
            self.error = str(exc)
            return False
        self.clocks.prover += self.clock() - tp
        self.tree.add_root(root.goal_text, root.state_id)
        self.heap.append((-0.0, self.tree.ROOT, 0))
        return True

    def _step(self, node: int, stage: int) -> Reason | None:
        """Expand ``node`` at ``stage``: run its candidates in order. ``Reason.PROVED`` on a proof,
        ``Reason.TIME_BUDGET`` when the budget ran out between candidates, else None."""
        self.expansions += 1
        candidates = self._generate_tactics(node, stage)
        if self.deferred.get(node):
            self._push(node, self.deferred[node][0][0])  # the node's next stage waits its turn
        else:
            self.deferred.pop(node, None)
        completed = True
        tried: set[str] = set()
        for cand in candidates:
            key = " ".join(cand.tactic.split())
            if key in tried:
                continue  # a generator that repeats itself must not cost prover time
            tried.add(key)
            if self._out_of_time():
                completed = False
                break
            step = self._run_tactic(node, cand)
            if step is not None and self._record(node, cand, step):
                _emit(self.on_event, self.theorem, self.expansions, self.tree, self.clock() - self.t0, True)
                return Reason.PROVED
        if completed and node not in self.deferred:
            self.tree.update_failed(node, pending=self.deferred.keys())
        if self.config.debug_invariants:
            self.tree.check_invariants()
        _emit(self.on_event, self.theorem, self.expansions, self.tree, self.clock() - self.t0, False)
        return None if completed else Reason.TIME_BUDGET

    def _generate_tactics(self, node: int, stage: int) -> list[Candidate]:
        """The candidates to run now: at stage 0 the generator's (its later stages deferred), else the
        node's deferred candidates of ``stage``."""
        if stage != 0:
            return self.deferred[node].pop(0)[1]
        self.tree.mark_expanded(node, self.expansions - 1)
        goals = self.tree.goals(node)
        tm = self.clock()
        proposed = self.generator.generate_at(goals, self.config.candidates,
                                              self.tree.depth(node))[: self.config.candidates]
        self.clocks.model += self.clock() - tm
        by_stage: dict[int, list[Candidate]] = {}
        for cand in proposed:
            by_stage.setdefault(max(0, int(cand.stage)), []).append(cand)
        candidates = by_stage.pop(0, [])
        if by_stage:
            self.deferred[node] = sorted(by_stage.items())
        return candidates

    def _run_tactic(self, node: int, cand: Candidate) -> StepResult | None:
        """Apply ``cand`` to ``node``'s state. A broken prover is an error edge and the tactic is tried
        again (``PROVER_ERROR_RETRIES``); None if it never got an answer. ``RestartLimitExceeded``
        is recorded as an error edge and raised."""
        state_id = self.tree.state_ids[node]
        for retry in range(PROVER_ERROR_RETRIES + 1):
            tp = self.clock()
            self.attempts += 1
            try:
                step = self.backend.apply(state_id, cand.tactic)
            except RestartLimitExceeded as exc:
                self.clocks.prover += self.clock() - tp
                log.error("%s: prover restart limit reached: %s", self.theorem.name, exc)
                self.tree.add_error(node, cand.tactic, cand.score, EdgeOutcome.PROVER_ERROR, str(exc),
                                    self.clock() - tp)
                self.error = str(exc)
                raise
            except ProverError as exc:
                dt = self.clock() - tp
                self.clocks.prover += dt
                self.prover_errors += 1
                again = retry < PROVER_ERROR_RETRIES
                log.warning("%s: prover error on %r (the backend restarts on the next call%s): %s",
                            self.theorem.name, cand.tactic, "; trying the tactic once more" if again else "",
                            exc)
                self.tree.add_error(node, cand.tactic, cand.score, EdgeOutcome.PROVER_ERROR, str(exc), dt)
                continue
            self.clocks.prover += self.clock() - tp
            return step
        return None

    def _record(self, node: int, cand: Candidate, step: StepResult) -> bool:
        """Add ``step``'s edge to the tree (and a new or re-prioritised child to the heap); True if it
        finished the proof."""
        tree = self.tree
        if isinstance(step, ProofFinished):
            tree.add_proved(node, cand.tactic, cand.score, step.elapsed)
            return True
        if isinstance(step, Advanced):
            child, is_new = tree.add_advanced(node, cand.tactic, cand.score, step.goal_text, step.state_id,
                                              step.elapsed)
            better = is_new or tree.graph.edges[node, child]["outcome"] == "advanced"
            if better and tree.status(child) is NodeStatus.OPEN:
                self._push(child)  # new, or re-prioritised by a better path
            elif better and self.deferred.get(child):
                self._push(child, self.deferred[child][0][0])  # its waiting stage moves up with it
        elif isinstance(step, TacticTimeout):
            tree.add_error(node, cand.tactic, cand.score, EdgeOutcome.TIMEOUT,
                           f"timeout after {step.timeout:g}s", step.elapsed)
        elif isinstance(step, TacticError):
            outcome = EdgeOutcome.REJECTED if step.rejected else EdgeOutcome.ERROR
            tree.add_error(node, cand.tactic, cand.score, outcome, step.message, step.elapsed)
        else:  # pragma: no cover - the backend broke its contract
            raise TypeError(f"backend returned {type(step).__name__}, not a StepResult")
        return False

    # -- the end ---------------------------------------------------------------------------------

    def _finish(self, reason: Reason) -> tuple[SearchOutcome, SearchTree]:
        total = self.clock() - self.t0
        tree, clocks, config = self.tree, self.clocks, self.config
        proved = reason is Reason.PROVED
        proof = tree.proof() if proved else None
        outcome = SearchOutcome(
            reason=reason,
            proof=tuple(proof) if proof is not None else None,
            expansions=self.expansions,
            nodes=tree.num_states,
            time=TimeSplit(total=total, model=clocks.model, prover=clocks.prover),
            restarts=_restarts(self.backend),
            error=self.error,
            extra={"prover_errors": self.prover_errors, "attempts": self.attempts},
        )
        tree.graph.graph.update(
            theorem=self.theorem.name,
            backend=self.backend.name,
            generator=self.generator.name,
            reason=reason.value,
            proved=proved,
            proof=proof,
            proof_nodes=tree.proof_nodes() if proved else None,
            expansions=self.expansions,
            time={"total": total, "model": clocks.model, "prover": clocks.prover},
            config={
                "candidates": config.candidates,
                "max_expansions": config.max_expansions,
                "time_budget": config.time_budget,
                "stage_penalty": config.stage_penalty,
            },
        )
        if config.debug_invariants and tree.graph.number_of_nodes():
            tree.check_invariants()
        log.debug("%s: %s after %d expansions, %.2fs", self.theorem.name, reason.value, self.expansions,
                  total)
        return outcome, tree


def _emit(
    on_event: Callable[[SearchEvent], None] | None,
    theorem: Theorem,
    expansions: int,
    tree: SearchTree,
    elapsed: float,
    proved: bool,
) -> None:
    if on_event is None:
        return
    open_prios = [tree.priority(n) for n in tree.state_nodes() if tree.status(n) is NodeStatus.OPEN]
    on_event(
        SearchEvent(
            theorem=theorem.name,
            expansions=expansions,
            nodes=tree.num_states,
            elapsed=elapsed,
            best_priority=max(open_prios) if open_prios else float("-inf"),
            proved=proved,
        )
    )


def _restarts(backend: ProverBackend) -> int:
    try:
        return int(backend.restarts)
    except Exception:  # noqa: BLE001 - accounting must never mask the search result
        log.exception("backend.restarts failed")
        return 0
