"""The Coq backend: ``coqidetop`` (Coq's XML protocol) driven through ``ide.IdeTop``, re-checked by ``coqc``.

Why coqidetop (issue 10, points 1 and 2). ``coqtop -emacs`` prints a tactic's messages unescaped next
to its prompts and goals, so ``idtac`` could print a fake prompt, fake goals or ``No more goals.``,
and our own lexer had to decide where a sentence ended. Over coqidetop every decision comes from a
protocol field that printed text cannot reach (see ``ide.py``): state ids from ``Add``/``Edit_at``,
goals from the structured ``Goal`` answer, failures from ``<value val="fail">``. SerAPI is not
packaged in Debian; coqidetop ships with Coq 8.16.1.

A model tactic, step by step (``apply``):

1. ``validate_tactic`` (``sentences.py``), a cheap first filter whose lexer follows Coq's;
2. **Coq's parser decides** what the text is: ``Timeout T SEL ( tac\\n)`` must parse to the end of the
   text without finishing a sentence (the probe of ``IdeTop.run_sentence``, as in ``parses_to_end``).
   So Coq read exactly one sentence from the tactic -- no ``.``/``...`` sentence end, comment or
   string trick hides inside -- and,
   being inside parentheses, Coq's grammar read it as an ``ltac_expr``: a tactic, never a
   vernacular command (``SEL`` is an optional goal selector ``2:``/``all:``/``[H]:``, matched by a
   strict pattern of digits, names and punctuation, kept outside the parentheses);
3. ``Timeout T SEL ( tac\\n).`` is added and executed (``Goal``), under Coq's ``Timeout`` and a client
   deadline of ``T + TIMEOUT_GRACE_S``. Probe, ``Add`` and ``Goal`` go out in one write (pipelined;
   only the probe's verdict decides, and whatever ran is the text's first sentence, which starts
   with ``Timeout T SEL (`` and so is a tactic);
4. the outcome is read from the answer: a failure value is a ``TacticError`` (Coq's ``Timeout!`` a
   ``TacticTimeout``); otherwise the structured goals: ``Goals.complete`` (no foreground,
   background, shelved or given-up goal) *and* Coq's kernel accepting ``Qed`` on that state (added,
   then taken back with ``Edit_at``; within ``QED_TACTIC_FACTOR`` tactic timeouts, else the candidate
   fails) is ``ProofFinished``; foreground goals are ``Advanced``;
   anything else (only shelved/unfocused goals, given-up goals) is a ``TacticError``. Goal text (for
   de-duplication and prompts) is built from Coq's goal records only, in coqtop's layout (the one
   ``docs/FORMATS.md`` gives for training data): the first goal's hypotheses, the ``====`` rule and
   its conclusion, then the other goals' conclusions; white space collapsed.

States. Every state the search sees gets a persistent id (``0`` is the root). A state remembers its
parent and tactic, i.e. its path from the root. Coq's document is linear, so the process sits on one
path at a time (``_Session.stack``: our ids with Coq's state ids). To apply a tactic to state ``s`` we
``Edit_at`` the deepest state shared by the current path and ``s``'s path and replay the rest (all
``Add``s, then one ``Goal``; zero tactics when the search expands the state it just left, the common
case). ``stats()`` reports what restoring cost (``backtos``, ``replays``, ``replayed_tactics``,
``replay_s``). Processes are keyed by the prepared header (loaded with ``-l header.v``); the next
theorem with the same header reuses the live process (``Edit_at`` the state after the header).

Failures, and what they cost (issue 10, point 5). *One bad candidate costs one candidate*: a tactic
during which the process exits, answers outside the protocol (malformed XML, more than
``MAX_ANSWER_CHARS``) or cannot be taken back is a ``TacticError`` (``"prover failed on this tactic:
..."``); a tactic that outlives the client deadline is a ``TacticTimeout``. Either way the process is
**never reused**: it is killed (whole group) and replaced -- by the warm spare when ``warm_spare`` is
set (started after the first replacement under a header) -- and the state is restored by replay on
the next ``apply``. None of this counts against ``max_restarts``. What counts is infrastructure: a
process that cannot be started or that fails while *restoring* a state (opening the statement,
replaying a path that worked before). Those raise ``ProverCrashed``/``ProverHung``/``ProverDesync``
(``from`` the cause) and count one restart; more than ``max_restarts`` in one theorem raise
``RestartLimitExceeded`` (the search records ``prover_crash``). A process is also recycled (not a
restart) after ``recycle_after`` requests or when its resident memory exceeds ``recycle_rss_mb``.

Re-check. ``check`` delegates to ``recheck.Rechecker``: the proof file is compiled by ``coqc``, the
compiled library is audited by ``coqchk -o`` (axioms by full kernel name against those of the header
alone; type-in-type, unsafe fixpoints, assumed positivity) and its theorem is shown, by proof-free
files, to be exactly the original statement in the original header environment. Nothing the
model's text prints is read (see ``recheck.py``).
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ...core.config import ProverConfig
from ...core.errors import (
    ProverCrashed,
    ProverDesync,
    ProverError,
    ProverHung,
    ProverStartError,
    ProverUnavailable,
    RestartLimitExceeded,
)
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
from ..process import ProcessError, ProcessExited, ProcessTimeout
from ..sandbox import Sandbox, sandbox_for
from .ide import (
    MAX_ANSWER_CHARS,
    Added,
    CoqFailure,
    Goal,
    Goals,
    IdeProtocolError,
    IdeTop,
    Sentence,
    Status,
    ide_executable_for,
)
from .recheck import Rechecker, proof_file, theorem_name
from .sentences import InvalidTactic, validate_tactic

try:  # written by the header engineer; the signature is the contract
    from .header import prepare_header
except ImportError:  # pragma: no cover - only while header.py has not landed

    def prepare_header(header: str) -> str:
        return header


log = logging.getLogger(__name__)

__all__ = ["CoqBackend", "TIMEOUT_GRACE_S", "goal_text", "goal_texts", "split_selector"]

#: seconds the client waits beyond Coq's own ``Timeout`` before it declares the prover hung
TIMEOUT_GRACE_S = 2.0
#: seconds allowed for a bookkeeping call (``Edit_at``, a parse) that should be instantaneous
COMMAND_TIMEOUT_S = 30.0
#: how often (in requests) the resident memory of coqidetop is sampled for ``recycle_rss_mb``
RSS_SAMPLE_EVERY = 16
#: file name (hence module name) of the file that ``check`` compiles
CHECK_MODULE = "LlemmaCheck"
#: the ``Qed`` check of a finished proof may take this many tactic timeouts (plus the grace)
QED_TACTIC_FACTOR = 4
#: Coq's message when its own ``Timeout`` fires
COQ_TIMEOUT_MESSAGE = "Timeout!"

#: a goal selector in front of a tactic (``2:``, ``1-2, 4:``, ``all:``, ``par:``, ``!:``, ``[H]:``)
_SELECTOR_RE = re.compile(
    r"\s*(?P<sel>(?:\d+(?:\s*-\s*\d+)?(?:\s*,\s*\d+(?:\s*-\s*\d+)?)*|all|par|!|\[\s*[A-Za-z_][A-Za-z0-9_']*\s*\])"
    r"\s*:)(?!=)"
)


def split_selector(tactic: str) -> tuple[str, str]:
    """(goal selector with its colon or ``""``, the tactic after it)."""
    m = _SELECTOR_RE.match(tactic)
    if m is None:
        return "", tactic
    return " ".join(m.group("sel").split()) + " ", tactic[m.end() :]


_TIMEOUT_PREFIX_RE = re.compile(r"^timeout\s+\d+\s*\(")


def without_timeout(tactic: str) -> str:
    """``T`` for a tactic that is exactly ``timeout N (T)`` (the parenthesis opened after ``N`` closes
    at the very end), else the tactic unchanged (also whenever it holds a comment or a string)."""
    m = _TIMEOUT_PREFIX_RE.match(tactic)
    if m is None or not tactic.endswith(")") or '"' in tactic or "(*" in tactic:
        return tactic
    body = tactic[m.end() - 1 :]
    depth = 0
    for i, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return body[1:-1].strip() if i == len(body) - 1 else tactic
    return tactic


def goal_text(goal: Goal) -> str:
    """One goal as text: hypotheses one per line, the ``====`` rule, the conclusion; blanks collapsed."""
    hyps = [" ".join(h.split()) for h in goal.hyps]
    return "\n".join([*hyps, "============================", " ".join(goal.concl.split())])


def goal_texts(goals: Sequence[Goal]) -> tuple[str, ...]:
    """The goal texts of a state, in coqtop's layout (``docs/FORMATS.md``, ``data.steps.coq_goal_text``):
    the first goal with its hypotheses, the other goals as their conclusions."""
    return tuple(goal_text(g) if i == 0 else " ".join(g.concl.split()) for i, g in enumerate(goals))


@dataclass
class _Node:
    parent: int | None
    tactic: str | None  # validated sentence without final period
    depth: int


class _Session:
    """One coqidetop process with a header loaded, and possibly a theorem's proof open."""

    def __init__(self, ide: IdeTop, header: str, started: float) -> None:
        self.ide = ide
        self.proc = ide.proc
        self.header = header  # the prepared header it was started with (``-l header.v``)
        self.started = started
        #: Coq state id right after the header (None until ``Init`` has been answered)
        self.header_state: int | None = None
        #: statement whose proof is open (None: none)
        self.statement: str | None = None
        #: (state id, Coq state id) from the root to where the document's tip is now
        self.stack: list[tuple[int, int]] = []
        self.root_goals: tuple[str, ...] = ()
        #: request count at the last resident-memory sample
        self.rss_checked_at = 0


class _CandidateFailed(Exception):
    """The process failed while running one candidate (it is replaced; the candidate gets an error)."""


@register_backend("coq", proof_ext="v")
class CoqBackend(ProverBackend):
    """Coq 8.16 through ``coqidetop``; see the module docstring for the protocol and policies."""

    #: characters of XML one answer of a process may take (a tactic that prints more fails)
    max_answer_chars: int = MAX_ANSWER_CHARS

    def __init__(self, config: ProverConfig) -> None:
        super().__init__(config)
        self._executable = config.executable or "coqtop"
        self._ide_executable = ide_executable_for(self._executable)
        self._theorem: Theorem | None = None
        self._header = ""
        self._nodes: list[_Node] = []
        self._goals: dict[int, tuple[str, ...]] = {}
        self._top: _Session | None = None
        self._spare: _Session | None = None
        #: header whose process has been replaced at least once: keep a spare for it
        self._spare_header: str | None = None
        self._restarts = 0
        self._stats: dict[str, float] = {}
        #: the final check (caches what each header brings in); built on first use
        self._rechecker: Rechecker | None = None
        #: confinement of every coqidetop/coqc/coqchk this backend starts (probed once, on first use)
        self._sandbox: Sandbox | None = None
        self._reset_stats()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        for exe in (self._executable, self._ide_executable):
            if shutil.which(exe) is None:
                raise ProverUnavailable(
                    f"{exe!r} not found; install Coq 8.16 (Debian: apt-get install coq)", backend="coq"
                )

    def close(self) -> None:
        for top in (self._top, self._spare):
            if top is not None:
                top.ide.close()
        self._top = self._spare = None

    @property
    def restarts(self) -> int:
        return self._restarts

    def stats(self) -> dict[str, float]:
        return dict(self._stats, restarts=float(self._restarts))

    def _reset_stats(self) -> None:
        self._stats = {
            "requests": 0.0,
            "tactics": 0.0,
            "rejected": 0.0,
            "coq_rejected": 0.0,
            "kernel_rejected": 0.0,
            "timeouts": 0.0,
            "candidate_crashes": 0.0,
            "backtos": 0.0,
            "replays": 0.0,
            "replayed_tactics": 0.0,
            "replay_s": 0.0,
            "process_starts": 0.0,
            "spare_used": 0.0,
            "recycles": 0.0,
            "start_s": 0.0,
        }

    # -- processes ---------------------------------------------------------------------------
    def _spawn(self, header: str) -> _Session:
        """Start a coqidetop that loads ``header`` (``-l``); ``Init`` is sent only when the process
        is first used, so a spare loads its header while the search goes on."""
        self.start()  # ProverUnavailable when Coq is missing (the sandbox wrapper would hide it)
        ide = IdeTop.create(
            self._ide_executable,
            header=header,
            sandbox=self.sandbox,
            memory_limit_mb=self.config.memory_limit_mb,
            max_answer_chars=self.max_answer_chars,
        )
        t0 = time.monotonic()
        try:
            ide.spawn()
        except ProcessError as exc:
            ide.close()
            if isinstance(exc.__cause__, FileNotFoundError):
                raise ProverUnavailable(
                    f"{self._ide_executable!r} not found; install Coq 8.16 (Debian: apt-get install coq)",
                    backend="coq",
                ) from exc
            raise ProverStartError(
                f"cannot start coqidetop: {exc}", backend="coq", output_tail=exc.tail
            ) from exc
        self._stats["process_starts"] += 1
        return _Session(ide, header, t0)

    def _await_header(self, top: _Session) -> None:
        """``Init`` (answered once the header is loaded); raises ``ProverStartError``/``ProverHung``."""
        if top.header_state is not None:
            return
        try:
            top.header_state = top.ide.init(top.started + self.config.start_timeout)
        except ProcessExited as exc:
            top.ide.close()
            err = " ".join(top.proc.stderr_tail().split())[-500:]
            raise ProverStartError(
                f"coqidetop exited while loading the header (does it compile?): {err}",
                backend="coq",
                output_tail=err,
            ) from exc
        except ProcessTimeout as exc:
            top.ide.close()
            raise ProverHung(
                f"loading the header took more than {self.config.start_timeout:.0f}s",
                backend="coq",
                elapsed=time.monotonic() - top.started,
                output_tail=exc.tail,
            ) from exc
        except IdeProtocolError as exc:
            top.ide.close()
            raise ProverStartError(f"coqidetop did not start: {exc}", backend="coq") from exc
        self._stats["requests"] += 1
        self._stats["start_s"] += time.monotonic() - top.started

    def _open_statement(self, top: _Session, statement: str) -> None:
        """Go back to the header state (if a proof is open), add ``statement`` and ``Proof.``."""
        self._await_header(top)
        assert top.header_state is not None
        t0 = time.monotonic()
        deadline = t0 + self.config.start_timeout
        ide = top.ide
        try:
            if top.statement is not None or ide.tip != top.header_state:
                self._edit_at(top, top.header_state, deadline)
                top.statement, top.stack = None, []
            sentences = list(ide.split_sentences(statement, top.header_state, deadline))
            self._stats["requests"] += 2 * len(sentences)
            failure = next((s for s in sentences if isinstance(s, CoqFailure)), None)
            status = ide.status(deadline) if failure is None else None
            opened_proof = isinstance(status, Status) and status.proof_name is not None
            if failure is not None or len(sentences) != 1 or not opened_proof:
                why = failure.message if failure is not None else "it is not one sentence that opens a proof"
                self._edit_at(top, top.header_state, deadline)
                raise ProverStartError(f"the statement did not load: {why}", backend="coq")
            opened = sentences[0]
            assert isinstance(opened, Sentence)
            proof = ide.add("Proof.", opened.state_id, deadline)
            goals = ide.goals(deadline) if isinstance(proof, Added) else proof
            self._stats["requests"] += 2
            if not isinstance(proof, Added) or not isinstance(goals, Goals) or not goals.foreground:
                self._edit_at(top, top.header_state, deadline)
                raise ProverStartError(
                    f"the statement shows no goal after Proof.: {getattr(goals, 'message', goals)}",
                    backend="coq",
                )
        except ProcessExited as exc:
            self._discard_top()
            raise ProverCrashed(
                "coqidetop exited while opening the statement", backend="coq", output_tail=exc.tail
            ) from exc
        except ProcessTimeout as exc:
            self._discard_top()
            raise ProverHung(
                f"opening the statement took more than {self.config.start_timeout:.0f}s",
                backend="coq",
                output_tail=exc.tail,
            ) from exc
        except (IdeProtocolError, ProverDesync) as exc:
            self._discard_top()
            raise ProverDesync(
                f"coqidetop out of step while opening the statement: {exc}", backend="coq"
            ) from exc
        top.statement = statement
        top.root_goals = goal_texts(goals.foreground)
        top.stack = [(0, proof.state_id)]
        self._stats["start_s"] += time.monotonic() - t0

    def _current(self) -> _Session:
        """The process for the current theorem, reused, promoted from the spare or started."""
        assert self._theorem is not None
        header, statement = self._header, self._theorem.statement
        top = self._top
        if top is not None:
            if top.header != header:
                top.ide.close()  # another header: not a replacement, no spare wanted for it
                self._top = None
            elif not top.ide.alive:
                self._discard_top()
            elif self._needs_recycle(top):
                self._stats["recycles"] += 1
                self._discard_top()
        if self._top is None:
            spare = self._spare
            self._spare = None
            if spare is not None and spare.header == header and spare.ide.alive:
                self._stats["spare_used"] += 1
                self._top = spare
            else:
                if spare is not None:
                    spare.ide.close()
                self._top = self._spawn(header)
        top = self._top
        if top.statement != statement:
            try:
                self._open_statement(top, statement)
            except ProverStartError:
                if top.header_state is None:  # the header itself failed: the process is gone
                    self._top = None
                raise
        if self.config.warm_spare and self._spare is None and self._spare_header == header:
            try:
                self._spare = self._spawn(header)
            except ProverError as exc:  # a spare is an optimisation; say so and go on
                log.warning("could not start a spare coqidetop: %s", exc)
        return top

    def _needs_recycle(self, top: _Session) -> bool:
        cfg = self.config
        if cfg.recycle_after and top.proc.requests >= cfg.recycle_after:
            return True
        if not cfg.recycle_rss_mb or top.proc.requests - top.rss_checked_at < RSS_SAMPLE_EVERY:
            return False
        top.rss_checked_at = top.proc.requests
        return top.proc.rss_mb() > cfg.recycle_rss_mb

    def _discard_top(self) -> None:
        """Kill the current process because it must be replaced (timeout, crash, recycling).

        From now on a spare with this header is kept ready (``warm_spare``): the spare is started
        only once a header has needed a replacement, so theorems that never time out load their
        header once, and a header that does cost a replacement pays a full load at most once."""
        if self._top is not None:
            self._spare_header = self._top.header
            self._top.ide.close()
            self._top = None

    def _replace_after_failure(self) -> None:
        """Kill the current process after an infrastructure failure; counts one restart."""
        self._discard_top()
        self._restarts += 1

    def _check_restart_budget(self) -> None:
        if self._restarts > self.config.max_restarts:
            raise RestartLimitExceeded(
                f"{self._restarts} restarts in one theorem (max_restarts={self.config.max_restarts})",
                backend="coq",
            )

    # -- theorem -----------------------------------------------------------------------------
    def start_theorem(self, theorem: Theorem) -> RootState:
        """Open ``theorem``. A live coqidetop with the same header is reused (``Edit_at`` the state
        after the header, then the new statement); otherwise the spare or a new process loads it."""
        t0 = time.monotonic()
        self._theorem = theorem
        self._header = prepare_header(theorem.header)
        self._nodes = [_Node(parent=None, tactic=None, depth=0)]
        self._goals = {}
        self._restarts = 0
        self._reset_stats()
        top = self._current()
        if len(top.stack) > 1:  # the same theorem was open: back to its root
            try:
                self._truncate(top, 1)
            except (ProcessError, ProverError):
                self._discard_top()
                top = self._current()
        self._goals[0] = top.root_goals
        return RootState(state_id=0, goals=top.root_goals, elapsed=time.monotonic() - t0)

    def _path(self, state_id: int) -> list[int]:
        path = []
        cur: int | None = state_id
        while cur is not None:
            path.append(cur)
            cur = self._nodes[cur].parent
        path.reverse()
        return path

    # -- the protocol ------------------------------------------------------------------------
    def _edit_at(self, top: _Session, coq_state: int, deadline: float) -> None:
        self._stats["requests"] += 1
        failure = top.ide.edit_at(coq_state, deadline)
        if failure is not None:
            raise ProverDesync(f"Edit_at {coq_state} failed: {failure.message}", backend="coq")

    def _truncate(self, top: _Session, keep: int) -> None:
        """Make the ``keep``-th state of the process's path (``keep >= 1``) the document's tip."""
        target = top.stack[keep - 1][1]
        if keep == len(top.stack) and top.ide.tip == target:
            return
        self._edit_at(top, target, time.monotonic() + COMMAND_TIMEOUT_S)
        del top.stack[keep:]
        self._stats["backtos"] += 1

    def _restore(self, top: _Session, state_id: int) -> None:
        """Position the process at ``state_id``: ``Edit_at`` the deepest shared state, replay the rest."""
        path = self._path(state_id)
        shared = 0
        for (sid, _), want in zip(top.stack, path, strict=False):
            if sid != want:
                break
            shared += 1
        self._truncate(top, shared)
        todo = path[shared:]
        if not todo:
            return
        t0 = time.monotonic()
        self._stats["replays"] += 1
        added: list[tuple[int, int]] = []
        tip = top.stack[-1][1]
        deadline = time.monotonic() + len(todo) * self._tactic_seconds() + COMMAND_TIMEOUT_S
        for sid in todo:
            tactic = self._nodes[sid].tactic
            assert tactic is not None
            got = top.ide.add(self._sentence(tactic) + ".", tip, deadline)
            self._stats["requests"] += 1
            if not isinstance(got, Added):
                raise ProverDesync(f"replaying {tactic!r} (state {sid}) failed: {got.message}", backend="coq")
            tip = got.state_id
            added.append((sid, tip))
        goals = top.ide.goals(deadline)
        self._stats["requests"] += 1
        if not isinstance(goals, Goals) or not goals.foreground:
            why = goals.message if isinstance(goals, CoqFailure) else "no focused goal"
            raise ProverDesync(f"replaying the path to state {state_id} failed: {why}", backend="coq")
        top.stack.extend(added)
        self._stats["replayed_tactics"] += len(added)
        self._stats["replay_s"] += time.monotonic() - t0

    def _tactic_seconds(self) -> int:
        return max(1, math.ceil(self.config.tactic_timeout))

    def _sentence(self, tactic: str) -> str:
        """``Timeout T SEL ( tac\\n)`` -- without the final period (see the module docstring)."""
        sel, body = split_selector(tactic)
        return f"Timeout {self._tactic_seconds()} {sel}( {body}\n)"

    def apply(self, state_id: int, tactic: str) -> StepResult:
        if self._theorem is None:
            raise ProverDesync("apply() before start_theorem()", backend="coq")
        if not 0 <= state_id < len(self._nodes) or state_id not in self._goals:
            raise KeyError(f"unknown state id {state_id}")
        t0 = time.monotonic()
        try:
            sentence = validate_tactic(tactic)
        except InvalidTactic as exc:
            self._stats["rejected"] += 1
            return TacticError(message=f"rejected: {exc}", elapsed=time.monotonic() - t0, rejected=True)
        self._check_restart_budget()
        try:
            top = self._current()
        except ProverError:
            self._restarts += 1  # a replacement that failed to start counts against the budget
            raise
        try:
            self._restore(top, state_id)
        except ProcessTimeout as exc:
            self._replace_after_failure()
            raise ProverHung(
                "no answer while restoring the state", backend="coq", elapsed=time.monotonic() - t0,
                output_tail=exc.tail,
            ) from exc
        except ProcessExited as exc:
            self._replace_after_failure()
            raise ProverCrashed(
                "coqidetop exited while restoring the state", backend="coq",
                elapsed=time.monotonic() - t0, output_tail=exc.tail,
            ) from exc
        except IdeProtocolError as exc:
            self._replace_after_failure()
            raise ProverDesync(
                f"coqidetop out of step while restoring the state: {exc}", backend="coq"
            ) from exc
        except ProverError:
            self._replace_after_failure()
            raise
        try:
            return self._run_candidate(top, state_id, sentence)
        except _CandidateFailed as exc:
            # one bad candidate costs one candidate: the process is replaced, no restart is counted
            self._discard_top()
            self._stats["candidate_crashes"] += 1
            return TacticError(message=f"prover failed on this tactic: {exc}", elapsed=time.monotonic() - t0)

    def _run_candidate(self, top: _Session, state_id: int, tactic: str) -> StepResult:
        """Parse-check, add and execute ``tactic`` on the tip (which is ``state_id``)."""
        ide = top.ide
        parent = top.stack[-1][1]
        text = self._sentence(tactic)
        t0 = time.monotonic()
        self._stats["tactics"] += 1
        try:
            t_run = time.monotonic()
            run = ide.run_sentence(
                text, parent, t0 + COMMAND_TIMEOUT_S, t_run + self._tactic_seconds() + TIMEOUT_GRACE_S
            )
            self._stats["requests"] += 3
        except ProcessTimeout:
            # hung or stopped inside the tactic: a timeout (not a restart), process replaced
            self._discard_top()
            self._stats["timeouts"] += 1
            return TacticTimeout(timeout=self.config.tactic_timeout, elapsed=time.monotonic() - t0)
        except (ProcessError, ProverError) as exc:
            raise _CandidateFailed(str(exc)) from exc
        if run.parse_failure is not None or run.added is None:
            self._stats["coq_rejected"] += 1
            why = run.parse_failure.message if run.parse_failure is not None else "not added"
            return TacticError(
                message=f"rejected by Coq's parser: {why}", elapsed=time.monotonic() - t0, rejected=True
            )
        added, answer = run.added, run.goals
        elapsed = time.monotonic() - t_run
        if isinstance(answer, CoqFailure):
            if answer.message == COQ_TIMEOUT_MESSAGE:
                # Coq's own Timeout fired; a timed-out process is never reused.
                self._discard_top()
                self._stats["timeouts"] += 1
                return TacticTimeout(timeout=self.config.tactic_timeout, elapsed=elapsed)
            self._undo(top, parent)
            return TacticError(message=f"Error: {answer.message}" if answer.message else "tactic failed",
                               elapsed=elapsed)
        if answer is None:  # no proof open after a tactic: Coq and we disagree on where we are
            raise _CandidateFailed("no proof is open after the tactic")
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
        new_id = len(self._nodes)
        self._nodes.append(_Node(parent=state_id, tactic=tactic, depth=self._nodes[state_id].depth + 1))
        top.stack.append((new_id, added.state_id))
        if answer.complete:
            self._goals[new_id] = ()
            return ProofFinished(state_id=new_id, elapsed=elapsed)
        goals = goal_texts(answer.foreground)
        self._goals[new_id] = goals
        return Advanced(state_id=new_id, goals=goals, elapsed=elapsed)

    def _kernel_rejects(self, top: _Session, finished: int) -> str | None:
        """``Qed`` on the finished state, then back: ``None`` if Coq's kernel accepts the proof term,
        else why not. No goals left is the tactic engine's view; ``exact_no_check``, an unguarded
        ``fix`` or a universe inconsistency pass it and fail here (the same proof in the compiled file
        would fail too)."""
        ide = top.ide
        # the kernel re-checks what the tactic built, at a cost of the tactic's order: bounded like a
        # few tactics, so that a proof term made to be slow to check costs one candidate, not minutes
        seconds = min(self.config.check_timeout, QED_TACTIC_FACTOR * self._tactic_seconds() + TIMEOUT_GRACE_S)
        deadline = time.monotonic() + seconds
        try:
            qed = ide.add("Qed.", finished, deadline)
            self._stats["requests"] += 1
            verdict = ide.status(deadline) if isinstance(qed, Added) else qed
            self._stats["requests"] += 1
            self._edit_at(top, finished, deadline)
        except (ProcessError, ProverError) as exc:
            raise _CandidateFailed(f"while Coq checked the finished proof (Qed): {exc}") from exc
        if isinstance(verdict, CoqFailure):
            self._stats["kernel_rejected"] += 1
            return f"no goals left, but Coq's kernel rejected the proof at Qed: {verdict.message}"
        return None

    def _undo(self, top: _Session, parent: int) -> None:
        """Take a failed or unusable tactic back (``Edit_at`` its parent)."""
        try:
            self._edit_at(top, parent, time.monotonic() + COMMAND_TIMEOUT_S)
        except (ProcessError, ProverError) as exc:
            raise _CandidateFailed(f"cannot take the tactic back: {exc}") from exc

    def tactics_to(self, state_id: int) -> list[str]:
        """The tactic path (validated sentences) from the root to ``state_id``."""
        return [t for t in (self._nodes[s].tactic for s in self._path(state_id)) if t is not None]

    # -- independent re-check ----------------------------------------------------------------
    def proof_text(self, theorem: Theorem, proof: Sequence[str]) -> str:
        """Header (prepared), statement, ``Proof.``, one tactic per line, ``Qed.`` (``recheck.proof_file``).

        A tactic that is exactly ``timeout N (T)`` is written as ``T`` (``without_timeout``): the
        timeout bounded what the search spent on it; the re-check must not fail because a loaded
        machine runs ``T`` slower than the search did. ``T`` itself is checked as usual. Raises
        ``InvalidTactic`` if a tactic is not one admissible sentence.
        """
        return proof_file(prepare_header(theorem.header), theorem.statement, _final_tactics(proof))

    def check(
        self, theorem: Theorem, proof: Sequence[str], *, audit_header: str | None = None
    ) -> CheckResult:
        """The final check (``recheck.Rechecker.check``) of the tactics ``proof_text`` writes.
        ``audit_header`` (raw, like ``theorem.header``) is the header whose axioms are allowed, when
        it is not the theorem's own."""
        t0 = time.monotonic()
        try:
            tactics = _final_tactics(proof)
        except InvalidTactic as exc:
            return CheckResult(
                ok=False, checker="coqchk", elapsed=time.monotonic() - t0, message=f"rejected: {exc}"
            )
        return self.rechecker.check(
            header=prepare_header(theorem.header),
            statement=theorem.statement,
            tactics=tactics,
            name=theorem_name(theorem.statement) or theorem.name,
            timeout=self.config.check_timeout,
            audit_header=None if audit_header is None else prepare_header(audit_header),
            started=t0,
        )

    @property
    def rechecker(self) -> Rechecker:
        if self._rechecker is None:
            self._rechecker = Rechecker(
                sandbox=self.sandbox,
                coqc=_sibling(self._executable, "coqc"),
                coqchk=_sibling(self._executable, "coqchk"),
                coqidetop=ide_executable_for(self._executable),
                memory_limit_mb=self.config.memory_limit_mb,
            )
        return self._rechecker

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox of this backend's processes (``ProverConfig.sandbox``; probed on first use)."""
        if self._sandbox is None:
            self._sandbox = sandbox_for(self.config)
        return self._sandbox


def _final_tactics(proof: Sequence[str]) -> list[str]:
    """The tactics of the proof file: validated, ``timeout N (T)`` written as ``T``."""
    return [without_timeout(validate_tactic(t)) for t in proof]


def _sibling(coqtop: str, tool: str) -> str:
    """``coqc``/``coqchk`` beside a configured ``coqtop`` (the one on PATH otherwise)."""
    if coqtop.endswith("coqtop"):
        return coqtop[: -len("coqtop")] + tool
    return tool
