"""The Lean 4 backend: the community REPL behind ``ProverBackend``.

Per theorem: the header is elaborated once per REPL process (``ReplPool``) and its ``env`` id reused;
the theorem is started as the command ``<statement> by sorry`` on that env, whose single ``sorry``
gives the root ``proofState``; each tactic is ``{"tactic", "proofState"}``. REPL proof states are
persistent, so a search node is just a REPL id -- tagged with the *generation* (the process) it lives
in. When a process is replaced (timeout, crash, desync, recycling) the old ids are dead; a node is
then restored lazily, the first time it is used, by replaying its path (root command, then tactics)
in the new process and checking that the goals come out identical.

Outcome of one tactic (the REPL reply -> ``StepResult``):

* ``{"message": ...}`` (e.g. ``"Lean error:\\n<input>:1:1: unknown tactic"``) -> ``TacticError``;
  ``"Unknown proof state."`` -> ``ProverDesync`` (the client is out of step, not the tactic);
* any error message, any new ``sorry`` -> ``TacticError``;
* ``proofStatus == "Completed"`` -> ``ProofFinished``; this is the ONLY way to finish: an erroring
  tactic also comes back with ``"goals": []`` (and ``"Incomplete: contains sorry"``), and
  ``"Incomplete: contains metavariable(s)"`` / ``"Error: kernel type check failed ..."`` have empty
  goals too -- all ``TacticError``;
* ``"Incomplete: open goals remain"`` with goals -> ``Advanced``;
* no reply within ``tactic_timeout`` -> ``TacticTimeout`` (the process group is killed and replaced);
* a reply without ``proofStatus`` (a REPL too old to check proofs) -> ``ProverDesync``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from ...core.config import LEAN_TACTIC_TIMEOUT, ProverConfig
from ...core.errors import (
    ProverCrashed,
    ProverDesync,
    ProverError,
    ProverHung,
    ProverStartError,
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
from ..parts import ProverSetup
from ..sandbox import Limits, Sandbox, sandbox_for
from .audit import audit_proof, judge_proof_command, parse_axioms
from .kernel import KernelTools, kernel_replay, kernel_tools_for
from .locate import ReplCommand, resolve_repl
from .pool import PoolPolicy, ReplPool, ReplSession
from .protocol import (
    COMPLETED,
    OPEN_GOALS,
    CommandResponse,
    ProtocolError,
    ReplError,
    TacticResponse,
    command_request,
    parse_command_response,
    parse_tactic_response,
    tactic_request,
)
from .repl_process import BACKEND, ProcessPolicy, ReplProcess, ReplTimeout
from .tactics import check_tactic
from .text import LeanData, LeanDialect, LeanSketches, proof_body, statement_by

log = logging.getLogger(__name__)

__all__ = [
    "Lean4Backend",
    "Lean4Settings",
    "classify_tactic_reply",
    "judge_proof_command",
    "parse_axioms",
    "proof_body",
]

_DECL_NAME_RE = re.compile(
    r"^\s*(?:@\[[^\]]*\]\s*)?(?:private\s+|protected\s+)?(?:theorem|lemma|def)\s+([^\s:({\[⦃]+)", re.MULTILINE
)


@dataclass(frozen=True)
class Lean4Settings:
    """Process and timing policy of the Lean 4 backend (built from ``ProverConfig``)."""

    #: ``--lean-repl PATH``: a Lake project directory or a REPL binary (None: ``lean_project/``)
    executable: str | None = None
    #: the project used when ``executable`` is None (None: this checkout's ``lean_project/``)
    default_project: str | None = None
    #: an explicit command line, bypassing discovery (tests: the replay REPL)
    command: tuple[str, ...] = ()
    command_cwd: str | None = None
    #: the re-check's kernel layer (``kernel.py``): ``lean`` and ``leanchecker`` command lines, run in
    #: ``command_cwd``; empty: found beside the REPL (``lake env lean``/``lake env leanchecker`` in its
    #: project, else on PATH). With an explicit ``command`` and none of these, nothing is verified.
    lean_command: tuple[str, ...] = ()
    leanchecker_command: tuple[str, ...] = ()
    tactic_timeout: float = LEAN_TACTIC_TIMEOUT
    #: starting a theorem (the ``by sorry`` command); importing the header is ``pool.start_timeout``
    start_timeout: float = 120.0
    #: each request of the re-check (compile, pickle, unpickle, statement check, axioms)
    check_timeout: float = 300.0
    max_restarts: int = 25
    pool: PoolPolicy = field(default_factory=PoolPolicy)
    process: ProcessPolicy = field(default_factory=ProcessPolicy)

    @classmethod
    def from_prover_config(cls, cfg: ProverConfig) -> Lean4Settings:
        """Every limit ``cfg`` names is taken as it is (no hidden minimum): ``start_timeout`` for the
        header import and the theorem start, ``memory_limit_mb`` as the resident-memory kill cap,
        ``recycle_rss_mb``, timeouts, restarts, recycling and the executable. A Mathlib REPL needs
        more than coqtop (tens of seconds and several GiB for ``import Mathlib``): those limits are the
        defaults of ``Lean4Backend.default_config()``, which the CLI starts from.
        """
        base = cls()
        proc = replace(base.process, rss_kill_mb=cfg.memory_limit_mb)
        pool = replace(
            base.pool,
            start_timeout=cfg.start_timeout,
            recycle_after=cfg.recycle_after,
            recycle_rss_mb=cfg.recycle_rss_mb,
            warm_spare=cfg.warm_spare,
        )
        return cls(
            executable=cfg.executable,
            tactic_timeout=cfg.tactic_timeout,
            start_timeout=cfg.start_timeout,
            check_timeout=cfg.check_timeout,
            max_restarts=cfg.max_restarts,
            pool=pool,
            process=proc,
        )


@dataclass
class _Node:
    parent: int | None
    tactic: str | None
    goals: tuple[str, ...]
    finished: bool = False
    #: (generation, REPL proofState id) where this state currently lives
    generation: int = -1
    repl_id: int = -1


def declared_name(statement: str, fallback: str) -> str:
    m = _DECL_NAME_RE.search(statement)
    return m.group(1) if m else fallback


def classify_tactic_reply(reply: TacticResponse | ReplError, elapsed: float) -> StepResult | None:
    """A reply to a tactic request as a step outcome; None means ``Advanced`` (caller assigns the id).

    Raises ``ProverDesync`` for replies that mean the client, not the tactic, is wrong.
    """
    if isinstance(reply, ReplError):
        if reply.unknown_id:
            raise ProverDesync(f"REPL does not know the state we sent: {reply.message}", backend=BACKEND)
        return TacticError(reply.message.strip(), elapsed)
    if reply.errors:
        return TacticError("\n".join(m.data for m in reply.errors), elapsed)
    if reply.sorries:
        return TacticError("tactic left a sorry: " + "; ".join(s.goal for s in reply.sorries), elapsed)
    if reply.proof_status is None:
        raise ProverDesync(
            "REPL reply has no 'proofStatus': this REPL is too old to check proofs; "
            "use lean_project/ (REPL tag v4.32.0)",
            backend=BACKEND,
        )
    if reply.proof_status == COMPLETED:
        return ProofFinished(-1, elapsed)
    if reply.proof_status == OPEN_GOALS and reply.goals:
        return None
    return TacticError(
        f"no proof: proofStatus {reply.proof_status!r} with {len(reply.goals)} goal(s)", elapsed
    )


def repl_sandbox(config: ProverConfig, process: ProcessPolicy) -> Sandbox:
    """``sandbox_for(config)`` with the REPL's limits (see ``Lean4Backend.sandbox``)."""
    limits = Limits(address_space_mb=process.address_space_mb, cpu_seconds=0, file_size_mb=1024, open_files=0)
    return replace(sandbox_for(config), limits=limits)


class Lean4Setup(ProverSetup):
    """The Lean 4 REPL's process policy (``Lean4Settings``) and preflight (a built REPL)."""

    executable_flag: ClassVar[str | None] = "--lean-repl"

    def default_config(self) -> ProverConfig:
        """A Mathlib REPL's limits (``PoolPolicy``/``ProcessPolicy`` defaults): the header import's start
        timeout, the resident-memory kill cap and the recycling size."""
        pool, proc = PoolPolicy(), ProcessPolicy()
        return ProverConfig(tactic_timeout=LEAN_TACTIC_TIMEOUT, start_timeout=pool.start_timeout,
                            memory_limit_mb=proc.rss_kill_mb, recycle_rss_mb=pool.recycle_rss_mb)

    def preflight(self, config: ProverConfig) -> None:
        resolve_repl(config.executable)  # raises ProverUnavailable saying how to build the REPL

    def effective_settings(self, config: ProverConfig) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(Lean4Settings.from_prover_config(config))

    def sandbox_description(self, config: ProverConfig) -> dict[str, object]:
        return repl_sandbox(config, Lean4Settings.from_prover_config(config).process).describe()


@register_backend("lean4")
class Lean4Backend(ProverBackend):
    """Lean 4 through the community REPL (``lean_project/``)."""

    dialect = LeanDialect("lean4")
    sketches = LeanSketches("lean4")
    data = LeanData("lean4")
    setup = Lean4Setup("lean4")

    def __init__(self, config: ProverConfig, settings: Lean4Settings | None = None) -> None:
        super().__init__(config)
        self.settings = settings or Lean4Settings.from_prover_config(config)
        self._command: ReplCommand | None = None
        self._sandbox: Sandbox | None = None
        self._pool: ReplPool | None = None
        self._session: ReplSession | None = None
        self._theorem: Theorem | None = None
        self._nodes: list[_Node] = []
        self._restarts = 0
        self._stats = {
            "restarts_total": 0.0,
            "replayed_tactics": 0.0,
            "timeouts": 0.0,
            "rejected": 0.0,
            "requests": 0.0,
        }

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._pool is not None:
            return
        s = self.settings
        if s.command:
            self._command = ReplCommand(tuple(s.command), s.command_cwd, "explicit command")
        else:
            proj = Path(s.default_project) if s.default_project else None
            self._command = resolve_repl(s.executable, proj)
        log.info(
            "Lean REPL: %s (cwd %s; %s)", " ".join(self._command.argv), self._command.cwd, self._command.how
        )
        self._pool = ReplPool(self._launch, s.pool)

    def close(self) -> None:
        try:
            if self._pool is not None:
                self._pool.close()
        finally:
            self._pool = None
            self._session = None

    @property
    def sandbox(self) -> Sandbox:
        """What every REPL process runs under: ``sandbox_for(config)`` (network isolation as probed,
        scrubbed environment, no core dumps) with Lean-sized limits: ``ProcessPolicy.address_space_mb``
        (a backstop: Mathlib maps GiBs of .olean files; the working cap is the polled RSS), 1 GiB per
        file, open files and CPU seconds left to the process policy (a warm REPL is long-lived; each
        request has its own deadline). Probed on first use."""
        if self._sandbox is None:
            self._sandbox = repl_sandbox(self.config, self.settings.process)
        return self._sandbox

    def _launch(self, generation: int) -> ReplProcess:
        assert self._command is not None
        sandbox = self.sandbox
        extra = {
            k: os.environ[k]
            for k in ("HOME", "ELAN_HOME", "LEAN_PATH", "LEAN_SYSROOT", "PYTHONPATH")
            if k in os.environ
        }
        return ReplProcess(
            self._command.argv,
            cwd=self._command.cwd,
            env=sandbox.env(extra=extra),
            policy=self.settings.process,
            sandbox=sandbox,
            generation=generation,
        )

    @property
    def restarts(self) -> int:
        return self._restarts

    def stats(self) -> dict[str, float]:
        out = dict(self._stats)
        if self._pool is not None:
            out.update({f"pool_{k}": float(v) for k, v in self._pool.describe().items()})
        return out

    # -- sessions ---------------------------------------------------------------------------------
    def _pool_(self) -> ReplPool:
        if self._pool is None:
            self.start()
        assert self._pool is not None
        return self._pool

    def _ensure_session(self, header: str) -> ReplSession:
        if self._session is not None and self._session.header != header:
            self._pool_().release(self._session)
            self._session = None
        if self._session is None or not self._session.process.alive():
            if self._session is not None:
                self._drop_session("process exited")
            self._session = self._pool_().acquire(header)
        return self._session

    def _drop_session(self, why: str) -> None:
        if self._session is not None:
            log.warning("replacing Lean REPL (process group %s): %s", self._session.process.pgid, why)
            self._pool_().discard(self._session)
            self._session = None
            self._restarts += 1
            self._stats["restarts_total"] += 1
            if self._restarts > self.settings.max_restarts:
                raise RestartLimitExceeded(
                    f"{self._restarts} REPL restarts for one theorem (max {self.settings.max_restarts})",
                    backend=BACKEND,
                )

    def _parse_tactic(self, raw: dict[str, object]) -> TacticResponse | ReplError:
        try:
            return parse_tactic_response(raw)
        except ProtocolError as exc:
            self._drop_session(f"malformed reply: {exc}")
            raise ProverDesync(f"malformed tactic reply: {exc}", backend=BACKEND) from exc

    def _parse_command(self, raw: dict[str, object]) -> CommandResponse | ReplError:
        try:
            return parse_command_response(raw)
        except ProtocolError as exc:
            self._drop_session(f"malformed reply: {exc}")
            raise ProverDesync(f"malformed command reply: {exc}", backend=BACKEND) from exc

    def _request(self, session: ReplSession, req: dict[str, object], timeout: float) -> dict[str, object]:
        self._stats["requests"] += 1
        try:
            return session.process.request(req, timeout)
        except ProverError as exc:
            # the process is already dead (ReplProcess kills on every failure)
            if self._session is session:
                self._drop_session(f"{type(exc).__name__}: {exc}")
            raise

    # -- proving ----------------------------------------------------------------------------------
    def start_theorem(self, theorem: Theorem) -> RootState:
        t0 = time.monotonic()
        self._theorem = theorem
        self._restarts = 0
        self._nodes = []
        cmd = statement_by(theorem.statement, " sorry")
        last: ProverError | None = None
        for _attempt in range(2):
            session = self._ensure_session(theorem.header)
            try:
                ps, goals = self._start_command(session, cmd)
            except (ProverCrashed, ProverDesync, ProverHung, ReplTimeout) as exc:
                last = exc
                continue
            self._nodes = [_Node(None, None, goals, generation=session.generation, repl_id=ps)]
            return RootState(0, goals, time.monotonic() - t0)
        assert last is not None
        raise ProverStartError(
            f"could not start {theorem.name}: {last}",
            backend=BACKEND,
            elapsed=time.monotonic() - t0,
            output_tail=last.output_tail,
        ) from last

    def _start_command(self, session: ReplSession, cmd: str) -> tuple[int, tuple[str, ...]]:
        reply = self._parse_command(
            self._request(session, command_request(cmd, session.header_env), self.settings.start_timeout)
        )
        if isinstance(reply, ReplError):
            if reply.unknown_id:
                self._drop_session(reply.message)
                raise ProverDesync(reply.message, backend=BACKEND)
            raise ProverStartError(f"statement rejected: {reply.message}", backend=BACKEND)
        assert isinstance(reply, CommandResponse)
        if reply.errors:
            raise ProverStartError(
                "statement does not elaborate: " + "; ".join(m.data for m in reply.errors), backend=BACKEND
            )
        if len(reply.sorries) != 1 or reply.sorries[0].proof_state is None:
            raise ProverStartError(
                f"expected exactly one sorry with a proof state, got {len(reply.sorries)}", backend=BACKEND
            )
        return reply.sorries[0].proof_state, (reply.sorries[0].goal,)

    def apply(self, state_id: int, tactic: str) -> StepResult:
        if self._theorem is None:
            raise ProverError("apply() before start_theorem()", backend=BACKEND)
        if not 0 <= state_id < len(self._nodes):
            raise KeyError(f"unknown state id {state_id}")
        node = self._nodes[state_id]
        if node.finished:
            return TacticError("the proof is already finished in this state", 0.0, rejected=True)
        why = check_tactic(tactic)
        if why is not None:
            self._stats["rejected"] += 1
            return TacticError(f"rejected: {why}", 0.0, rejected=True)
        session, repl_id = self._materialize(state_id)
        t0 = time.monotonic()
        try:
            raw = self._request(session, tactic_request(tactic, repl_id), self.settings.tactic_timeout)
        except ReplTimeout:
            self._stats["timeouts"] += 1
            return TacticTimeout(self.settings.tactic_timeout, time.monotonic() - t0)
        elapsed = time.monotonic() - t0
        reply = self._parse_tactic(raw)
        try:
            outcome = classify_tactic_reply(reply, elapsed)
        except ProverDesync:
            self._drop_session("desync")
            raise
        if isinstance(outcome, TacticError):
            self._maybe_recycle()
            return outcome
        assert isinstance(reply, TacticResponse)
        new = _Node(
            state_id,
            tactic,
            reply.goals,
            finished=isinstance(outcome, ProofFinished),
            generation=session.generation,
            repl_id=reply.proof_state,
        )
        self._nodes.append(new)
        new_id = len(self._nodes) - 1
        self._maybe_recycle()
        if isinstance(outcome, ProofFinished):
            return ProofFinished(new_id, elapsed)
        return Advanced(new_id, reply.goals, elapsed)

    def _maybe_recycle(self) -> None:
        s = self._session
        if s is None:
            return
        why = s.due_for_recycling(self.settings.pool)
        if why:
            log.info("recycling Lean REPL pid %s: %s (states are restored by replay)", s.process.pid, why)
            self._pool_().release(s)  # release kills it: it is due
            self._session = None

    def _materialize(self, state_id: int) -> tuple[ReplSession, int]:
        """The live session and the REPL id of ``state_id`` there, replaying its path if needed."""
        assert self._theorem is not None
        session = self._ensure_session(self._theorem.header)
        node = self._nodes[state_id]
        if node.generation == session.generation:
            return session, node.repl_id
        path: list[int] = []
        i: int | None = state_id
        while i is not None and self._nodes[i].generation != session.generation:
            path.append(i)
            i = self._nodes[i].parent
        for j in reversed(path):
            n = self._nodes[j]
            if n.parent is None:
                cmd = statement_by(self._theorem.statement, " sorry")
                try:
                    ps, goals = self._start_command(session, cmd)
                except ReplTimeout as exc:
                    raise ProverHung(f"restoring the root state timed out: {exc}", backend=BACKEND) from exc
                if goals != n.goals:
                    self._drop_session("root goals differ after restart")
                    raise ProverDesync("root goals differ after restart", backend=BACKEND)
                n.generation, n.repl_id = session.generation, ps
                continue
            parent = self._nodes[n.parent]
            assert n.tactic is not None
            try:
                raw = self._request(
                    session, tactic_request(n.tactic, parent.repl_id), self.settings.tactic_timeout
                )
            except ReplTimeout as exc:
                raise ProverHung(
                    f"replaying {n.tactic!r} timed out after a restart", backend=BACKEND
                ) from exc
            self._stats["replayed_tactics"] += 1
            reply = self._parse_tactic(raw)
            outcome = classify_tactic_reply(reply, 0.0)
            ok = isinstance(reply, TacticResponse) and (
                (outcome is None and reply.goals == n.goals)
                or (isinstance(outcome, ProofFinished) and n.finished)
            )
            if not ok:
                self._drop_session(f"replay of {n.tactic!r} gave a different result")
                raise ProverDesync(
                    f"replaying {n.tactic!r} after a restart gave a different result", backend=BACKEND
                )
            assert isinstance(reply, TacticResponse)
            n.generation, n.repl_id = session.generation, reply.proof_state
        return session, node.repl_id

    # -- checking ---------------------------------------------------------------------------------
    def kernel_tools(self) -> KernelTools | None:
        """``lean`` and ``leanchecker`` for the kernel layer of the re-check (None: not found)."""
        s = self.settings
        if s.lean_command and s.leanchecker_command:
            return KernelTools(tuple(s.lean_command), tuple(s.leanchecker_command), s.command_cwd)
        if s.command:
            return None  # an explicit REPL command says nothing about where Lean is
        self.start()
        assert self._command is not None
        return kernel_tools_for(self._command.argv, self._command.cwd)

    def _kernel_check(self, text: str) -> str | None:
        tools = self.kernel_tools()
        if tools is None:
            return "not verified: no lean and leanchecker found beside the REPL (see docs/lean4.md)"
        return kernel_replay(tools, text, sandbox=self.sandbox, timeout=self.settings.check_timeout)

    def check(self, theorem: Theorem, proof: Sequence[str]) -> CheckResult:
        t0 = time.monotonic()

        def result(
            ok: bool, message: str = "", axioms: tuple[str, ...] = (), bad: tuple[str, ...] = ()
        ) -> CheckResult:
            return CheckResult(
                ok=ok,
                checker="lean4-repl",
                elapsed=time.monotonic() - t0,
                message=message,
                axioms=axioms,
                bad_axioms=bad,
            )

        if not proof:
            return result(False, "empty proof")
        for tac in proof:
            why = check_tactic(tac)
            if why is not None:
                return result(False, f"rejected tactic {tac!r}: {why}")
        try:
            cmd = statement_by(theorem.statement, proof_body(proof))
        except ProverStartError as exc:
            return result(False, str(exc))
        name = declared_name(theorem.statement, theorem.name)
        verdict = audit_proof(
            self._pool_().fresh,
            header=theorem.header,
            statement=theorem.statement,
            name=name,
            proof_command=cmd,
            timeout=self.settings.check_timeout,
            kernel=self._kernel_check,
        )
        return result(verdict.ok, verdict.message, verdict.axioms, verdict.bad_axioms)
