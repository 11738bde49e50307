"""Draft, Sketch, Prove for one theorem, and for a whole split (run directory, resume, workers).

For each problem: the drafter writes up to ``samples`` sketches; each is parsed (untrusted text: a
refused sketch never reaches the prover), its holes are filled by automation (``fill.py``) and the
filled proof is re-checked from scratch by the backend's ``check`` -- exactly the re-check ``prove``
uses (Coq: ``coqc`` + ``Print Assumptions`` with the allowed-axiom audit). A problem counts as proved
when at least one sample passes the check. The record (``TheoremRecord``) keeps, per sample, the sketch,
what closed each hole (or every attempt and why not), the final proof, the check and timings, under
``extra["dsp"]``; the summary adds pass@1 (mean fraction of correct samples) and pass@n.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.base import ProverBackend, make_backend
from ..core.errors import LlemmaProverError, ProverError, ProverUnavailable
from ..core.records import TheoremRecord
from ..core.types import CheckResult, Reason, Status, Theorem, TimeSplit
from .automation import COQ_HAMMER_IMPORT
from .config import AutoformalizeConfig, HolePolicy
from .drafter import Draft
from .fill import FillResult, HoleFiller, IsabelleFiller, StepwiseFiller
from .sketch import Sketch, SketchError, parse_sketch

log = logging.getLogger(__name__)

PROOF_EXT = {"coq": "v", "lean4": "lean", "leandojo": "lean", "isabelle": "thy"}


def make_filler(backend_name: str, backend: ProverBackend, policy: HolePolicy) -> HoleFiller:
    if backend_name == "isabelle":
        return IsabelleFiller(backend, policy)
    if backend_name in ("lean4", "leandojo"):
        from .automation import lean_hole_tactics

        tactics = lean_hole_tactics()
        return StepwiseFiller(backend, policy, tactics_for=lambda step, goals: list(tactics))
    return StepwiseFiller(backend, policy)


def prepare_theorem(theorem: Theorem, backend_name: str, policy: HolePolicy) -> Theorem:
    """The theorem as the backend gets it: with CoqHammer's tactics loaded when they are enabled."""
    if backend_name == "coq" and policy.use_hammer and COQ_HAMMER_IMPORT not in theorem.header:
        return dataclasses.replace(theorem, header=COQ_HAMMER_IMPORT + theorem.header)
    return theorem


@dataclass(frozen=True)
class SampleOutcome:
    index: int
    sketch: str
    score: float
    #: parse_error | step_failed | hole_unclosed | incomplete | time_budget | check_failed | proved |
    #: prover_error | duplicate
    status: str
    message: str = ""
    fill: FillResult | None = None
    check: CheckResult | None = None
    model_time: float = 0.0
    prover_time: float = 0.0
    check_time: float = 0.0
    duplicate_of: int | None = None

    @property
    def proved(self) -> bool:
        return self.status == "proved"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "sketch": self.sketch,
            "score": self.score,
            "status": self.status,
            "message": self.message,
            "holes": [dataclasses.asdict(h) for h in self.fill.holes] if self.fill else [],
            "proof": list(self.fill.proof) if self.fill and self.fill.proof else None,
            "check": dataclasses.asdict(self.check) if self.check else None,
            "time": {
                "model": round(self.model_time, 4),
                "prover": round(self.prover_time, 4),
                "check": round(self.check_time, 4),
            },
        }
        if self.duplicate_of is not None:
            d["duplicate_of"] = self.duplicate_of
        return d


@dataclass(frozen=True)
class TheoremOutcome:
    record: TheoremRecord
    proof_text: str | None


def check_filled(
    backend_name: str,
    backend: ProverBackend,
    theorem: Theorem,
    original: Theorem | None,
    proof: Sequence[str],
) -> CheckResult:
    """The independent whole-proof check, as ``prove`` does it (``backend.check``).

    When automation needed an extra import (CoqHammer's tactics, see ``prepare_theorem``), the file
    compiled is the one with that import, but its axioms are judged against the *original* header: a
    proof may depend only on axioms the problem's own header brings in.
    """
    if backend_name != "coq" or original is None or original.header == theorem.header:
        return backend.check(theorem, proof)
    from ..backends.coq.axioms import check_source, theorem_name
    from ..backends.coq.header import prepare_header
    from ..backends.coq.sentences import InvalidTactic

    t0 = time.monotonic()
    try:
        text = backend.proof_text(theorem, proof)
    except InvalidTactic as exc:
        return CheckResult(
            ok=False, checker="coqc", elapsed=time.monotonic() - t0, message=f"rejected: {exc}"
        )
    cfg = getattr(backend, "config", None)
    return check_source(
        text,
        name=theorem_name(theorem.statement) or theorem.name,
        header=prepare_header(original.header),
        timeout=cfg.check_timeout if cfg is not None else 300.0,
        memory_limit_mb=cfg.memory_limit_mb if cfg is not None else 0,
        coqc=(cfg.executable or "coqtop").removesuffix("coqtop") + "coqc" if cfg is not None else "coqc",
        started=t0,
    )


def run_sample(
    index: int,
    draft: Draft,
    theorem: Theorem,
    backend_name: str,
    backend: ProverBackend,
    filler: HoleFiller,
    deadline: float,
    original: Theorem | None = None,
) -> SampleOutcome:
    parsed = parse_sketch(backend_name, draft.text)
    if isinstance(parsed, SketchError):
        return SampleOutcome(
            index, draft.text, draft.score, "parse_error", parsed.message, model_time=draft.model_time
        )
    assert isinstance(parsed, Sketch)
    t0 = time.monotonic()
    try:
        fill = filler.fill(theorem, parsed, deadline)
    except ProverError as exc:
        return SampleOutcome(
            index,
            draft.text,
            draft.score,
            "prover_error",
            str(exc)[:500],
            model_time=draft.model_time,
            prover_time=time.monotonic() - t0,
        )
    if not fill.filled:
        return SampleOutcome(
            index,
            draft.text,
            draft.score,
            fill.status,
            fill.message,
            fill,
            model_time=draft.model_time,
            prover_time=fill.prover_time,
        )
    assert fill.proof is not None
    tc = time.monotonic()
    check = check_filled(backend_name, backend, theorem, original, fill.proof)
    check_time = time.monotonic() - tc
    status = "proved" if check.ok else "check_failed"
    return SampleOutcome(
        index,
        draft.text,
        draft.score,
        status,
        "" if check.ok else check.message,
        fill,
        check,
        model_time=draft.model_time,
        prover_time=fill.prover_time,
        check_time=check_time,
    )


def autoformalize_theorem(
    theorem: Theorem,
    drafts: Sequence[Draft],
    backend_name: str,
    backend: ProverBackend,
    policy: HolePolicy,
    drafter_name: str,
    samples: int,
    model_time: float = 0.0,
    split: str | None = None,
) -> TheoremOutcome:
    """Fill and check every draft of ``theorem``; the record and the proof file text (if proved).

    ``split`` is the name the record carries (``minif2f-test``; default: the theorem's own split)."""
    t0 = time.monotonic()
    thm = prepare_theorem(theorem, backend_name, policy)
    filler = make_filler(backend_name, backend, policy)
    deadline = t0 + policy.theorem_time_limit
    outcomes: list[SampleOutcome] = []
    seen: dict[str, int] = {}
    restarts = 0
    for i, d in enumerate(drafts):
        key = " ".join(d.text.split())
        if key in seen:
            prev = outcomes[seen[key]]
            outcomes.append(
                dataclasses.replace(
                    prev,
                    index=i,
                    score=d.score,
                    model_time=d.model_time,
                    prover_time=0.0,
                    check_time=0.0,
                    duplicate_of=prev.index,
                )
            )
            continue
        seen[key] = i
        if time.monotonic() > deadline:
            outcomes.append(
                SampleOutcome(
                    i, d.text, d.score, "time_budget", "theorem time budget reached", model_time=d.model_time
                )
            )
            continue
        out = run_sample(i, d, thm, backend_name, backend, filler, deadline, theorem)
        restarts += backend.restarts
        if out.status == "prover_error" and time.monotonic() < deadline:
            # the backend has replaced its broken process; one more try before the sample counts as lost
            log.warning("%s sample %d: prover error, retrying once: %s", theorem.name, i, out.message[:200])
            out = run_sample(i, d, thm, backend_name, backend, filler, deadline, theorem)
            restarts += backend.restarts + 1
        outcomes.append(out)
        log.debug("%s sample %d: %s %s", theorem.name, i, out.status, out.message[:120])
    n = len(drafts) if drafts else samples
    correct = sum(1 for o in outcomes if o.proved)
    best = next((o for o in outcomes if o.proved), None)
    statuses = {o.status for o in outcomes}
    if best is not None:
        status, reason = Status.PROVED, Reason.PROVED
    elif "prover_error" in statuses and not statuses & {"check_failed"}:
        status, reason = Status.FAILED, Reason.PROVER_CRASH
    elif "check_failed" in statuses:
        status, reason = Status.FAILED, Reason.CHECK_FAILED
    elif "time_budget" in statuses:
        status, reason = Status.FAILED, Reason.TIME_BUDGET
    else:
        status, reason = Status.FAILED, Reason.SEARCH_EXHAUSTED
    proof = best.fill.proof if best and best.fill else None
    check = best.check if best else next((o.check for o in outcomes if o.check is not None), None)
    proof_text = backend.proof_text(thm, proof) if proof is not None else None
    total = time.monotonic() - t0 + model_time
    rec = TheoremRecord(
        theorem=theorem.name,
        split=split or theorem.split,
        family=theorem.family,
        backend=backend_name,
        generator=drafter_name,
        status=status,
        reason=reason,
        proof=tuple(proof) if proof is not None else None,
        expansions=len(outcomes),
        nodes=sum(len(o.fill.holes) if o.fill else 0 for o in outcomes),
        time=TimeSplit(
            total=round(total, 4),
            model=round(model_time, 4),
            prover=round(sum(o.prover_time for o in outcomes), 4),
            check=round(sum(o.check_time for o in outcomes), 4),
        ),
        check=check,
        restarts=restarts,
        error="; ".join(sorted({o.message[:200] for o in outcomes if o.status == "prover_error"})),
        extra={
            "dsp": {
                "n": n,
                "drafted": len(drafts),
                "correct": correct,
                "hammer": policy.use_hammer,
                "no_sketch": not drafts,
                "samples": [o.to_dict() for o in outcomes],
            }
        },
    )
    return TheoremOutcome(rec, proof_text)


# ---------------------------------------------------------------------------------------------
# pass@k
# ---------------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimate from n samples with c correct (Chen et al. 2021)."""
    if n <= 0:
        return 0.0
    k = min(k, n)
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


@dataclass(frozen=True)
class PassSummary:
    problems: int
    n: int
    pass_at_1: float
    pass_at_n: float
    solved: int


def pass_summary(records: Iterable[TheoremRecord]) -> PassSummary:
    recs = list(records)
    if not recs:
        return PassSummary(0, 0, 0.0, 0.0, 0)
    p1 = 0.0
    n_max = 0
    for r in recs:
        dsp = r.extra.get("dsp", {}) if isinstance(r.extra, dict) else {}
        n = int(dsp.get("n", 1)) or 1
        c = int(dsp.get("correct", 1 if r.proved else 0))
        n_max = max(n_max, n)
        p1 += pass_at_k(n, c, 1)
    solved = sum(1 for r in recs if r.proved)
    return PassSummary(len(recs), n_max, p1 / len(recs), solved / len(recs), solved)


def pass_markdown(s: PassSummary) -> str:
    return (
        "\n## Draft, Sketch, Prove\n\n"
        "| problems | samples (n) | pass@1 | pass@n | solved |\n|---:|---:|---:|---:|---:|\n"
        f"| {s.problems} | {s.n} | {100 * s.pass_at_1:.1f}% | {100 * s.pass_at_n:.1f}% | {s.solved} |\n"
    )


# ---------------------------------------------------------------------------------------------
# Running a split: in this process, or in worker processes that each own a backend
# ---------------------------------------------------------------------------------------------


Job = tuple[Theorem, list[Draft], float]

#: a run stops when more than this many worker processes per ``--workers`` have died
MAX_WORKER_DEATHS_PER_WORKER = 3


def _fill_job(job: Job, cfg: AutoformalizeConfig, backend: ProverBackend) -> TheoremOutcome:
    theorem, drafts, model_time = job
    try:
        return autoformalize_theorem(
            theorem,
            drafts,
            cfg.backend,
            backend,
            cfg.holes,
            cfg.drafter.name,
            cfg.drafter.samples,
            model_time,
            split=cfg.split,
        )
    except ProverError as exc:
        return TheoremOutcome(
            _error_record(
                theorem,
                cfg,
                f"{type(exc).__name__}: {exc}",
                Reason.START_FAILED if "start" in type(exc).__name__.lower() else Reason.PROVER_CRASH,
            ),
            None,
        )


def _error_record(
    theorem: Theorem, cfg: AutoformalizeConfig, error: str, reason: Reason, attempts: int = 1
) -> TheoremRecord:
    return TheoremRecord(
        theorem=theorem.name,
        split=cfg.split,
        family=theorem.family,
        backend=cfg.backend,
        generator=cfg.drafter.name,
        status=Status.ERROR,
        reason=reason,
        proof=None,
        error=error[:500],
        attempts=attempts,
        extra={"dsp": {"n": cfg.drafter.samples, "correct": 0, "samples": []}},
    )


def _worker_main(cfg: AutoformalizeConfig, jobs: Any, results: Any) -> None:
    # SIGTERM from the parent: leave through the context manager so our prover processes are killed
    def _term(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    backend = make_backend(cfg.backend, cfg.prover)
    try:
        backend.start()
    except LlemmaProverError as exc:
        # e.g. the prover is not installed: every worker would fail the same way, so tell the parent
        backend.close()
        results.put(("fatal", os.getpid(), f"{type(exc).__name__}: {exc}", None))
        return
    with backend:
        while True:
            job = jobs.get()
            if job is None:
                break
            results.put(("start", os.getpid(), job[0].name, None))
            out = _fill_job(job, cfg, backend)
            results.put(("done", os.getpid(), out.record.to_json(), out.proof_text))


@dataclass
class _Slot:
    """One worker process with its own job queue, and the jobs the parent gave it (in order)."""

    proc: Any
    jobs: Any
    assigned: list[str]
    started: str | None = None


def run_split(
    cfg: AutoformalizeConfig,
    theorems: Sequence[Theorem],
    draft: Callable[[Theorem], tuple[list[Draft], float]],
    write: Callable[[TheoremOutcome], None],
    backend_factory: Callable[[], ProverBackend] | None = None,
) -> None:
    """Draft (in this process) and fill (here, or in ``cfg.workers`` processes) every theorem.

    ``draft(theorem) -> (drafts, model_seconds)``; ``write(outcome)`` persists each result as it comes.
    Each worker owns a prover and its own job queue, so the parent always knows which theorems a worker
    holds: when a worker dies, the theorem it was working on is retried once (then recorded as a
    ``worker_crash``), the ones it had not started are handed to its replacement.
    """
    if cfg.workers <= 0:
        factory = backend_factory or (lambda: make_backend(cfg.backend, cfg.prover))
        with factory() as backend:
            for th in theorems:
                drafts, mt = draft(th)
                write(_fill_job((th, drafts, mt), cfg, backend))
        return
    _Pool(cfg, draft, write).run(theorems)


class _Pool:
    def __init__(
        self,
        cfg: AutoformalizeConfig,
        draft: Callable[[Theorem], tuple[list[Draft], float]],
        write: Callable[[TheoremOutcome], None],
    ) -> None:
        self.cfg = cfg
        self.draft = draft
        self.write = write
        self.ctx = mp.get_context("spawn")
        self.results = self.ctx.Queue()
        self.slots: dict[int, _Slot] = {}
        self.jobs: dict[str, Job] = {}
        self.attempts: dict[str, int] = {}
        self.deaths = 0

    def _spawn(self) -> _Slot:
        q = self.ctx.Queue()
        p = self.ctx.Process(target=_worker_main, args=(self.cfg, q, self.results), daemon=False)
        p.start()
        assert p.pid is not None  # started
        slot = _Slot(proc=p, jobs=q, assigned=[])
        self.slots[p.pid] = slot
        return slot

    def _assign(self, name: str) -> None:
        slot = min(self.slots.values(), key=lambda s: len(s.assigned))
        slot.assigned.append(name)
        slot.jobs.put(self.jobs[name])

    def run(self, theorems: Sequence[Theorem]) -> None:
        failed = False
        try:
            for _ in range(self.cfg.workers):
                self._spawn()
            it = iter(theorems)
            exhausted = False
            while True:
                # at most 2 jobs per worker in hand, so drafting overlaps with filling
                while not exhausted and len(self.jobs) < 2 * self.cfg.workers:
                    th = next(it, None)
                    if th is None:
                        exhausted = True
                        break
                    drafts, mt = self.draft(th)
                    self.jobs[th.name] = (th, drafts, mt)
                    self.attempts[th.name] = 1
                    self._assign(th.name)
                if exhausted and not self.jobs:
                    break
                try:
                    kind, pid, payload, proof_text = self.results.get(timeout=1.0)
                except queue.Empty:
                    self._check_workers()
                    continue
                self._handle(kind, pid, payload, proof_text)
        except BaseException:
            failed = True
            raise
        finally:
            self._shutdown(failed)

    def _handle(self, kind: str, pid: int, payload: str, proof_text: str | None) -> None:
        slot = self.slots.get(pid)
        if kind == "fatal":
            raise ProverUnavailable(
                f"a worker could not start the prover: {payload}", backend=self.cfg.backend
            )
        if slot is None:
            return  # a message from a worker already written off
        if kind == "start":
            slot.started = payload
            return
        rec = TheoremRecord.from_json(payload)
        name = rec.theorem
        if name in slot.assigned:
            slot.assigned.remove(name)
        slot.started = None
        if self.jobs.pop(name, None) is None:
            return
        self.write(TheoremOutcome(dataclasses.replace(rec, attempts=self.attempts.get(name, 1)), proof_text))

    def _check_workers(self) -> None:
        for pid, slot in list(self.slots.items()):
            if slot.proc.is_alive():
                continue
            self.deaths += 1
            del self.slots[pid]
            log.warning("autoformalize worker pid %s died (exit code %s)", pid, slot.proc.exitcode)
            if self.deaths > MAX_WORKER_DEATHS_PER_WORKER * self.cfg.workers:
                raise ProverError(f"{self.deaths} worker processes died; giving up", backend=self.cfg.backend)
            self._spawn()
            for name in slot.assigned:
                if name not in self.jobs:
                    continue
                if name == slot.started:
                    if self.attempts[name] >= 2:
                        th = self.jobs.pop(name)[0]
                        rec = _error_record(
                            th,
                            self.cfg,
                            "worker process died twice",
                            Reason.WORKER_CRASH,
                            attempts=self.attempts[name],
                        )
                        self.write(TheoremOutcome(rec, None))
                        continue
                    self.attempts[name] += 1
                self._assign(name)

    def _shutdown(self, failed: bool) -> None:
        slots = list(self.slots.values())
        if failed:  # interrupted or broken: stop the workers now (SIGTERM: they close their provers)
            for s in slots:
                if s.proc.is_alive():
                    s.proc.terminate()
        for s in slots:
            s.jobs.put(None)
        for s in slots:
            s.proc.join(timeout=30)
            if s.proc.is_alive():
                s.proc.terminate()
                s.proc.join(timeout=10)
            s.jobs.close()
        self.results.close()
