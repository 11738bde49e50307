"""The ``isabelle`` backend: whole-theory checking through the Isabelle server.

Isabelle has no cheap persistent proof states over the server protocol, so a state here is the list of
proof steps (Isar text) that led to it, and ``apply`` re-checks the theory with one more step:

1. the steps + the new step as a *complete* proof: if the theory checks, ``ProofFinished``;
2. otherwise, an error inside the new step's lines is a ``TacticError``;
3. otherwise (the proof is merely unfinished) the steps + new step + ``print_state`` + ``oops`` are
   checked, and the ``print_state`` output becomes the goal text of an ``Advanced`` state.

Every check is one ``use_theories`` under ``tactic_timeout`` (a timeout is a ``TacticTimeout``). The
final re-check (``check``) refuses text ``theory.validate_proof`` flags (first filter only), then checks
the proof theory together with two audit theories of our own (``audit.py``: Isabelle's own parse of
the proof, and the oracle status of the stored theorem restated from the data) in one
``use_theories`` under ``check_timeout``; it counts only if every node is ok.

This backend has been tested against the fake server in ``llemma_prover/testing/fake_isabelle.py``
only (no Isabelle can be installed where it was written); see ``docs/autoformalize.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from ...core.config import ProverConfig
from ...core.errors import ProverError, ProverStartError, RestartLimitExceeded
from ...core.types import (
    Advanced,
    CheckResult,
    ProofFinished,
    RootState,
    StepResult,
    TacticError,
    TacticTimeout,
    Theorem,
)
from ..base import ProverBackend, register_backend
from ..parts import ProverSetup
from ..sandbox import Sandbox
from ..sketch import Probe
from .audit import audit_plan, audit_verdict
from .automation import sledgehammer_suggestions
from .client import server_sandbox
from .session import IsabelleOptions, IsabelleSession, TheoryCheck, writeln_at
from .text import IsabelleData, IsabelleDialect, IsabelleSketches
from .theory import proof_start_line, theory_name, theory_text, validate_proof

log = logging.getLogger(__name__)

CHECKER = "isabelle use_theories"


class IsabelleSetup(ProverSetup):
    """The Isabelle server's confinement: ``sandbox_for(config)`` adapted to a JVM TCP server."""

    def sandbox_description(self, config: ProverConfig) -> dict[str, object]:
        return server_sandbox(config).describe()


@register_backend("isabelle")
class IsabelleBackend(ProverBackend):
    """Proof checking through one resident Isabelle server (started lazily)."""

    dialect = IsabelleDialect("isabelle")
    sketches = IsabelleSketches("isabelle")
    data = IsabelleData("isabelle")
    setup = IsabelleSetup("isabelle")

    def __init__(self, config: ProverConfig, options: IsabelleOptions | None = None) -> None:
        super().__init__(config)
        self.options = options or IsabelleOptions()
        self._session: IsabelleSession | None = None
        self._theorem: Theorem | None = None
        self._states: dict[int, tuple[str, ...]] = {}
        self._restarts_at_start = 0
        self._checks = 0
        #: what the server runs under (set when the session is created; ``describe()`` for records)
        self.sandbox: Sandbox | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def session(self) -> IsabelleSession:
        if self._session is None:
            # sandbox_for(config), adapted to a JVM TCP server (client.server_sandbox says what is relaxed)
            self.sandbox = server_sandbox(self.config)
            self._session = IsabelleSession(
                executable=self.config.executable or "isabelle",
                options=self.options,
                start_timeout=self.config.start_timeout,
                sandbox=self.sandbox,
            )
        return self._session

    def start(self) -> None:
        self.session().start()

    def close(self) -> None:
        s, self._session = self._session, None
        if s is not None:
            s.close()

    @property
    def restarts(self) -> int:
        return (self._session.restarts if self._session else 0) - self._restarts_at_start

    def stats(self) -> dict[str, float]:
        return {"checks": float(self._checks), "restarts": float(self.restarts)}

    @property
    def server_pid(self) -> int | None:
        return self._session.server_pid if self._session is not None else None

    # -- checking helpers --------------------------------------------------------------------
    def check_text(self, theorem: Theorem, proof: str, timeout: float) -> TheoryCheck:
        """Check the theory of ``theorem`` with ``proof`` (NOT validated: callers validate)."""
        if self.restarts > self.config.max_restarts:
            raise RestartLimitExceeded(
                f"more than {self.config.max_restarts} server restarts", backend="isabelle"
            )
        self._checks += 1
        return self.session().check_theory(theory_name(theorem), theory_text(theorem, proof), timeout)

    def probe(self, theorem: Theorem, proof: str, timeout: float,
              suggestions_at: int | None = None) -> Probe:
        """``check_text`` as a value; ``suggestions_at``: Sledgehammer's "Try this" methods reported at
        that 0-based line of ``proof``."""
        res = self.check_text(theorem, proof, timeout)
        suggestions: tuple[str, ...] = ()
        if suggestions_at is not None:
            line = proof_start_line(theorem) + suggestions_at
            suggestions = tuple(sledgehammer_suggestions(res.messages, line))
        return Probe(res.ok, res.timed_out, "timeout" if res.timed_out else res.first_error(), suggestions)

    # -- proving -----------------------------------------------------------------------------
    def start_theorem(self, theorem: Theorem) -> RootState:
        t0 = time.monotonic()
        self._theorem = theorem
        self._states = {0: ()}
        sess = self.session()
        self._restarts_at_start = sess.restarts
        res = self.check_text(theorem, "print_state\noops", self.config.start_timeout)
        if not res.ok:
            raise ProverStartError(
                f"{theorem.name}: statement does not load: {res.first_error()}",
                backend="isabelle",
                elapsed=time.monotonic() - t0,
            )
        goals = writeln_at(res.messages, proof_start_line(theorem)) or [theorem.statement]
        return RootState(state_id=0, goals=tuple(goals), elapsed=time.monotonic() - t0)

    def apply(self, state_id: int, tactic: str) -> StepResult:
        if self._theorem is None:
            raise ProverStartError("apply before start_theorem", backend="isabelle")
        t0 = time.monotonic()
        reason = validate_proof(tactic)
        if reason is not None:
            return TacticError(message=reason, elapsed=0.0, rejected=True)
        try:
            steps = self._states[state_id]
        except KeyError:
            return TacticError(message=f"unknown state {state_id}", elapsed=0.0, rejected=True)
        new_steps = (*steps, tactic.strip())
        text = "\n".join(new_steps)
        first = proof_start_line(self._theorem)
        step_lo = first + sum(s.count("\n") + 1 for s in steps)
        step_hi = step_lo + tactic.strip().count("\n")
        timeout = self.config.tactic_timeout
        done = self.check_text(self._theorem, text, timeout)
        if done.timed_out:
            return TacticTimeout(timeout=timeout, elapsed=time.monotonic() - t0)
        if done.ok:
            sid = len(self._states)
            self._states[sid] = new_steps
            return ProofFinished(state_id=sid, elapsed=time.monotonic() - t0)
        if any(step_lo <= ln <= step_hi for ln in done.error_lines()) or not done.error_lines():
            return TacticError(message=done.first_error(), elapsed=time.monotonic() - t0)
        part = self.check_text(self._theorem, text + "\nprint_state\noops", timeout)
        if part.timed_out:
            return TacticTimeout(timeout=timeout, elapsed=time.monotonic() - t0)
        if not part.ok:
            return TacticError(message=part.first_error(), elapsed=time.monotonic() - t0)
        goals = writeln_at(part.messages, step_hi + 1) or [f"(after) {text}"]
        sid = len(self._states)
        self._states[sid] = new_steps
        return Advanced(state_id=sid, goals=tuple(goals), elapsed=time.monotonic() - t0)

    def check(self, theorem: Theorem, proof: Sequence[str]) -> CheckResult:
        """The re-check: ``validate_proof`` as a first filter, then the proof theory and the two audit
        theories of ``audit.py`` in one ``use_theories``; counts only if every node is ok."""
        t0 = time.monotonic()
        text = "\n".join(s.strip() for s in proof)

        def result(ok: bool, message: str, elapsed: float | None = None) -> CheckResult:
            return CheckResult(
                ok=ok,
                checker=CHECKER,
                elapsed=time.monotonic() - t0 if elapsed is None else elapsed,
                message=message,
                axioms=(),
                bad_axioms=(),
            )

        reason = validate_proof(text)
        if reason is not None:
            return result(False, f"refused: {reason}", 0.0)
        plan = audit_plan(theorem, text)
        if isinstance(plan, str):
            return result(False, plan)
        if self.restarts > self.config.max_restarts:
            raise RestartLimitExceeded(
                f"more than {self.config.max_restarts} server restarts", backend="isabelle"
            )
        self._checks += 1
        try:
            res = self.session().check_theories(plan.theories, self.config.check_timeout, plan.files)
        except ProverError as exc:
            return result(False, f"prover error: {exc}")
        if res.overall.timed_out:
            return result(
                False, f"check timed out after {self.config.check_timeout:.0f} s", res.overall.elapsed
            )
        why = audit_verdict(plan, res)
        return result(why is None, why or "", res.overall.elapsed)
