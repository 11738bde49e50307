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
    t0 = clock()
    clocks = _Clocks()
    tree = SearchTree()
    expansions = 0
    error = ""
    prover_errors = 0
    attempts = 0

    def finish(reason: Reason) -> tuple[SearchOutcome, SearchTree]:
        total = clock() - t0
        proof = tree.proof() if reason is Reason.PROVED else None
        restarts = _restarts(backend)
        outcome = SearchOutcome(
            reason=reason,
            proof=tuple(proof) if proof is not None else None,
            expansions=expansions,
            nodes=tree.num_states,
            time=TimeSplit(total=total, model=clocks.model, prover=clocks.prover),
            restarts=restarts,
            error=error,
            extra={"prover_errors": prover_errors, "attempts": attempts},
        )
        tree.graph.graph.update(
            theorem=theorem.name,
            backend=backend.name,
            generator=generator.name,
            reason=reason.value,
            proved=reason is Reason.PROVED,
            proof=proof,
            proof_nodes=tree.proof_nodes() if reason is Reason.PROVED else None,
            expansions=expansions,
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
        log.debug("%s: %s after %d expansions, %.2fs", theorem.name, reason.value, expansions, total)
        return outcome, tree

    generator.start_theorem(theorem)
    tp = clock()
    try:
        root = backend.start_theorem(theorem)
    except ProverError as exc:
        clocks.prover += clock() - tp
        log.warning("%s: the prover could not start the theorem: %s", theorem.name, exc)
        error = str(exc)
        return finish(Reason.START_FAILED)
    clocks.prover += clock() - tp
    tree.add_root(root.goal_text, root.state_id)

    # heap of (-entry priority, node id, stage): highest first, ties -> lowest (oldest) node id, then
    # earliest stage. Stage 0 of a node is its first expansion (the generator is called then); stage
    # s > 0 tries the node's stage-s candidates, at the node's priority minus s * stage_penalty.
    heap: list[tuple[float, int, int]] = [(-0.0, tree.ROOT, 0)]
    # expanded nodes whose later stages have not run yet: node -> the remaining (stage, candidates)
    deferred: dict[int, list[tuple[int, list[Candidate]]]] = {}

    def entry_priority(node: int, stage: int) -> float:
        return tree.priority(node) - stage * config.stage_penalty

    def push(node: int, stage: int = 0) -> None:
        if config.max_depth is not None and tree.depth(node) >= config.max_depth:
            return  # stays open: never expanded
        heapq.heappush(heap, (-entry_priority(node, stage), node, stage))

    def current(neg: float, node: int, stage: int) -> bool:
        """Whether a popped heap entry is still what it stands for (not stale)."""
        if -neg != entry_priority(node, stage):
            return False  # re-prioritised since: a fresh entry was pushed
        if stage == 0:
            return tree.status(node) is NodeStatus.OPEN
        return bool(deferred.get(node)) and deferred[node][0][0] == stage

    while True:
        # pop the best still-current entry
        node = None
        stage = 0
        while heap:
            neg, top, st = heapq.heappop(heap)
            if current(neg, top, st):
                node, stage = top, st
                break
        if node is None:
            return finish(Reason.SEARCH_EXHAUSTED)
        if expansions >= config.max_expansions:
            return finish(Reason.EXPANSION_BUDGET)
        if clock() - t0 >= config.time_budget:
            return finish(Reason.TIME_BUDGET)

        expansions += 1
        if stage == 0:
            tree.mark_expanded(node, expansions - 1)
            goals = tree.goals(node)
            tm = clock()
            proposed = generator.generate_at(goals, config.candidates, tree.depth(node))[: config.candidates]
            clocks.model += clock() - tm
            by_stage: dict[int, list[Candidate]] = {}
            for cand in proposed:
                by_stage.setdefault(max(0, int(cand.stage)), []).append(cand)
            candidates = by_stage.pop(0, [])
            if by_stage:
                deferred[node] = sorted(by_stage.items())
        else:
            candidates = deferred[node].pop(0)[1]
        if deferred.get(node):
            push(node, deferred[node][0][0])  # the node's next stage waits its turn
        else:
            deferred.pop(node, None)
        state_id = tree.state_ids[node]
        completed = True
        tried: set[str] = set()
        for cand in candidates:
            key = " ".join(cand.tactic.split())
            if key in tried:
                continue  # a generator that repeats itself must not cost prover time
            tried.add(key)
            if clock() - t0 >= config.time_budget:
                completed = False
                break
            step: StepResult | None = None
            for retry in range(PROVER_ERROR_RETRIES + 1):
                tp = clock()
                attempts += 1
                try:
                    step = backend.apply(state_id, cand.tactic)
                except RestartLimitExceeded as exc:
                    clocks.prover += clock() - tp
                    log.error("%s: prover restart limit reached: %s", theorem.name, exc)
                    tree.add_error(node, cand.tactic, cand.score, EdgeOutcome.PROVER_ERROR, str(exc),
                                   clock() - tp)
                    error = str(exc)
                    return finish(Reason.PROVER_CRASH)
                except ProverError as exc:
                    dt = clock() - tp
                    clocks.prover += dt
                    prover_errors += 1
                    again = retry < PROVER_ERROR_RETRIES
                    log.warning(
                        "%s: prover error on %r (the backend restarts on the next call%s): %s",
                        theorem.name,
                        cand.tactic,
                        "; trying the tactic once more" if again else "",
                        exc,
                    )
                    tree.add_error(node, cand.tactic, cand.score, EdgeOutcome.PROVER_ERROR, str(exc), dt)
                    continue
                clocks.prover += clock() - tp
                break
            if step is None:
                continue
            if isinstance(step, ProofFinished):
                tree.add_proved(node, cand.tactic, cand.score, step.elapsed)
                _emit(on_event, theorem, expansions, tree, clock() - t0, True)
                return finish(Reason.PROVED)
            if isinstance(step, Advanced):
                child, is_new = tree.add_advanced(
                    node, cand.tactic, cand.score, step.goal_text, step.state_id, step.elapsed
                )
                better = is_new or tree.graph.edges[node, child]["outcome"] == "advanced"
                if better and tree.status(child) is NodeStatus.OPEN:
                    push(child)  # new, or re-prioritised by a better path
                elif better and deferred.get(child):
                    push(child, deferred[child][0][0])  # its waiting stage moves up with it
            elif isinstance(step, TacticTimeout):
                tree.add_error(
                    node, cand.tactic, cand.score, EdgeOutcome.TIMEOUT, f"timeout after {step.timeout:g}s",
                    step.elapsed,
                )
            elif isinstance(step, TacticError):
                outcome = EdgeOutcome.REJECTED if step.rejected else EdgeOutcome.ERROR
                tree.add_error(node, cand.tactic, cand.score, outcome, step.message, step.elapsed)
            else:  # pragma: no cover - the backend broke its contract
                raise TypeError(f"backend returned {type(step).__name__}, not a StepResult")
        if completed and node not in deferred:
            tree.update_failed(node, pending=deferred.keys())
        if config.debug_invariants:
            tree.check_invariants()
        _emit(on_event, theorem, expansions, tree, clock() - t0, False)
        if not completed:
            return finish(Reason.TIME_BUDGET)


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
