"""Draft, Sketch, Prove for one theorem, and for a whole split (jobs on the worker pool).

For each problem: the drafter writes up to ``samples`` sketches; each is parsed (untrusted text: a
refused sketch never reaches the prover), its holes are filled by automation (``fill.py``) and the
filled proof is re-checked from scratch by the backend's ``check`` -- exactly the re-check ``prove``
uses (Coq: ``backends/coq/recheck.py``, sandboxed). A problem counts as proved when at least one
sample passes the check. The record (``TheoremRecord``) keeps, per sample, the sketch,
what closed each hole (or every attempt and why not), the final proof, the check and timings, under
``extra["dsp"]``; the summary adds pass@1 (mean fraction of correct samples) and pass@n.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.base import ProverBackend, sketch_dialect
from ..core.config import AutoformalizeConfig, HolePolicy, uses_model
from ..core.errors import ProverError, ProverStartError
from ..core.records import TheoremRecord
from ..core.types import CheckResult, Reason, Status, Theorem, TimeSplit
from ..results.summary import pass_at_k
from .drafter import Draft
from .fill import FillResult, FillStatus, HoleFiller, ProbeFiller, StepwiseFiller
from .sketch import Sketch, SketchError, parse_sketch

log = logging.getLogger(__name__)


def make_filler(backend_name: str, backend: ProverBackend, policy: HolePolicy) -> HoleFiller:
    """Whole-file probes for a backend that ``fills_by_probes`` (Isabelle), else step by step."""
    kind = sketch_dialect(backend_name)
    if kind.fills_by_probes:
        return ProbeFiller(backend, policy, kind=kind)
    return StepwiseFiller(backend, policy, kind=kind)


def prepare_theorem(theorem: Theorem, backend_name: str, policy: HolePolicy) -> Theorem:
    """The theorem as the backend gets it: with what the hole automation needs loaded (Coq: CoqHammer's
    tactics when they are enabled; ``SketchDialect.automation_theorem``)."""
    return sketch_dialect(backend_name).automation_theorem(theorem, policy.use_hammer)


class SampleStatus(str, enum.Enum):
    """How one drafted sketch ended (recorded as its value in ``extra.dsp.samples[].status``); a sketch
    that repeats an earlier one carries that one's status and ``duplicate_of``."""

    PARSE_ERROR = "parse_error"
    #: the fill's own endings (``FillStatus`` but ``FILLED``)
    STEP_FAILED = FillStatus.STEP_FAILED.value
    HOLE_UNCLOSED = FillStatus.HOLE_UNCLOSED.value
    INCOMPLETE = FillStatus.INCOMPLETE.value
    TIME_BUDGET = FillStatus.TIME_BUDGET.value
    CHECK_FAILED = "check_failed"
    PROVED = "proved"
    PROVER_ERROR = "prover_error"

    @classmethod
    def of_fill(cls, status: FillStatus) -> SampleStatus:
        """The sample's ending for a fill that did not fill (``FILLED`` goes on to the check)."""
        if status is FillStatus.FILLED:
            raise ValueError("a filled sketch ends with its check")
        return cls(status.value)


@dataclass(frozen=True)
class SampleOutcome:
    index: int
    sketch: str
    score: float
    status: SampleStatus
    message: str = ""
    fill: FillResult | None = None
    check: CheckResult | None = None
    model_time: float = 0.0
    prover_time: float = 0.0
    check_time: float = 0.0
    duplicate_of: int | None = None

    @property
    def proved(self) -> bool:
        return self.status is SampleStatus.PROVED

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "sketch": self.sketch,
            "score": self.score,
            "status": self.status.value,
            "message": self.message,
            "holes": [h.to_dict() for h in self.fill.holes] if self.fill else [],
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
    compiled is the one with that import, but its axioms are judged against the *original* header
    (``check_audited``): a proof may depend only on axioms the problem's own header brings in.
    """
    if original is None or original.header == theorem.header:
        return backend.check(theorem, proof)
    # the same sandboxed final check as ``prove`` (Coq: recheck.py), axioms judged by the original header
    return backend.check_audited(theorem, proof, original.header)


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
            index, draft.text, draft.score, SampleStatus.PARSE_ERROR, parsed.message,
            model_time=draft.model_time
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
            SampleStatus.PROVER_ERROR,
            str(exc)[:500],
            model_time=draft.model_time,
            prover_time=time.monotonic() - t0,
        )
    if not fill.filled:
        return SampleOutcome(
            index,
            draft.text,
            draft.score,
            SampleStatus.of_fill(fill.status),
            fill.message,
            fill,
            model_time=draft.model_time,
            prover_time=fill.prover_time,
        )
    assert fill.proof is not None
    tc = time.monotonic()
    check = check_filled(backend_name, backend, theorem, original, fill.proof)
    check_time = time.monotonic() - tc
    status = SampleStatus.PROVED if check.ok else SampleStatus.CHECK_FAILED
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
                    i, d.text, d.score, SampleStatus.TIME_BUDGET, "theorem time budget reached",
                    model_time=d.model_time,
                )
            )
            continue
        out = run_sample(i, d, thm, backend_name, backend, filler, deadline, theorem)
        restarts += backend.restarts
        if out.status is SampleStatus.PROVER_ERROR and time.monotonic() < deadline:
            # the backend has replaced its broken process; one more try before the sample counts as lost
            log.warning("%s sample %d: prover error, retrying once: %s", theorem.name, i, out.message[:200])
            out = run_sample(i, d, thm, backend_name, backend, filler, deadline, theorem)
            restarts += backend.restarts + 1
        outcomes.append(out)
        log.debug("%s sample %d: %s %s", theorem.name, i, out.status.value, out.message[:120])
    n = len(drafts) if drafts else samples
    correct = sum(1 for o in outcomes if o.proved)
    best = next((o for o in outcomes if o.proved), None)
    statuses = {o.status for o in outcomes}
    if best is not None:
        status, reason = Status.PROVED, Reason.PROVED
    elif SampleStatus.PROVER_ERROR in statuses and SampleStatus.CHECK_FAILED not in statuses:
        status, reason = Status.FAILED, Reason.PROVER_CRASH
    elif SampleStatus.CHECK_FAILED in statuses:
        status, reason = Status.FAILED, Reason.CHECK_FAILED
    elif SampleStatus.TIME_BUDGET in statuses:
        status, reason = Status.FAILED, Reason.TIME_BUDGET
    else:
        status, reason = Status.FAILED, Reason.SEARCH_EXHAUSTED
    proof = best.fill.proof if best and best.fill else None
    check = best.check if best else next((o.check for o in outcomes if o.check is not None), None)
    proof_text = backend.dialect.proof_text(thm, proof) if proof is not None else None
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
        error="; ".join(sorted({o.message[:200] for o in outcomes
                                if o.status is SampleStatus.PROVER_ERROR})),
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


#: config.json["time_budget_covers"]: what ``holes.theorem_time_limit`` (``--time-budget``) bounds
TIME_BUDGET_COVERS = (
    "the hole filling of one theorem's sketches, all samples together: prover steps and automation "
    "(an overrun is bounded by one attempt, or by the re-check of a sketch already filled); not drafting "
    "(time.model), not a retry of the theorem on a fresh worker"
)


def run_metadata(cfg: AutoformalizeConfig, describe: dict[str, object], note: str, data_files: Sequence[str],
                 data_hash: str, argv: Sequence[str]) -> dict[str, Any]:
    """The content of an ``autoformalize`` run's config.json: the config as it is, what drafted the
    sketches (``generator``: the keys ``RunDir`` compares on resume, as for ``prove``) and the provenance
    every run command records (``workers.driver.provenance``)."""
    from ..workers.driver import provenance

    d = cfg.drafter
    return {
        "command_name": "autoformalize",
        **cfg.to_dict(),
        "generator": {
            "name": d.name,
            "model": d.model.model if uses_model(d.name) else None,
            "replay_file": d.replay_file,
            "describe": describe,
            "note": note,
        },
        "time_budget_covers": TIME_BUDGET_COVERS,
        **provenance(cfg.backend, cfg.prover, data_files, data_hash, argv),
    }


# ---------------------------------------------------------------------------------------------
# pass@k
# ---------------------------------------------------------------------------------------------


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
# Running a split: jobs for the worker pool (``workers/pool.py``), in this process or on Ray
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FillJob:
    """Fill and check the drafted sketches of one theorem (drafting happened in the driver)."""

    theorem: Theorem
    drafts: tuple[Draft, ...]
    model_time: float
    cfg: AutoformalizeConfig

    @property
    def key(self) -> str:
        return self.theorem.name

    def run(self, backend: ProverBackend, attempt: int) -> TheoremOutcome:
        out = _fill_job(self.theorem, list(self.drafts), self.model_time, self.cfg, backend)
        return TheoremOutcome(dataclasses.replace(out.record, attempts=attempt), out.proof_text)

    def failed(self, attempt: int, error: str) -> TheoremOutcome:
        rec = _error_record(self.theorem, self.cfg, error, Reason.WORKER_CRASH, attempt)
        return TheoremOutcome(rec, None)


def _fill_job(theorem: Theorem, drafts: list[Draft], model_time: float, cfg: AutoformalizeConfig,
              backend: ProverBackend) -> TheoremOutcome:
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
                Reason.START_FAILED if isinstance(exc, ProverStartError) else Reason.PROVER_CRASH,
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


def run_split(
    cfg: AutoformalizeConfig,
    theorems: Sequence[Theorem],
    draft: Callable[[Theorem], tuple[list[Draft], float]],
    write: Callable[[TheoremOutcome], None],
) -> None:
    """Draft (in this process) and fill (here, or on ``cfg.workers`` Ray workers) every theorem.

    ``draft(theorem) -> (drafts, model_seconds)`` runs as the pool asks for the next job (at most two
    per worker in hand, so drafting overlaps with filling); ``write(outcome)`` persists each result as
    it comes. A theorem whose worker died is retried once on a fresh worker, then recorded as a
    ``worker_crash``.
    """
    from ..workers.job import BackendSpec
    from ..workers.pool import open_pool

    def jobs() -> Iterator[FillJob]:
        for th in theorems:
            drafts, model_time = draft(th)
            yield FillJob(th, tuple(drafts), model_time, cfg)

    with open_pool(lambda: BackendSpec(cfg.backend, cfg.prover), cfg.workers, cfg.ray_address,
                   retries=cfg.worker_retries) as pool:
        pool.run(jobs(), lambda _job, outcome: write(outcome))
