"""A library file walked in one coqidetop, its lemmas searched in their true context (``prove --library``).

One process per file, started as the file's own module (``-topfile FILE`` with the library's
``-R``/``-Q``; the Init files ``-noinit``), as ``extract`` walks it. The file's text is added in order,
Coq's parser cutting the sentences (``IdeTop.split_sentences``); where a sampled lemma's statement
sentence has been added (its span comes from the scan, ``library/lemmas.py``), that state is the
search's root: ``Stepper`` (``step.py``) runs the candidates on it exactly as for a benchmark problem
(Coq's parser, ``Timeout``, structured goals, the kernel's ``Qed``; candidate failures are values).
After the search the document goes back to the root (``Edit_at``) and the file's **original** proof is
added, so the next lemma sees the file as its author wrote it. Lemmas that are not sampled are only
replayed. The original proof is text of the trusted library: it is never shown to a generator (the
search gets the statement's goals, ``Theorem.statement`` is the statement sentence alone).

Automation modules (``LibraryFile.automation``) are ``Require Import``-ed before the file's first
sentence: outside any Section (``Require`` is refused inside one), once per process.

Failures. A candidate that times out or breaks the process costs that candidate (``Stepper``); the
process is replaced on the next step and the replacement replays the file from its start up to the
lemma's statement (``prefix_replays`` / ``prefix_replay_s`` in ``stats()``) before the search's state is
restored. A failure while replaying the library's own text (a sentence that loaded during the scan no
longer loads, a hung process) is a ``LibraryReplayError``: the lemmas after it in this process cannot be
attempted in context, and the job records them so.

The final check of a proof found here is the in-context check of ``library_check.py``
(``LibraryRechecker``: the proof compiled after the trusted prefix, the kernel's audit, the statement
compared with a trusted reference, the installed copy of the file and its dependants hidden); where it
cannot run, the proof is reported as *not checked* and never counted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.config import ProverConfig
from ...core.errors import ConfigError, ProverDesync, ProverError, ProverStartError, RestartLimitExceeded
from ...core.types import CheckResult, RootState, StepResult, TacticError, Theorem
from ..base import ProverBackend
from ..parts import ProverSetup
from ..process import ManagedProcess, ProcessError
from ..sandbox import Sandbox, sandbox_for
from .ide import MAX_ANSWER_CHARS, CoqFailure, Goals, IdeTop, Sentence, ide_executable_for
from .library_check import BatchItem, LemmaContext, LibraryRechecker
from .pool import Session
from .recheck import final_tactics, proof_file
from .sentences import InvalidTactic, validate_tactic
from .settings import COMMAND_TIMEOUT_S, reset_counters
from .states import StateTree, goal_texts
from .step import CandidateFailed, Stepper
from .text import CoqData, CoqDialect, CoqSketches

__all__ = ["DEFERRED", "LibraryFile", "LibraryLemma", "LibraryReplayError", "LibrarySession"]

#: the ``checker`` of the placeholder result of a deferred check (never ok)
DEFERRED = "deferred"
#: counters of a library session besides the Coq backend's (``settings.COUNTERS``)
LIBRARY_COUNTERS = ("prefix_replays", "prefix_replay_s", "walk_s")


class LibraryReplayError(ProverError):
    """The library's own text could not be replayed up to (or through) a lemma."""


@dataclass(frozen=True)
class LibraryFile:
    """One file of a library and how its coqidetop is started."""

    library: str
    #: the library's logical name and root folder (the compiled copy for a non-installed library)
    logical: str
    root: str
    rel: str
    #: the ``.v`` file loaded with ``-topfile``
    path: str
    #: coqidetop arguments (``-R``/``-Q``, ``-noinit``)
    args: tuple[str, ...] = ()
    #: automation modules Required (and imported) before the file's first sentence
    automation: tuple[str, ...] = ()
    #: the installed compiled files of this file and of its dependants: hidden from the search's
    #: coqidetop where the sandbox can hide files (bubblewrap), as the check hides them
    hidden: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.library}/{self.rel}"


@dataclass(frozen=True)
class LibraryLemma:
    """Where a lemma is in its file (character offsets; ``library.lemmas.Lemma`` carries the same)."""

    key: str
    name: str
    start: int
    stmt_end: int
    end: int


class _Walk:
    """The process of a file and how far its document is: what ``Stepper`` calls the pool."""

    def __init__(self, config: ProverConfig, file: LibraryFile, source: str, sandbox: Sandbox,
                 stats: dict[str, float], replay_timeout: float, executable: str) -> None:
        self.config = config
        self.file = file
        self.source = source
        self.sandbox = sandbox
        self.stats = stats
        self.replay_timeout = replay_timeout
        self.executable = executable
        self.top: Session | None = None
        #: characters of ``source`` the current process has added
        self.pos = 0
        #: the lemma being searched (its statement is the tip's root), or None
        self.lemma: LibraryLemma | None = None
        self.root_goals: tuple[str, ...] = ()
        self.restarts = 0

    # -- processes ------------------------------------------------------------------------------
    def spawn(self) -> Session:
        argv = IdeTop.argv(self.executable, *self.file.args, "-topfile", self.file.path)
        roots = [self.file.args[i + 1] for i, a in enumerate(self.file.args[:-1]) if a in ("-R", "-Q")]
        proc = ManagedProcess(argv, memory_limit_mb=self.config.memory_limit_mb, scrub_env=True,
                              private_tmpdir=True, sandbox=self.sandbox, stderr_file=True,
                              read_only=(*roots, str(Path(self.file.path).parent)))
        ide = IdeTop(proc, max_answer_chars=MAX_ANSWER_CHARS)
        t0 = time.monotonic()
        try:
            root = ide.start(t0 + self.config.start_timeout)
        except ProcessError as exc:
            ide.close()
            raise ProverStartError(f"coqidetop did not start for {self.file.key}: {exc}", backend="coq",
                                   output_tail=exc.tail) from exc
        self.stats["process_starts"] += 1
        self.stats["start_s"] += time.monotonic() - t0
        top = Session(ide, "", t0, self.stats)
        top.header_state = root
        self.top, self.pos = top, 0
        if self.file.automation:
            text = "".join(f"Require Import {m}.\n" for m in self.file.automation)
            self._add_text(top, text, 0, len(text), what="the automation imports")
        return top

    def close(self) -> None:
        if self.top is not None:
            self.top.ide.close()
        self.top = None

    def discard_top(self) -> None:
        """Kill the current process (a candidate timed out or broke it); the next step replaces it."""
        self.close()

    def replace_after_failure(self) -> None:
        self.close()
        self.restarts += 1

    def check_restart_budget(self) -> None:
        if self.restarts > self.config.max_restarts:
            raise RestartLimitExceeded(
                f"{self.restarts} restarts in one lemma (max_restarts={self.config.max_restarts})",
                backend="coq")

    # -- the document -----------------------------------------------------------------------------
    def _add_text(self, top: Session, text: str, start: int, end: int, *, what: str) -> int:
        """Add ``text[start:end]`` sentence by sentence on the tip; returns the new tip."""
        deadline = time.monotonic() + self.replay_timeout
        tip = top.ide.tip
        try:
            for item in top.ide.split_sentences(text[start:end], tip, deadline):
                self.stats["requests"] += 2
                if isinstance(item, CoqFailure):
                    line = text.count("\n", 0, start + (item.loc[0] if item.loc else 0)) + 1
                    raise LibraryReplayError(f"{self.file.key}: {what} did not load at line {line}: "
                                             f"{' '.join(item.message.split())[:300]}", backend="coq")
                assert isinstance(item, Sentence)
                tip = item.state_id
        except ProcessError as exc:
            self.close()
            raise LibraryReplayError(f"{self.file.key}: coqidetop failed while adding {what}: {exc}",
                                     backend="coq", output_tail=exc.tail) from exc
        except LibraryReplayError:
            self.close()
            raise
        return tip

    def advance(self, top: Session, upto: int, what: str) -> int:
        """Add the file's text from where the process is up to character ``upto``."""
        if upto < self.pos:
            raise LibraryReplayError(f"{self.file.key}: the process is past character {upto}", backend="coq")
        t0 = time.monotonic()
        tip = self._add_text(top, self.source, self.pos, upto, what=what) if upto > self.pos else top.ide.tip
        self.pos = upto
        self.stats["walk_s"] += time.monotonic() - t0
        return tip

    def open(self, lemma: LibraryLemma) -> None:
        """Bring the document to just after ``lemma``'s statement: the search's root state."""
        top = self.top if self.top is not None and self.top.ide.alive else None
        if top is None or self.pos > lemma.start:
            self.close()
            top = self.spawn()
        self.advance(top, lemma.stmt_end, f"the file up to {lemma.name}")
        self._root_here(top, lemma)

    def _root_here(self, top: Session, lemma: LibraryLemma) -> None:
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        try:
            goals = top.ide.goals(deadline)
            status = top.ide.status(deadline)
        except ProcessError as exc:
            self.close()
            raise LibraryReplayError(f"{lemma.key}: no answer after the statement: {exc}", backend="coq",
                                     output_tail=exc.tail) from exc
        self.stats["requests"] += 2
        name = None if isinstance(status, CoqFailure) else status.proof_name
        if not isinstance(goals, Goals) or not goals.foreground or name != lemma.name:
            self.close()
            raise LibraryReplayError(f"{lemma.key}: after its statement Coq shows no proof of {lemma.name} "
                                     f"(proof {name!r})", backend="coq")
        top.stack = [(0, top.ide.tip)]
        top.statement = lemma.key
        self.lemma = lemma
        self.root_goals = goal_texts(goals.foreground)

    def for_step(self) -> Session:
        """The process, at the current lemma: a replacement replays the file up to its statement."""
        self.check_restart_budget()
        if self.lemma is None:
            raise ProverDesync("apply() before a lemma is open", backend="coq")
        if self.top is not None and self.top.ide.alive:
            return self.top
        self.close()
        t0 = time.monotonic()
        try:
            top = self.spawn()
            self.advance(top, self.lemma.stmt_end, f"the file up to {self.lemma.name} (replacement)")
            self._root_here(top, self.lemma)
        except ProverError:
            self.restarts += 1
            raise
        self.stats["prefix_replays"] += 1
        self.stats["prefix_replay_s"] += time.monotonic() - t0
        return top

    def finish(self) -> None:
        """Back to the lemma's root, then its original proof: the file as its author wrote it."""
        lemma = self.lemma
        if lemma is None:
            return
        self.lemma = None
        top = self.top
        if top is None or not top.ide.alive or not top.stack:
            self.close()
            top = self.spawn()
            self.advance(top, lemma.stmt_end, f"the file up to {lemma.name} (replacement)")
        else:
            try:
                top.edit_at(top.stack[0][1], time.monotonic() + COMMAND_TIMEOUT_S)
            except (ProcessError, ProverError) as exc:
                self.close()
                raise LibraryReplayError(f"{lemma.key}: cannot go back to the statement: {exc}",
                                         backend="coq") from exc
        top.stack = []
        top.statement = None
        self.advance(top, lemma.end, f"the original proof of {lemma.name}")


class LibraryDialect(CoqDialect):
    """Coq's proof files, except the run directory's: a library lemma is proved in its file's context."""

    def proof_text(self, theorem: Theorem, proof: Sequence[str]) -> str:
        """The proof file of a run directory: where the lemma is (its file's text before it is its
        context, not repeated here), the statement sentence and the tactics the check compiled."""
        where = f"(* {theorem.source}: proved in its file's context (llemma-prover prove --library) *)"
        return proof_file(where, theorem.statement, final_tactics(proof))


class LibrarySession(ProverBackend):
    """The ``ProverBackend`` the search talks to for the lemmas of one library file (see the module
    docstring). Use ``open_lemma`` before each search and ``finish_lemma`` after it (and after ``check``)."""

    name = "coq"
    dialect = LibraryDialect("coq")
    sketches = CoqSketches("coq")
    data = CoqData("coq")
    setup = ProverSetup("coq")

    def __init__(self, config: ProverConfig, file: LibraryFile, *, replay_timeout: float = 900.0,
                 sandbox: Sandbox | None = None, rechecker: Any = None) -> None:
        """``rechecker``: the worker's ``library_check.LibraryRechecker`` (it caches the dependency
        graph and each lemma's reference); built here on first use when not given."""
        super().__init__(config)
        self._rechecker = rechecker
        self.file = file
        self.source = Path(file.path).read_text(encoding="utf-8")
        self._executable = ide_executable_for(config.executable or "coqtop")
        self._stats: dict[str, float] = {}
        self._reset_stats()
        self._states = StateTree()
        self._sandbox = _hiding(sandbox if sandbox is not None else sandbox_for(config), file.hidden)
        self._walk = _Walk(config, file, self.source, self._sandbox, self._stats, replay_timeout,
                           self._executable)
        self._steps = Stepper(config, self._states, self._walk, self._stats)  # type: ignore[arg-type]
        self._lemma: LibraryLemma | None = None
        #: ``True``: ``check`` only records the proof (a failed ``DEFERRED`` result) and
        #: ``check_deferred`` checks every recorded proof at once (``LibraryRechecker.check_batch``)
        self.defer_checks = False
        self._deferred: list[tuple[str, BatchItem]] = []

    def _reset_stats(self) -> None:
        reset_counters(self._stats)
        self._stats.update(dict.fromkeys(LIBRARY_COUNTERS, 0.0))

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._walk.close()

    @property
    def sandbox(self) -> Sandbox:
        return self._sandbox

    @property
    def restarts(self) -> int:
        return self._walk.restarts

    def stats(self) -> dict[str, float]:
        return dict(self._stats, restarts=float(self._walk.restarts))

    # -- lemmas -------------------------------------------------------------------------------
    def open_lemma(self, lemma: LibraryLemma) -> None:
        """Walk the file up to ``lemma``'s statement (lemmas come in file order). Raises
        ``LibraryReplayError`` / ``ProverStartError`` when the file does not load that far."""
        self._reset_stats()
        self._walk.restarts = 0
        self._states.reset()
        self._lemma = None
        self._walk.open(lemma)
        self._lemma = lemma
        self._states.goals[0] = self._walk.root_goals

    def finish_lemma(self) -> None:
        """Take the search back and add the lemma's original proof."""
        self._lemma = None
        self._walk.finish()

    def replay_to(self, pos: int) -> None:
        """Add the file's text up to character ``pos`` (lemmas that are not attempted)."""
        top = self._walk.top if self._walk.top is not None and self._walk.top.ide.alive else None
        if top is None or self._walk.pos > pos:
            self._walk.close()
            top = self._walk.spawn()
        self._walk.advance(top, pos, "the file")

    # -- ProverBackend -------------------------------------------------------------------------
    def start_theorem(self, theorem: Theorem) -> RootState:
        lemma = self._lemma
        if lemma is None or theorem.name != lemma.key:
            raise ProverStartError(f"{theorem.name}: open_lemma() first (open: "
                                   f"{lemma.key if lemma else None})", backend="coq")
        self._states.reset()
        self._states.goals[0] = self._walk.root_goals
        top = self._walk.top
        if top is not None and len(top.stack) > 1:
            self._steps.truncate(top, 1)
        return RootState(state_id=0, goals=self._walk.root_goals, elapsed=0.0)

    def apply(self, state_id: int, tactic: str) -> StepResult:
        if self._lemma is None:
            raise ProverDesync("apply() before open_lemma()", backend="coq")
        if not self._states.known(state_id):
            raise KeyError(f"unknown state id {state_id}")
        t0 = time.monotonic()
        try:
            sentence = validate_tactic(tactic)
        except InvalidTactic as exc:
            self._stats["rejected"] += 1
            return TacticError(message=f"rejected: {exc}", elapsed=time.monotonic() - t0, rejected=True)
        top = self._walk.for_step()
        self._steps.restore_or_raise(top, state_id, t0)
        try:
            return self._steps.run_candidate(top, state_id, sentence)
        except CandidateFailed as exc:
            self._walk.discard_top()
            self._stats["candidate_crashes"] += 1
            return TacticError(message=f"prover failed on this tactic: {exc}", elapsed=time.monotonic() - t0)

    def tactics_to(self, state_id: int) -> list[str]:
        return self._states.tactics_to(state_id)

    def check(self, theorem: Theorem, proof: Sequence[str]) -> CheckResult:
        """The in-context check (``library_check.LibraryRechecker``) of ``proof`` for the open lemma
        (call it before ``finish_lemma``); where it cannot run (no bubblewrap to hide the installed copy
        of the file) a failed result saying so: an unchecked proof is never counted."""
        t0 = time.monotonic()
        lemma = self._checked_lemma(theorem)
        try:
            tactics = final_tactics(proof)
        except InvalidTactic as exc:
            return CheckResult(ok=False, checker="coqchk", elapsed=time.monotonic() - t0,
                               message=f"rejected: {exc}")
        f = self.file
        ctx = LemmaContext(library=f.library, logical=f.logical, root=f.root, rel=f.rel, args=f.args,
                           prefix=self.source[:lemma.start],
                           statement=self.source[lemma.start:lemma.stmt_end],
                           name=lemma.name, automation=f.automation)
        if self.defer_checks:
            self._deferred.append((lemma.key, BatchItem(ctx, tuple(tactics), lemma.end)))
            return CheckResult(ok=False, checker=DEFERRED, elapsed=0.0,
                               message="deferred to the batch check at the end of the job")
        try:
            result: CheckResult = self.rechecker().check(ctx, tactics)
        except ConfigError as exc:  # no bubblewrap to hide the installed copy: nothing is counted
            return CheckResult(ok=False, checker="coqchk", elapsed=time.monotonic() - t0,
                               message=f"not checked: {exc}")
        return result

    def rechecker(self) -> LibraryRechecker:
        if self._rechecker is None:
            self._rechecker = LibraryRechecker(sandbox_for(self.config),
                                               coqbin=_coqbin(self.config.executable),
                                               timeout_s=self.config.check_timeout)
        checker: LibraryRechecker = self._rechecker
        return checker

    def check_deferred(self) -> dict[str, CheckResult]:
        """The check of every proof ``check`` deferred, by lemma key (one batch; a refused batch is
        checked lemma by lemma, see ``LibraryRechecker.check_batch``); the deferred list is emptied."""
        pending, self._deferred = self._deferred, []
        if not pending:
            return {}
        t0 = time.monotonic()
        try:
            results = self.rechecker().check_batch([item for _, item in pending])
        except ConfigError as exc:  # no bubblewrap to hide the installed copy: nothing is counted
            share = (time.monotonic() - t0) / len(pending)
            return {key: CheckResult(ok=False, checker="coqchk", elapsed=share, message=f"not checked: {exc}")
                    for key, _ in pending}
        return {key: res for (key, _), res in zip(pending, results, strict=True)}

    def _checked_lemma(self, theorem: Theorem) -> LibraryLemma:
        lemma = self._lemma
        if lemma is None or lemma.key != theorem.name:
            raise ProverDesync(f"check of {theorem.name} outside its lemma (before finish_lemma)",
                               backend="coq")
        return lemma


def _hiding(sandbox: Sandbox, hidden: Sequence[str]) -> Sandbox:
    """``sandbox`` with ``hidden`` unreadable where it can hide files; as it is elsewhere (the search
    cannot ``Require`` anything, the automation does not load the file, and the check, which refuses
    to run without hiding, decides what counts)."""
    try:
        return sandbox.hiding(hidden)
    except ConfigError:
        return sandbox


def _coqbin(executable: str | None) -> str:
    """The folder of the configured Coq binaries ("" = PATH)."""
    if not executable or "/" not in executable:
        return ""
    return str(Path(executable).parent)
