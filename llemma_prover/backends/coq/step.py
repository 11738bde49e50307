"""One step of the search on Coq: bring the process to a state, then run one candidate tactic there.

A candidate (already through ``validate_tactic``, the cheap first filter whose lexer follows Coq's):

1. **Coq's parser decides** what the text is: ``Timeout T SEL ( tac\\n)`` (``timed_sentence``) must
   parse to the end of the text without finishing a sentence (the probe of ``IdeTop.run_sentence``,
   as in ``parses_to_end``). So Coq read exactly one sentence from the tactic -- no ``.``/``...``
   sentence end, comment or string trick hides inside -- and, being inside parentheses, Coq's grammar
   read it as an ``ltac_expr``: a tactic, never a vernacular command (``SEL`` is an optional goal
   selector ``2:``/``all:``/``[H]:``, matched by a strict pattern of digits, names and punctuation,
   kept outside the parentheses);
2. ``Timeout T SEL ( tac\\n).`` is added and executed (``Goal``), under Coq's ``Timeout`` and a client
   deadline of ``T + TIMEOUT_GRACE_S``. Probe, ``Add`` and ``Goal`` go out in one write (pipelined;
   only the probe's verdict decides, and whatever ran is the text's first sentence, which starts
   with ``Timeout T SEL (`` and so is a tactic);
3. the outcome is read from the answer: a failure value is a ``TacticError`` (Coq's ``Timeout!`` a
   ``TacticTimeout``); otherwise the structured goals: ``Goals.complete`` (no foreground,
   background, shelved or given-up goal) *and* Coq's kernel accepting ``Qed`` on that state (added,
   then taken back with ``Edit_at``; within ``settings.qed_seconds``, else the candidate fails) is
   ``ProofFinished``; foreground goals are ``Advanced``; anything else (only shelved/unfocused goals,
   given-up goals) is a ``TacticError``.

A candidate during which the process exits, answers outside the protocol, answers after its process
tree changed (a forked worker still alive, the prover gone: ``ide.IdeDesync``; see
``docs/containment.md``) or cannot be taken back raises ``CandidateFailed`` (the backend turns it into
a ``TacticError`` and replaces the whole tree); a candidate whose three answers are not all in by
``T + TIMEOUT_GRACE_S`` after sending is a ``TacticTimeout`` (tree replaced), whatever it forked or
waits for (``par:``). Failures while
*restoring* a state are infrastructure: ``restore_or_raise`` raises ``ProverHung``/``ProverCrashed``/
``ProverDesync`` and counts one restart.

Restoring (``restore``): ``Edit_at`` the deepest state shared by the process's path and the target's
path, replay the rest (``Add`` and ``Goal`` per tactic: each replayed step must reproduce the goals
the search recorded for it, else ``ProverDesync`` -- a nondeterministic tactic or a process elsewhere
than the tree says is a desync of that path, never a silent divergence; zero tactics when the search
expands the state it just left, the common case). ``stats`` counts what that cost (``backtos``, ``replays``,
``replayed_tactics``, ``replay_s``).
"""

from __future__ import annotations

import time

from ...core.config import ProverConfig
from ...core.errors import ProverCrashed, ProverDesync, ProverError, ProverHung
from ...core.types import Advanced, ProofFinished, StepResult, TacticError, TacticTimeout
from ..process import ProcessError, ProcessExited, ProcessTimeout
from .ide import Added, CoqFailure, Goals, IdeProtocolError, SentenceRun
from .layout import split_selector, step_sentence
from .pool import Session, SessionPool
from .settings import (
    COMMAND_TIMEOUT_S,
    COQ_TIMEOUT_MESSAGE,
    TIMEOUT_GRACE_S,
    qed_seconds,
    tactic_seconds,
)
from .states import StateTree, goal_texts

__all__ = ["CandidateFailed", "Stepper", "split_selector", "timed_sentence"]

def timed_sentence(tactic: str, seconds: int) -> str:
    """``Timeout T SEL ( tac\n)`` -- without the final period (``layout.step_sentence``: the proof
    file holds the same text without ``Timeout T``)."""
    return step_sentence(tactic, seconds)


class CandidateFailed(Exception):
    """The process failed while running one candidate (it is replaced; the candidate gets an error)."""


class Stepper:
    """Moves the current process along the states of ``states`` and runs candidates on it."""

    def __init__(
        self, config: ProverConfig, states: StateTree, pool: SessionPool, stats: dict[str, float]
    ) -> None:
        self.config = config
        self.states = states
        self.pool = pool
        self.stats = stats

    def sentence(self, tactic: str) -> str:
        return timed_sentence(tactic, tactic_seconds(self.config))

    # -- positioning the document ----------------------------------------------------------------
    def truncate(self, top: Session, keep: int) -> None:
        """Make the ``keep``-th state of the process's path (``keep >= 1``) the document's tip."""
        target = top.stack[keep - 1][1]
        if keep == len(top.stack) and top.ide.tip == target:
            return
        top.edit_at(target, time.monotonic() + COMMAND_TIMEOUT_S)
        del top.stack[keep:]
        self.stats["backtos"] += 1

    def restore(self, top: Session, state_id: int) -> None:
        """Position the process at ``state_id``: ``Edit_at`` the deepest shared state, replay the rest."""
        path = self.states.path(state_id)
        shared = 0
        for (sid, _), want in zip(top.stack, path, strict=False):
            if sid != want:
                break
            shared += 1
        self.truncate(top, shared)
        todo = path[shared:]
        if not todo:
            return
        t0 = time.monotonic()
        self.stats["replays"] += 1
        tip = top.stack[-1][1]
        deadline = time.monotonic() + len(todo) * tactic_seconds(self.config) + COMMAND_TIMEOUT_S
        for sid in todo:
            tactic = self.states.tactic(sid)
            got = top.ide.add(self.sentence(tactic) + ".", tip, deadline)
            goals = top.ide.goals(deadline) if isinstance(got, Added) else got
            self.stats["requests"] += 2
            if not isinstance(got, Added) or not isinstance(goals, Goals):
                why = goals.message if isinstance(goals, CoqFailure) else "no proof open"
                raise ProverDesync(f"replaying {tactic!r} (state {sid}) failed: {why}", backend="coq")
            recorded = self.states.goals.get(sid)
            if goal_texts(goals.foreground) != recorded or not goals.foreground:
                # a nondeterministic tactic (or a process that is not where we think) took the
                # replay elsewhere than the search recorded: the path is out of step
                raise ProverDesync(
                    f"replaying {tactic!r} did not reproduce the recorded goals of state {sid}",
                    backend="coq",
                )
            tip = got.state_id
            top.stack.append((sid, tip))
            self.stats["replayed_tactics"] += 1
        self.stats["replay_s"] += time.monotonic() - t0

    def restore_or_raise(self, top: Session, state_id: int, t0: float) -> None:
        """``restore``; a failure replaces the process, counts one restart and raises a ``ProverError``."""
        try:
            self.restore(top, state_id)
        except ProcessTimeout as exc:
            self.pool.replace_after_failure()
            raise ProverHung(
                "no answer while restoring the state", backend="coq", elapsed=time.monotonic() - t0,
                output_tail=exc.tail,
            ) from exc
        except ProcessExited as exc:
            self.pool.replace_after_failure()
            raise ProverCrashed(
                "coqidetop exited while restoring the state", backend="coq",
                elapsed=time.monotonic() - t0, output_tail=exc.tail,
            ) from exc
        except IdeProtocolError as exc:
            self.pool.replace_after_failure()
            raise ProverDesync(
                f"coqidetop out of step while restoring the state: {exc}", backend="coq"
            ) from exc
        except ProverError:
            self.pool.replace_after_failure()
            raise

    # -- one candidate -------------------------------------------------------------------------
    def run_candidate(self, top: Session, state_id: int, tactic: str) -> StepResult:
        """Parse-check, add and execute ``tactic`` on the tip (which is ``state_id``)."""
        parent = top.stack[-1][1]
        text = self.sentence(tactic)
        t0 = time.monotonic()
        self.stats["tactics"] += 1
        try:
            t_run = time.monotonic()
            run = top.ide.run_sentence(
                text, parent, t0 + COMMAND_TIMEOUT_S, t_run + tactic_seconds(self.config) + TIMEOUT_GRACE_S
            )
            self.stats["requests"] += 3
        except ProcessTimeout:
            # hung or stopped inside the tactic: a timeout (not a restart), process replaced
            self.pool.discard_top()
            self.stats["timeouts"] += 1
            return TacticTimeout(timeout=self.config.tactic_timeout, elapsed=time.monotonic() - t0)
        except (ProcessError, ProverError) as exc:
            raise CandidateFailed(str(exc)) from exc
        if run.parse_failure is not None or run.added is None:
            self.stats["coq_rejected"] += 1
            why = run.parse_failure.message if run.parse_failure is not None else "not added"
            return TacticError(
                message=f"rejected by Coq's parser: {why}", elapsed=time.monotonic() - t0, rejected=True
            )
        return self._outcome(top, state_id, parent, tactic, run, t_run)

    def _outcome(
        self, top: Session, state_id: int, parent: int, tactic: str, run: SentenceRun, t_run: float
    ) -> StepResult:
        """What the executed candidate did, from Coq's answer to ``Goal`` (and its kernel, if finished);
        ``parent`` is Coq's state id of ``state_id``, where a failed candidate is taken back to."""
        added, answer = run.added, run.goals
        assert added is not None
        elapsed = time.monotonic() - t_run
        if isinstance(answer, CoqFailure):
            if answer.message == COQ_TIMEOUT_MESSAGE:
                # Coq's own Timeout fired; a timed-out process is never reused.
                self.pool.discard_top()
                self.stats["timeouts"] += 1
                return TacticTimeout(timeout=self.config.tactic_timeout, elapsed=elapsed)
            self._undo(top, parent)
            return TacticError(message=f"Error: {answer.message}" if answer.message else "tactic failed",
                               elapsed=elapsed)
        if answer is None:  # no proof open after a tactic: Coq and we disagree on where we are
            raise CandidateFailed("no proof is open after the tactic")
        if answer.given_up or not answer.foreground and not answer.complete:
            self._undo(top, parent)
            if answer.given_up:
                why = "the tactic gave up goals (admit/give_up): the proof could never be closed"
            else:
                why = "the tactic left no focused goal (remaining goals are shelved or unfocused)"
            return TacticError(message=why, elapsed=elapsed)
        if answer.complete:
            rejected = self._kernel_rejects(top, added.state_id)
            if rejected is not None:
                self._undo(top, parent)
                return TacticError(message=rejected, elapsed=time.monotonic() - t_run)
        new_id = self.states.add(state_id, tactic)
        top.stack.append((new_id, added.state_id))
        if answer.complete:
            self.states.goals[new_id] = ()
            return ProofFinished(state_id=new_id, elapsed=elapsed)
        goals = goal_texts(answer.foreground)
        self.states.goals[new_id] = goals
        return Advanced(state_id=new_id, goals=goals, elapsed=elapsed)

    def _kernel_rejects(self, top: Session, finished: int) -> str | None:
        """``Qed`` on the finished state, then back: ``None`` if Coq's kernel accepts the proof term,
        else why not. No goals left is the tactic engine's view; ``exact_no_check``, an unguarded
        ``fix`` or a universe inconsistency pass it and fail here (the same proof in the compiled file
        would fail too)."""
        ide = top.ide
        deadline = time.monotonic() + qed_seconds(self.config)
        try:
            qed = ide.add("Qed.", finished, deadline)
            self.stats["requests"] += 1
            verdict = ide.status(deadline) if isinstance(qed, Added) else qed
            self.stats["requests"] += 1
            top.edit_at(finished, deadline)
        except (ProcessError, ProverError) as exc:
            raise CandidateFailed(f"while Coq checked the finished proof (Qed): {exc}") from exc
        if isinstance(verdict, CoqFailure):
            self.stats["kernel_rejected"] += 1
            return f"no goals left, but Coq's kernel rejected the proof at Qed: {verdict.message}"
        return None

    def _undo(self, top: Session, parent: int) -> None:
        """Take a failed or unusable tactic back (``Edit_at`` its parent)."""
        try:
            top.edit_at(parent, time.monotonic() + COMMAND_TIMEOUT_S)
        except (ProcessError, ProverError) as exc:
            raise CandidateFailed(f"cannot take the tactic back: {exc}") from exc
