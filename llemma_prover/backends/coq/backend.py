"""The Coq backend: ``coqidetop`` (Coq's XML protocol) driven through ``ide.IdeTop``, re-checked by ``coqc``.

Why coqidetop (issue 10, points 1 and 2). ``coqtop -emacs`` prints a tactic's messages unescaped next
to its prompts and goals, so ``idtac`` could print a fake prompt, fake goals or ``No more goals.``,
and our own lexer had to decide where a sentence ended. Over coqidetop every decision comes from a
protocol field that printed text cannot reach (see ``ide.py``): state ids from ``Add``/``Edit_at``,
goals from the structured ``Goal`` answer, failures from ``<value val="fail">``. SerAPI is not
packaged in Debian; coqidetop ships with Coq 8.16.1.

Layout (each module one job; this one is the thin ``ProverBackend`` facade over them):

* ``ide`` -- the XML protocol: one coqidetop process, typed answers, output caps, deadlines;
* ``pool`` -- the processes: start, header, statement, reuse per header, warm spare, recycling, and
  the restart policy (*one bad candidate costs one candidate*; only infrastructure failures count
  against ``max_restarts``);
* ``states`` -- the search's state ids, their paths, and goal text built from Coq's goal records;
* ``step`` -- one step: restore a state by ``Edit_at`` + replay, then the candidate (Coq's parse
  check, ``Add`` + ``Goal`` under ``Timeout``, structured goals, kernel ``Qed`` for a finished proof);
* ``settings`` -- timeouts and counters; ``sentences`` -- the first filter (``validate_tactic``);
  ``header`` -- header preparation; ``recheck`` -- the final check; ``automation`` -- what the
  installed automation offers.

A model tactic goes: ``validate_tactic`` (cheap first filter whose lexer follows Coq's; a refusal is a
``TacticError`` with ``rejected=True`` that never reaches Coq), then ``step.Stepper`` (see there).

Re-check. ``check`` delegates to ``recheck.Rechecker``: the proof file is compiled by ``coqc``, the
compiled library is audited by ``coqchk -o`` (axioms by full kernel name against those of the header
alone; type-in-type, unsafe fixpoints, assumed positivity) and its theorem is shown, by proof-free
files, to be exactly the original statement in the original header environment. Nothing the
model's text prints is read (see ``recheck.py``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence

from ...core.config import ProverConfig
from ...core.errors import ProverDesync, ProverError, ProverUnavailable
from ...core.types import CheckResult, RootState, StepResult, TacticError, Theorem
from ..base import ProverBackend, register_backend
from ..parts import ProverSetup
from ..process import ProcessError
from ..sandbox import Sandbox, sandbox_for
from .facts_cache import FactsCache, default_cache_dir
from .header import theorem_header
from .ide import MAX_ANSWER_CHARS, IdeTop, ide_executable_for
from .pool import SessionPool
from .recheck import BatchItem, Rechecker, final_tactics, theorem_name
from .sentences import InvalidTactic, validate_tactic
from .settings import reset_counters, sibling_tool, time_policy
from .states import StateTree
from .step import CandidateFailed, Stepper
from .text import CoqData, CoqDialect, CoqSketches

__all__ = ["CoqBackend", "CoqSetup"]


class CoqSetup(ProverSetup):
    """Coq's process policy: ``ProverConfig()``, with the deadlines derived from it recorded."""

    def hammer_installed(self) -> bool | None:
        """CoqHammer's tactics library (``sauto``/``hauto``; Debian ``libcoq-hammer``)."""
        from .automation import hammer_tactics_installed

        return hammer_tactics_installed()

    def effective_settings(self, config: ProverConfig) -> dict[str, object]:
        """``config`` and the deadlines the backend derives from it (``settings.time_policy``)."""
        return {**super().effective_settings(config), "time_policy": time_policy(config)}


@register_backend("coq")
class CoqBackend(ProverBackend):
    """Coq 8.16 through ``coqidetop``; see the module docstring for the layout and ``step``/``pool``
    for the protocol and policies."""

    dialect = CoqDialect("coq")
    sketches = CoqSketches("coq")
    data = CoqData("coq")
    setup = CoqSetup("coq")

    #: characters of XML one answer of a process may take (a tactic that prints more fails)
    max_answer_chars: int = MAX_ANSWER_CHARS

    def __init__(self, config: ProverConfig) -> None:
        super().__init__(config)
        self._executable = config.executable or "coqtop"
        self._ide_executable = ide_executable_for(self._executable)
        self._theorem: Theorem | None = None
        self._header = ""
        #: the counters of ``stats()``, shared (one dict, reset in place) by the pool and the stepper
        self._stats: dict[str, float] = {}
        reset_counters(self._stats)
        self._states = StateTree()
        self._pool = SessionPool(config, self._launch, self._ide_executable, self._stats)
        self._steps = Stepper(config, self._states, self._pool, self._stats)
        #: the final check (caches what each header brings in); built on first use
        self._rechecker: Rechecker | None = None
        #: confinement of every coqidetop/coqc/coqchk this backend starts (probed once, on first use)
        self._sandbox: Sandbox | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        for exe in (self._executable, self._ide_executable):
            if shutil.which(exe) is None:
                raise ProverUnavailable(
                    f"{exe!r} not found; install Coq 8.16 (Debian: apt-get install coq)", backend="coq"
                )

    def close(self) -> None:
        try:
            self._pool.close()
        finally:
            if self._rechecker is not None:
                self._rechecker.close()

    def _launch(self, header: str) -> IdeTop:
        """The (not yet started) coqidetop for ``header``, in this backend's sandbox."""
        self.start()  # ProverUnavailable when Coq is missing (the sandbox wrapper would hide it)
        return IdeTop.create(
            self._ide_executable,
            header=header,
            sandbox=self.sandbox,
            memory_limit_mb=self.config.memory_limit_mb,
            max_answer_chars=self.max_answer_chars,
        )

    @property
    def restarts(self) -> int:
        return self._pool.restarts

    def stats(self) -> dict[str, float]:
        return dict(self._stats, restarts=float(self._pool.restarts))

    # -- theorem -----------------------------------------------------------------------------
    def start_theorem(self, theorem: Theorem) -> RootState:
        """Open ``theorem``. A live coqidetop with the same header is reused (``Edit_at`` the state
        after the header, then the new statement); otherwise the spare or a new process loads it."""
        t0 = time.monotonic()
        self._theorem = theorem
        self._header = theorem_header(theorem.header, theorem.footer)
        self._states.reset()
        self._pool.restarts = 0
        reset_counters(self._stats)
        top = self._pool.current(self._header, theorem.statement)
        if len(top.stack) > 1:  # the same theorem was open: back to its root
            try:
                self._steps.truncate(top, 1)
            except (ProcessError, ProverError):
                self._pool.discard_top()
                top = self._pool.current(self._header, theorem.statement)
        self._states.goals[0] = top.root_goals
        return RootState(state_id=0, goals=top.root_goals, elapsed=time.monotonic() - t0)

    def apply(self, state_id: int, tactic: str) -> StepResult:
        if self._theorem is None:
            raise ProverDesync("apply() before start_theorem()", backend="coq")
        if not self._states.known(state_id):
            raise KeyError(f"unknown state id {state_id}")
        t0 = time.monotonic()
        try:
            sentence = validate_tactic(tactic)
        except InvalidTactic as exc:
            self._stats["rejected"] += 1
            return TacticError(message=f"rejected: {exc}", elapsed=time.monotonic() - t0, rejected=True)
        top = self._pool.for_step(self._header, self._theorem.statement)
        self._steps.restore_or_raise(top, state_id, t0)
        try:
            return self._steps.run_candidate(top, state_id, sentence)
        except CandidateFailed as exc:
            # one bad candidate costs one candidate: the process is replaced, no restart is counted
            self._pool.discard_top()
            self._stats["candidate_crashes"] += 1
            return TacticError(message=f"prover failed on this tactic: {exc}", elapsed=time.monotonic() - t0)

    def tactics_to(self, state_id: int) -> list[str]:
        """The tactic path (validated sentences) from the root to ``state_id``."""
        return self._states.tactics_to(state_id)

    # -- independent re-check ----------------------------------------------------------------
    def check(
        self, theorem: Theorem, proof: Sequence[str], *, audit_header: str | None = None
    ) -> CheckResult:
        """The final check (``recheck.Rechecker.check``) of the tactics ``proof_text`` writes.
        ``audit_header`` (raw, like ``theorem.header``) is the header whose axioms are allowed, when
        it is not the theorem's own."""
        t0 = time.monotonic()
        try:
            tactics = final_tactics(proof)
        except InvalidTactic as exc:
            return CheckResult(
                ok=False, checker="coqchk", elapsed=time.monotonic() - t0, message=f"rejected: {exc}"
            )
        return self.rechecker.check(
            header=theorem_header(theorem.header, theorem.footer),
            statement=theorem.statement,
            tactics=tactics,
            name=theorem_name(theorem.statement) or theorem.name,
            timeout=self.config.check_timeout,
            audit_header=None if audit_header is None else theorem_header(audit_header, theorem.footer),
            started=t0,
            footer=theorem.footer,
        )

    def check_audited(self, theorem: Theorem, proof: Sequence[str], audit_header: str) -> CheckResult:
        return self.check(theorem, proof, audit_header=audit_header)

    batched_check = True

    def check_many(self, proofs: Sequence[tuple[Theorem, Sequence[str]]]) -> list[CheckResult]:
        """``Rechecker.check_batch`` on the proofs of theorems without a footer (one deadline of
        ``check_timeout`` per proof for the whole batch: each keeps its own budget), ``check`` on the
        others. Same verdicts as ``check`` one by one (a batch that fails is decided proof by proof)."""
        t0 = time.monotonic()
        out: list[CheckResult | None] = [None] * len(proofs)
        batch: list[tuple[int, BatchItem]] = []
        for i, (theorem, proof) in enumerate(proofs):
            if theorem.footer.strip():
                continue
            try:
                tactics = final_tactics(proof)
            except InvalidTactic as exc:
                out[i] = CheckResult(ok=False, checker="coqchk", elapsed=time.monotonic() - t0,
                                     message=f"rejected: {exc}")
                continue
            batch.append((i, BatchItem(header=theorem_header(theorem.header, theorem.footer),
                                       statement=theorem.statement, tactics=tuple(tactics),
                                       name=theorem_name(theorem.statement) or theorem.name)))
        if batch:
            verdicts = self.rechecker.check_batch([it for _, it in batch],
                                                  timeout=self.config.check_timeout * len(batch))
            for (i, _), verdict in zip(batch, verdicts, strict=True):
                out[i] = verdict
        return [r if r is not None else self.check(*proofs[i]) for i, r in enumerate(out)]

    def prepare_check(self, theorem: Theorem) -> None:
        """The facts of the theorem's header (allowed axioms, objects: ``Rechecker.prefetch``), which
        every batch check of its proofs needs first."""
        if not theorem.footer.strip():
            self.rechecker.prefetch(theorem_header(theorem.header, theorem.footer),
                                    time.monotonic() + self.config.check_timeout)

    @property
    def rechecker(self) -> Rechecker:
        if self._rechecker is None:
            self._rechecker = Rechecker(
                sandbox=self.sandbox,
                coqc=sibling_tool(self._executable, "coqc"),
                coqchk=sibling_tool(self._executable, "coqchk"),
                coqidetop=ide_executable_for(self._executable),
                memory_limit_mb=self.config.memory_limit_mb,
                facts_cache=FactsCache(default_cache_dir(), coqc=sibling_tool(self._executable, "coqc")),
            )
        return self._rechecker

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox of this backend's processes (``ProverConfig.sandbox``; probed on first use)."""
        if self._sandbox is None:
            self._sandbox = sandbox_for(self.config)
        return self._sandbox
