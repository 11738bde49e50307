"""The Coq backend: ``coqtop -emacs`` driven through ``ManagedProcess``, re-checked by ``coqc``.

Protocol. ``coqtop -emacs`` ends every answer with a prompt ``<prompt>NAME < N |PROOFS| 0 < </prompt>``
whose ``N`` is the number of Coq's current state. We send one sentence, read up to the next prompt
(against a deadline) and classify the answer *structurally*: if ``N`` changed, the sentence was
accepted; if not, it failed and Coq stayed where it was. coqtop prints goals only when they differ
from the last ones it printed (after a ``BackTo`` that is not our parent's), so an accepted sentence
that printed nothing is followed by ``Show.``. The header is loaded with ``coqtop -l header.v`` (a
header that does not compile makes coqtop exit: ``ProverStartError``); processes are keyed by the
prepared header, so the next theorem with the same header reuses the live process (``BackTo`` the
state after the header, then the new statement) and the spare is a coqtop with the header loaded.

States. Every state the search sees gets a persistent id (``0`` is the root). A state remembers its
parent and tactic, i.e. its tactic path from the root. Coq's own history is linear, so the process
sits on one path at a time (``_Coqtop.stack``: state ids with their Coq state numbers). To apply a
tactic to state ``s`` we ``BackTo`` the deepest state shared by the current path and ``s``'s path and
replay the rest of ``s``'s path (zero tactics when the search expands the state it just left, the
common case: a best-first expansion tries all k candidates on one node). ``stats()`` reports how
much restoring cost (``backtos``, ``replays``, ``replayed_tactics``, ``replay_s``).

Timeouts. Each tactic runs as ``Timeout T tac.`` with ``T = ceil(tactic_timeout)`` and, in addition,
under a client deadline of ``T + TIMEOUT_GRACE_S`` that catches a prover that hangs or is stopped.
Either way the process is **never reused**: it is killed (whole group) and replaced -- by the warm
spare when ``warm_spare`` is set (a coqtop with the same header already loaded; it is started after
the first replacement under a header and kept while the header stays) -- and the state is restored
lazily, by replay, on the next ``apply``.

Failures. A coqtop that exits (EOF), stops answering outside a tactic, or answers out of step is
killed and a ``ProverCrashed``/``ProverHung``/``ProverDesync`` is raised ``from`` the cause; the
next call starts a fresh process transparently. More than ``max_restarts`` replacements in one
theorem raise ``RestartLimitExceeded``. A process is also recycled (not counted as a restart) after
``recycle_after`` requests or when its resident memory exceeds ``recycle_rss_mb``.

Re-check. ``check`` writes ``proof_text(...)`` plus ``Print Assumptions <name>.`` to a fresh private
directory and runs ``coqc`` on it; a proof is accepted only if coqc exits 0 and every axiom it
depends on is one the header brings in (see ``axioms.py``).
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
from ..process import ManagedProcess, ProcessError, ProcessExited, ProcessTimeout
from ..sandbox import Sandbox, sandbox_for
from . import axioms as _axioms
from .sentences import InvalidTactic, validate_tactic

try:  # written by the header engineer; the signature is the contract
    from .header import prepare_header
except ImportError:  # pragma: no cover - only while header.py has not landed

    def prepare_header(header: str) -> str:
        return header


log = logging.getLogger(__name__)

__all__ = ["CoqBackend", "TIMEOUT_GRACE_S", "normalize_goals", "parse_goals"]

#: seconds the client waits beyond Coq's own ``Timeout`` before it declares the prover hung
TIMEOUT_GRACE_S = 2.0
#: seconds allowed for a bookkeeping command (``BackTo``) that should be instantaneous
COMMAND_TIMEOUT_S = 30.0
#: how often (in requests) the resident memory of coqtop is sampled for ``recycle_rss_mb``
RSS_SAMPLE_EVERY = 16
#: file name (hence module name) of the file that ``check`` compiles
CHECK_MODULE = "LlemmaCheck"

PROMPT_RE = re.compile(r"<prompt>(\S*) < (\d+) \|([^|]*)\| \d+ < </prompt>")
_GOALS_HEAD_RE = re.compile(r"^(\d+) goals?(?: \(ID \d+\))?\s*$", re.MULTILINE)
_OTHER_GOAL_RE = re.compile(r"^goal (\d+)(?: \(ID \d+\))? is:\s*$", re.MULTILINE)
_ID_RE = re.compile(r"\s*\(ID \d+\)")
_TAG_RE = re.compile(r"<(infomsg|warning)>.*?</\1>", re.DOTALL)
_NO_MORE_GOALS = "No more goals."


def parse_goals(output: str) -> tuple[str, ...] | None:
    """The normalised goals in a coqtop answer, or ``None`` when it shows no goal list.

    Coq prints the first goal with its hypotheses and the other goals as conclusions only
    (``goal 2 is: ...``); each becomes one element. ``(ID n)`` annotations are dropped and white
    space is collapsed, so equal states give equal text.
    """
    text = _TAG_RE.sub("", output)
    head = _GOALS_HEAD_RE.search(text)
    if head is None:
        return None
    body = text[head.end() :]
    parts = _OTHER_GOAL_RE.split(body)
    # parts = [goal1, "2", goal2, "3", goal3, ...]
    goals = [parts[0]] + parts[2::2]
    return tuple(normalize_goals(g) for g in goals)


def normalize_goals(text: str) -> str:
    """Drop ``(ID n)``, strip each line, collapse runs of white space, drop empty lines."""
    text = _ID_RE.sub("", text)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _error_message(output: str) -> str:
    text = _TAG_RE.sub("", output).strip()
    idx = text.find("Error:")
    return " ".join((text[idx:] if idx >= 0 else text).split())


@dataclass
class _Node:
    parent: int | None
    tactic: str | None  # validated sentence without final period
    depth: int


class _Coqtop:
    """One coqtop process with a header loaded, and possibly a theorem's proof open."""

    def __init__(self, proc: ManagedProcess, header: str, started: float) -> None:
        self.proc = proc
        self.header = header  # the prepared header it was started with (``-l header.v``)
        self.started = started
        #: Coq state number right after the header (None until its prompt has been read)
        self.header_num: int | None = None
        #: statement whose proof is open (None: none)
        self.statement: str | None = None
        #: (state id, coq state number) from the root to where coqtop is now
        self.stack: list[tuple[int, int]] = []
        self.root_goals: tuple[str, ...] = ()
        #: request count at the last resident-memory sample
        self.rss_checked_at = 0


@register_backend("coq", proof_ext="v")
class CoqBackend(ProverBackend):
    """Coq 8.16 through ``coqtop -emacs``; see the module docstring for the protocol and policies."""

    def __init__(self, config: ProverConfig) -> None:
        super().__init__(config)
        self._executable = config.executable or "coqtop"
        self._theorem: Theorem | None = None
        self._header = ""
        self._nodes: list[_Node] = []
        self._goals: dict[int, tuple[str, ...]] = {}
        self._top: _Coqtop | None = None
        self._spare: _Coqtop | None = None
        #: header whose process has been replaced at least once: keep a spare for it
        self._spare_header: str | None = None
        self._restarts = 0
        self._stats: dict[str, float] = {}
        self._allowed_axioms: dict[str, frozenset[str]] = {}
        #: confinement of every coqtop/coqc this backend starts (probed once, on first use)
        self._sandbox: Sandbox | None = None
        self._reset_stats()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if shutil.which(self._executable) is None:
            raise ProverUnavailable(
                f"{self._executable!r} not found; install Coq 8.16 (Debian: apt-get install coq)",
                backend="coq",
            )

    def close(self) -> None:
        for top in (self._top, self._spare):
            if top is not None:
                top.proc.close()
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
            "timeouts": 0.0,
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
    def _spawn(self, header: str) -> _Coqtop:
        """Start a coqtop that loads ``header`` (``-l``); nothing is read until the process is used,
        so a spare loads its header while the search goes on."""
        self.start()  # ProverUnavailable when coqtop is missing (the sandbox wrapper would hide it)
        proc = ManagedProcess(
            [self._executable, "-q", "-emacs", "-l", "header.v"],
            memory_limit_mb=self.config.memory_limit_mb,
            scrub_env=True,
            private_tmpdir=True,
            sandbox=self.sandbox,
        )
        workdir = proc.workdir
        assert workdir is not None
        with open(f"{workdir}/header.v", "w", encoding="utf-8") as fh:
            fh.write(header)
        t0 = time.monotonic()
        try:
            proc.start()
        except ProcessError as exc:
            proc.close()
            if isinstance(exc.__cause__, FileNotFoundError):
                raise ProverUnavailable(
                    f"{self._executable!r} not found; install Coq 8.16 (Debian: apt-get install coq)",
                    backend="coq",
                ) from exc
            raise ProverStartError(
                f"cannot start coqtop: {exc}", backend="coq", output_tail=exc.tail
            ) from exc
        self._stats["process_starts"] += 1
        return _Coqtop(proc, header, t0)

    def _await_header(self, top: _Coqtop) -> None:
        """Read the prompt that follows the header (raises ``ProverStartError``/``ProverHung``)."""
        if top.header_num is not None:
            return
        try:
            _, m = top.proc.expect(PROMPT_RE, top.started + self.config.start_timeout)
        except ProcessExited as exc:
            top.proc.close()
            raise ProverStartError(
                f"coqtop exited while loading the header (does it compile?): {_error_message(exc.tail)}",
                backend="coq",
                output_tail=exc.tail,
            ) from exc
        except ProcessTimeout as exc:
            top.proc.close()
            raise ProverHung(
                f"loading the header took more than {self.config.start_timeout:.0f}s",
                backend="coq",
                elapsed=time.monotonic() - top.started,
                output_tail=exc.tail,
            ) from exc
        if m.group(3):
            top.proc.close()
            raise ProverDesync("coqtop is inside a proof after loading the header", backend="coq")
        top.header_num = int(m.group(2))
        self._stats["start_s"] += time.monotonic() - top.started

    def _open_statement(self, top: _Coqtop, statement: str) -> None:
        """Go back to the header state (if a proof is open) and open ``statement`` + ``Proof.``."""
        self._await_header(top)
        assert top.header_num is not None
        t0 = time.monotonic()
        deadline = t0 + self.config.start_timeout
        try:
            if top.statement is not None:
                out, num, _ = self._ask(top, f"BackTo {top.header_num}.", deadline)
                if num != top.header_num:
                    raise ProverDesync(
                        f"BackTo {top.header_num} failed: {_error_message(out)}", backend="coq"
                    )
                top.statement, top.stack = None, []
            out, num, names = self._ask(top, statement.strip(), deadline)
            if names and not _TAG_RE.sub("", out).strip():
                # coqtop printed nothing (its goals equal the last ones it printed); ``Show`` prints
                out, num, names = self._ask(top, "Show.", deadline)
            goals = parse_goals(out)
            if not names or goals is None:
                if names:  # opened a proof that shows no goal: undo it
                    self._ask(top, f"BackTo {top.header_num}.", deadline)
                raise ProverStartError(
                    f"the statement did not load: {_error_message(out)}", backend="coq", output_tail=out
                )
            _, num, _ = self._ask(top, "Proof.", deadline)
        except ProcessExited as exc:
            self._discard_top()
            raise ProverCrashed(
                "coqtop exited while opening the statement", backend="coq", output_tail=exc.tail
            ) from exc
        except ProcessTimeout as exc:
            self._discard_top()
            raise ProverHung(
                f"opening the statement took more than {self.config.start_timeout:.0f}s",
                backend="coq",
                output_tail=exc.tail,
            ) from exc
        except ProverDesync:
            self._discard_top()
            raise
        top.statement = statement
        top.root_goals = goals
        top.stack = [(0, num)]
        self._stats["start_s"] += time.monotonic() - t0

    def _current(self) -> _Coqtop:
        """The process for the current theorem, reused, promoted from the spare or started."""
        assert self._theorem is not None
        header, statement = self._header, self._theorem.statement
        top = self._top
        if top is not None:
            if top.header != header:
                top.proc.close()  # another header: not a replacement, no spare wanted for it
                self._top = None
            elif not top.proc.alive:
                self._discard_top()
            elif self._needs_recycle(top):
                self._stats["recycles"] += 1
                self._discard_top()
        if self._top is None:
            spare = self._spare
            self._spare = None
            if spare is not None and spare.header == header and spare.proc.alive:
                self._stats["spare_used"] += 1
                self._top = spare
            else:
                if spare is not None:
                    spare.proc.close()
                self._top = self._spawn(header)
        top = self._top
        if top.statement != statement:
            try:
                self._open_statement(top, statement)
            except ProverStartError:
                if top.header_num is None:  # the header itself failed: the process is gone
                    self._top = None
                raise
        if self.config.warm_spare and self._spare is None and self._spare_header == header:
            try:
                self._spare = self._spawn(header)
            except ProverError as exc:  # a spare is an optimisation; say so and go on
                log.warning("could not start a spare coqtop: %s", exc)
        return top

    def _needs_recycle(self, top: _Coqtop) -> bool:
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
            self._top.proc.close()
            self._top = None

    def _replace_after_failure(self) -> None:
        """Kill the current process; the next call starts (or promotes) another one."""
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
        """Open ``theorem``. A live coqtop with the same header is reused (``BackTo`` the state after
        the header, then the new statement); otherwise the spare or a new process loads the header."""
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
                self._backto(top, 1)
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
    def _ask(self, top: _Coqtop, sentence: str, deadline: float) -> tuple[str, int, str]:
        """Send one sentence; return (answer, new Coq state number, proof names in the prompt)."""
        top.proc.send(sentence + "\n")
        self._stats["requests"] += 1
        out, m = top.proc.expect(PROMPT_RE, deadline)
        extra = top.proc.pending_output()
        if "<prompt>" in extra:
            raise ProverDesync(f"coqtop answered more than one sentence: {extra[:200]!r}", backend="coq")
        return out, int(m.group(2)), m.group(3)

    def _backto(self, top: _Coqtop, keep: int) -> None:
        """Truncate coqtop's path to its first ``keep`` entries (``keep >= 1``)."""
        target = top.stack[keep - 1][1]
        if keep == len(top.stack):
            return
        out, num, _ = self._ask(top, f"BackTo {target}.", time.monotonic() + COMMAND_TIMEOUT_S)
        if num != target:
            raise ProverDesync(
                f"BackTo {target} left coqtop at state {num}: {_error_message(out)}", backend="coq"
            )
        del top.stack[keep:]
        self._stats["backtos"] += 1

    def _restore(self, top: _Coqtop, state_id: int) -> None:
        """Position coqtop at ``state_id``: BackTo the deepest shared state, replay the rest."""
        path = self._path(state_id)
        shared = 0
        for (sid, _), want in zip(top.stack, path, strict=False):
            if sid != want:
                break
            shared += 1
        self._backto(top, shared)
        todo = path[shared:]
        if not todo:
            return
        t0 = time.monotonic()
        self._stats["replays"] += 1
        for sid in todo:
            tactic = self._nodes[sid].tactic
            assert tactic is not None
            out, num, names = self._ask(top, self._wrap(tactic), self._tactic_deadline())
            if num == top.stack[-1][1] or not names:
                raise ProverDesync(
                    f"replaying {tactic!r} (state {sid}) failed: {_error_message(out)}", backend="coq"
                )
            top.stack.append((sid, num))
            self._stats["replayed_tactics"] += 1
        self._stats["replay_s"] += time.monotonic() - t0

    def _wrap(self, tactic: str) -> str:
        return f"Timeout {max(1, math.ceil(self.config.tactic_timeout))} {tactic}."

    def _tactic_deadline(self) -> float:
        return time.monotonic() + max(1, math.ceil(self.config.tactic_timeout)) + TIMEOUT_GRACE_S

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
        stage = "restoring the state"
        try:
            self._restore(top, state_id)
            stage = "running the tactic"
            t_tac = time.monotonic()
            self._stats["tactics"] += 1
            out, num, names = self._ask(top, self._wrap(sentence), self._tactic_deadline())
        except ProcessTimeout as exc:
            if stage == "running the tactic":
                # hung or stopped inside the tactic: a timeout (not a restart), process replaced
                self._discard_top()
                self._stats["timeouts"] += 1
                return TacticTimeout(timeout=self.config.tactic_timeout, elapsed=time.monotonic() - t0)
            self._replace_after_failure()
            raise ProverHung(
                f"no answer while {stage}", backend="coq", elapsed=time.monotonic() - t0, output_tail=exc.tail
            ) from exc
        except ProcessExited as exc:
            self._replace_after_failure()
            raise ProverCrashed(
                f"coqtop exited while {stage}",
                backend="coq",
                elapsed=time.monotonic() - t0,
                output_tail=exc.tail,
            ) from exc
        except ProverError:
            self._replace_after_failure()
            raise
        elapsed = time.monotonic() - t_tac
        prev = top.stack[-1][1]
        if num == prev:
            message = _error_message(out)
            if message.endswith("Error: Timeout!") or message == "Error: Timeout!":
                # Coq's own Timeout fired; a timed-out coqtop is never reused.
                self._discard_top()
                self._stats["timeouts"] += 1
                return TacticTimeout(timeout=self.config.tactic_timeout, elapsed=elapsed)
            return TacticError(message=message or "tactic failed", elapsed=elapsed)
        if not names:
            self._replace_after_failure()
            raise ProverDesync(f"the proof was closed by {sentence!r}", backend="coq", output_tail=out)
        body = _TAG_RE.sub("", out).strip()
        if not body:
            # coqtop prints goals only when they differ from those of its previous command, which
            # after a BackTo is not our parent (e.g. a second proof-closing tactic prints nothing);
            # ``Show`` always prints. Its state is equivalent to the tactic's, so we stand on it.
            try:
                out, num, names = self._ask(top, "Show.", time.monotonic() + COMMAND_TIMEOUT_S)
            except ProcessError as exc:
                self._replace_after_failure()
                raise ProverCrashed("coqtop failed on Show", backend="coq", output_tail=exc.tail) from exc
            except ProverError:
                self._replace_after_failure()
                raise
            body = _TAG_RE.sub("", out).strip()
        goals = parse_goals(out)
        # A goal list whose first entry is empty has no focused goal: everything left is on the
        # shelf ("All the remaining goals are on the shelf"). Not a state we use, like the others.
        shelved_only = goals is not None and (not goals or not goals[0])
        if shelved_only or (
            goals is None and body != _NO_MORE_GOALS and not body.endswith("\n" + _NO_MORE_GOALS)
        ):
            # e.g. "All the remaining goals are on the shelf", unfocused subproofs: not a state we use
            self._backto_parent(top, prev)
            message = " ".join(body.split())[:500] or "unexpected answer"
            if shelved_only:
                message = "the tactic left no focused goal (all remaining goals shelved): " + message
            return TacticError(message=message, elapsed=elapsed)
        new_id = len(self._nodes)
        self._nodes.append(_Node(parent=state_id, tactic=sentence, depth=self._nodes[state_id].depth + 1))
        top.stack.append((new_id, num))
        if goals is None:
            self._goals[new_id] = ()
            return ProofFinished(state_id=new_id, elapsed=elapsed)
        self._goals[new_id] = goals
        return Advanced(state_id=new_id, goals=goals, elapsed=elapsed)

    def _backto_parent(self, top: _Coqtop, num: int) -> None:
        try:
            out, got, _ = self._ask(top, f"BackTo {num}.", time.monotonic() + COMMAND_TIMEOUT_S)
            if got != num:
                raise ProverDesync(f"BackTo {num} failed: {_error_message(out)}", backend="coq")
        except ProcessError as exc:
            self._replace_after_failure()
            raise ProverCrashed("coqtop failed while undoing a tactic", backend="coq") from exc
        except ProverError:
            self._replace_after_failure()
            raise

    def tactics_to(self, state_id: int) -> list[str]:
        """The tactic path (validated sentences) from the root to ``state_id``."""
        return [t for t in (self._nodes[s].tactic for s in self._path(state_id)) if t is not None]

    # -- independent re-check ----------------------------------------------------------------
    def proof_text(self, theorem: Theorem, proof: Sequence[str]) -> str:
        """Header (prepared), statement, ``Proof.``, one tactic per line, ``Qed.`` (no Print Assumptions).

        Raises ``InvalidTactic`` if a tactic is not one admissible sentence.
        """
        tactics = [validate_tactic(t) + "." for t in proof]
        return (
            prepare_header(theorem.header).rstrip("\n")
            + "\n"
            + theorem.statement.strip()
            + "\nProof.\n"
            + "\n".join(tactics)
            + "\nQed.\n"
        )

    def check(self, theorem: Theorem, proof: Sequence[str]) -> CheckResult:
        t0 = time.monotonic()
        try:
            text = self.proof_text(theorem, proof)
        except InvalidTactic as exc:
            return CheckResult(
                ok=False, checker="coqc", elapsed=time.monotonic() - t0, message=f"rejected: {exc}"
            )
        name = _axioms.theorem_name(theorem.statement) or theorem.name
        header = prepare_header(theorem.header)
        return _axioms.check_source(
            text,
            name=name,
            header=header,
            timeout=self.config.check_timeout,
            memory_limit_mb=self.config.memory_limit_mb,
            coqc=_coqc_for(self._executable),
            allowed_cache=self._allowed_axioms,
            started=t0,
            sandbox=self.sandbox,
        )

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox of this backend's processes (``ProverConfig.sandbox``; probed on first use)."""
        if self._sandbox is None:
            self._sandbox = sandbox_for(self.config)
        return self._sandbox


def _coqc_for(coqtop: str) -> str:
    if coqtop.endswith("coqtop"):
        return coqtop[: -len("coqtop")] + "coqc"
    return "coqc"
