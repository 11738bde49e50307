"""The hole-filling loop: walk a sketch, attack each hole with ranked automation, report everything.

* ``StepwiseFiller`` (Coq, Lean 4): runs the sketch's steps one by one through the backend's
  ``apply`` (persistent states, so a hole's candidates are all tried on the same state); a hole is
  closed by the first candidate that the prover accepts -- candidates are wrapped so that they are
  accepted only if they close the hole -- within the per-tactic timeout and the per-hole time limit.
* ``ProbeFiller`` (Isabelle: a backend that ``fills_by_probes``, having no cheap states over its
  server protocol), so each probe is a whole file: holes before the current one filled with what
  closed them, the current one with a candidate method, later ones with ``sorry`` (probes only; the
  final check refuses ``sorry``). The backend's ``hole_candidates`` (Isabelle: the Llemma/DSP
  heuristics) are tried first, then its ``hammer_command`` (Sledgehammer), whose suggestions are
  re-checked.

What differs per prover is asked of the backend's sketch dialect (``hole_candidates``, ``fill_hole``,
``hammer_command``) and of the backend (``apply``, ``probe``); nothing here knows a prover by name.

Both return a ``FillResult`` value; only a broken prover raises (``ProverError``).
"""

from __future__ import annotations

import abc
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..backends.base import ProverBackend, SketchDialect
from ..backends.sketch import Probe, goal_claim
from ..core.config import HolePolicy
from ..core.errors import ProverError, RestartLimitExceeded
from ..core.types import Advanced, ProofFinished, TacticError, TacticTimeout, Theorem
from .sketch import Sketch, Step

log = logging.getLogger(__name__)


class AttemptOutcome(str, enum.Enum):
    """What one candidate did to a hole (recorded as its value)."""

    CLOSED = "closed"
    ERROR = "error"
    TIMEOUT = "timeout"
    #: the prover refused the sentence before running it (not a tactic)
    REJECTED = "rejected"
    #: the candidate broke the prover process (replaced by the backend)
    PROVER_ERROR = "prover_error"
    #: Isabelle: Sledgehammer ran and suggested methods (each then tried as its own attempt)
    SUGGESTED = "suggested"


class HoleStatus(str, enum.Enum):
    CLOSED = "closed"
    UNCLOSED = "unclosed"
    TIME_LIMIT = "time_limit"
    NOT_ATTEMPTED = "not_attempted"


class FillStatus(str, enum.Enum):
    """How filling one sketch ended (recorded as its value)."""

    FILLED = "filled"
    STEP_FAILED = "step_failed"
    HOLE_UNCLOSED = "hole_unclosed"
    INCOMPLETE = "incomplete"
    TIME_BUDGET = "time_budget"


@dataclass(frozen=True)
class Attempt:
    """One candidate tried on a hole."""

    tactic: str
    outcome: AttemptOutcome
    elapsed: float
    message: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"tactic": self.tactic, "outcome": self.outcome.value, "elapsed": self.elapsed,
                "message": self.message}


@dataclass(frozen=True)
class HoleReport:
    index: int
    #: the hole as written in the sketch (Coq/Lean: the step; Isabelle: the marker)
    text: str
    claim: str = ""
    closed_by: str | None = None
    status: HoleStatus = HoleStatus.NOT_ATTEMPTED
    attempts: tuple[Attempt, ...] = ()
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """The record's form (``extra.dsp.samples[].holes[]``): enums as their values."""
        return {"index": self.index, "text": self.text, "claim": self.claim, "closed_by": self.closed_by,
                "status": self.status.value, "attempts": [a.to_dict() for a in self.attempts],
                "elapsed": self.elapsed}


@dataclass(frozen=True)
class FillResult:
    status: FillStatus
    holes: tuple[HoleReport, ...]
    #: the filled proof (the backend's ``check``/``proof_text`` input) when ``status`` is ``FILLED``
    proof: tuple[str, ...] | None
    prover_time: float
    message: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def filled(self) -> bool:
        return self.status is FillStatus.FILLED


class HoleFiller(abc.ABC):
    """Fills the holes of one sketch of one theorem."""

    @abc.abstractmethod
    def fill(self, theorem: Theorem, sketch: Sketch, deadline: float) -> FillResult:
        """Fill ``sketch`` before the wall-clock ``deadline`` (``time.monotonic()`` value)."""


def _short(msg: str, n: int = 300) -> str:
    return " ".join(msg.split())[:n]


class StepwiseFiller(HoleFiller):
    """Coq / Lean 4: steps through ``backend.apply``; candidates from ``tactics_for(step, goals)``
    (default: ``kind.hole_candidates``), hole steps completed by ``kind.fill_hole``; ``kind``: the
    backend's sketch dialect (``sketch_dialect(name)``; default ``backend.sketches``)."""

    def __init__(
        self,
        backend: ProverBackend,
        policy: HolePolicy,
        tactics_for: Callable[[Step, tuple[str, ...]], list[str]] | None = None,
        kind: SketchDialect | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.kind = kind or backend.sketches
        self.tactics_for = tactics_for or self._candidates

    def _candidates(self, step: Step, goals: tuple[str, ...]) -> list[str]:
        return self.kind.hole_candidates(step.claim, goals, self.policy.use_hammer)

    def fill(self, theorem: Theorem, sketch: Sketch, deadline: float) -> FillResult:
        t_prover = 0.0
        t0 = time.monotonic()
        root = self.backend.start_theorem(theorem)
        t_prover += time.monotonic() - t0
        state, goals = root.state_id, root.goals
        proof: list[str] = []
        reports: list[HoleReport] = []
        finished = False
        hole_index = 0
        all_holes = [s for s in sketch.steps if s.hole]

        def pending_reports(start: int) -> list[HoleReport]:
            return [
                HoleReport(index=i, text=all_holes[i].text, claim=all_holes[i].claim)
                for i in range(start, len(all_holes))
            ]

        for k, step in enumerate(sketch.steps):
            if finished:
                # the proof closed before the sketch ended: the remaining steps are not needed
                log.debug("%s: proof finished before step %d; rest dropped", theorem.name, k)
                break
            if time.monotonic() > deadline:
                return FillResult(
                    FillStatus.TIME_BUDGET,
                    tuple(reports + pending_reports(hole_index)),
                    None,
                    t_prover,
                    message=f"time budget reached before step {k + 1}",
                )
            if not step.hole:
                ts = time.monotonic()
                r = self.backend.apply(state, step.text)
                t_prover += time.monotonic() - ts
                if isinstance(r, (Advanced, ProofFinished)):
                    proof.append(step.text)
                    state = r.state_id
                    finished = isinstance(r, ProofFinished)
                    goals = r.goals if isinstance(r, Advanced) else ()
                    continue
                msg = r.message if isinstance(r, TacticError) else f"timeout after {r.timeout:g} s"
                return FillResult(
                    FillStatus.STEP_FAILED,
                    tuple(reports + pending_reports(hole_index)),
                    None,
                    t_prover,
                    message=f"step {k + 1} ({step.text[:80]!r}) failed: {_short(msg)}",
                )
            # a hole
            hs = time.monotonic()
            hole_deadline = min(deadline, hs + self.policy.hole_time_limit)
            attempts: list[Attempt] = []
            closed: str | None = None
            status = HoleStatus.UNCLOSED
            # what the hole had to prove: the asserted claim, else the goal it stood on
            claim_at_hole = step.claim or goal_claim(goals)[:500]
            for tac in self.tactics_for(step, goals):
                if time.monotonic() > hole_deadline:
                    status = HoleStatus.TIME_LIMIT
                    break
                sentence = self.kind.fill_hole(step.text, tac)
                ts = time.monotonic()
                try:
                    r = self.backend.apply(state, sentence)
                except RestartLimitExceeded:
                    raise
                except ProverError as exc:
                    # the candidate broke the prover (e.g. ran out of memory); the backend has replaced
                    # the process and restores the state on the next call: try the next candidate
                    el = time.monotonic() - ts
                    t_prover += el
                    attempts.append(Attempt(tac, AttemptOutcome.PROVER_ERROR, el, _short(str(exc), 160)))
                    continue
                el = time.monotonic() - ts
                t_prover += el
                if isinstance(r, (Advanced, ProofFinished)):
                    attempts.append(Attempt(tac, AttemptOutcome.CLOSED, el))
                    closed = tac
                    proof.append(sentence)
                    state = r.state_id
                    finished = isinstance(r, ProofFinished)
                    goals = r.goals if isinstance(r, Advanced) else ()
                    break
                if isinstance(r, TacticTimeout):
                    attempts.append(Attempt(tac, AttemptOutcome.TIMEOUT, el))
                else:
                    outcome = AttemptOutcome.REJECTED if r.rejected else AttemptOutcome.ERROR
                    attempts.append(Attempt(tac, outcome, el, _short(r.message, 160)))
            rep = HoleReport(
                index=hole_index,
                text=step.text,
                claim=claim_at_hole,
                closed_by=closed,
                status=HoleStatus.CLOSED if closed else status,
                attempts=tuple(attempts),
                elapsed=time.monotonic() - hs,
            )
            reports.append(rep)
            hole_index += 1
            if closed is None:
                return FillResult(
                    FillStatus.HOLE_UNCLOSED,
                    tuple(reports + pending_reports(hole_index)),
                    None,
                    t_prover,
                    message=f"hole {hole_index} ({step.text[:80]!r}) not closed "
                    f"({len(attempts)} tactics tried)",
                )
        if not finished:
            return FillResult(
                FillStatus.INCOMPLETE,
                tuple(reports + pending_reports(hole_index)),
                None,
                t_prover,
                message="the sketch ends with goals left: " + _short(" | ".join(goals), 200),
            )
        return FillResult(
            FillStatus.FILLED, tuple(reports + pending_reports(hole_index)), tuple(proof), t_prover
        )


class ProbeFiller(HoleFiller):
    """Whole-file probes per hole (a backend that ``fills_by_probes``: Isabelle); the backend's
    ``hole_candidates`` (or ``methods``), then its ``hammer_command`` (see the module docstring)."""

    def __init__(
        self,
        backend: ProverBackend,
        policy: HolePolicy,
        methods: tuple[str, ...] | None = None,
        kind: SketchDialect | None = None,
    ) -> None:
        self.kind = kind or backend.sketches
        if not self.kind.fills_by_probes:
            raise TypeError(f"backend {self.kind.backend!r} does not fill holes by probes")
        self.backend = backend
        self.policy = policy
        self.methods = methods if methods is not None else tuple(
            self.kind.hole_candidates("", (), policy.use_hammer)
        )

    def fill(self, theorem: Theorem, sketch: Sketch, deadline: float) -> FillResult:
        t_prover = 0.0
        n = len(sketch.spans)
        closers: list[str | None] = [None] * n
        reports: list[HoleReport] = []
        timeout = self.backend.config.tactic_timeout

        def probe(text: str, limit: float, suggestions_at: int | None = None) -> tuple[bool, str, Probe]:
            nonlocal t_prover
            ts = time.monotonic()
            res = self.backend.probe(theorem, text, limit, suggestions_at)
            t_prover += time.monotonic() - ts
            return res.ok, res.message, res

        # the skeleton (every hole = sorry) must load, or no hole is worth attacking
        ok, msg, _ = probe(sketch.render_text(closers), max(timeout, 1.0) * 4)
        if not ok:
            return FillResult(
                FillStatus.STEP_FAILED,
                tuple(HoleReport(index=i, text=t) for i, t in enumerate(sketch.hole_texts())),
                None,
                t_prover,
                message=f"skeleton does not check: {_short(msg)}",
            )
        for i in range(n):
            hs = time.monotonic()
            hole_deadline = min(deadline, hs + self.policy.hole_time_limit)
            attempts: list[Attempt] = []
            status = HoleStatus.UNCLOSED
            for m in self.methods:
                if time.monotonic() > hole_deadline:
                    status = HoleStatus.TIME_LIMIT
                    break
                ts = time.monotonic()
                ok, msg, res = probe(sketch.render_text([*closers[:i], m]), timeout)
                el = time.monotonic() - ts
                outcome = AttemptOutcome.CLOSED if ok else (
                    AttemptOutcome.TIMEOUT if res.timed_out else AttemptOutcome.ERROR)
                attempts.append(Attempt(m, outcome, el, "" if ok else _short(msg, 160)))
                if ok:
                    closers[i] = m
                    break
            cmd = self.kind.hammer_command(self.policy.sledgehammer_timeout)
            if (
                closers[i] is None
                and cmd is not None
                and status is not HoleStatus.TIME_LIMIT
                and self.policy.sledgehammer
                and time.monotonic() < hole_deadline
            ):
                text = sketch.render_text([*closers[:i], f"{cmd} sorry"])
                line = sketch.hole_line(i, [*closers[:i], f"{cmd} sorry"])
                ts = time.monotonic()
                ok, msg, res = probe(text, self.policy.sledgehammer_timeout + timeout, line)
                attempts.append(
                    Attempt(
                        "sledgehammer",
                        AttemptOutcome.SUGGESTED if ok else AttemptOutcome.ERROR,
                        time.monotonic() - ts,
                        "" if ok else _short(msg, 160),
                    )
                )
                # suggestions count even if the probe failed elsewhere: each is re-checked on its own
                for sug in res.suggestions:
                    if time.monotonic() > hole_deadline:
                        status = HoleStatus.TIME_LIMIT
                        break
                    ts = time.monotonic()
                    ok2, msg2, _ = probe(sketch.render_text([*closers[:i], sug]), timeout)
                    attempts.append(
                        Attempt(
                            sug,
                            AttemptOutcome.CLOSED if ok2 else AttemptOutcome.ERROR,
                            time.monotonic() - ts,
                            "" if ok2 else _short(msg2, 160),
                        )
                    )
                    if ok2:
                        closers[i] = sug
                        break
            reports.append(
                HoleReport(
                    index=i,
                    text=sketch.hole_texts()[i],
                    closed_by=closers[i],
                    status=HoleStatus.CLOSED if closers[i] else status,
                    attempts=tuple(attempts),
                    elapsed=time.monotonic() - hs,
                )
            )
            if closers[i] is None:
                rest = [HoleReport(index=j, text=sketch.hole_texts()[j]) for j in range(i + 1, n)]
                return FillResult(
                    FillStatus.HOLE_UNCLOSED,
                    tuple(reports + rest),
                    None,
                    t_prover,
                    message=f"hole {i + 1} not closed ({len(attempts)} attempts)",
                )
        final = sketch.render_text(closers)
        return FillResult(FillStatus.FILLED, tuple(reports), (final,), t_prover)
