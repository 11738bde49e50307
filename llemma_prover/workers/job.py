"""The ``prove`` job for the worker pool: search, then an independent re-check of any proof found.

``ProveSpec`` is what each worker builds once (a started backend and a generator); ``ProveJob`` is one
theorem. ``prove_theorem`` never raises for a prover or theorem problem: every outcome becomes a
``TheoremRecord`` (a crash is a record with ``Status.ERROR``), so one theorem can never stop a run.

With ``ProveJob.defer_check`` the worker does not check: its ``JobResult`` carries the found proof in
``unchecked`` and a record that is not final; the driver's ``BatchChecker`` (``workers/checker.py``)
checks it with other proofs and ``complete_check`` turns it into the final record. Only a record made
by ``finish_record`` with a check, or by ``complete_check``, is ever ``PROVED``.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any

from ..backends.base import ProverBackend
from ..core.config import GeneratorConfig, ProverConfig, RunConfig
from ..core.errors import ProverError, ProverStartError
from ..core.records import TheoremRecord
from ..core.types import CheckResult, Reason, SearchOutcome, Status, Theorem, TimeSplit
from ..generators.base import TacticGenerator

log = logging.getLogger(__name__)

#: times a theorem whose prover failed while loading it is started again on a fresh process
START_RETRIES = 1

#: ``record.extra`` key: how many steps of the found proof lost a ``timeout`` tactical in the artifact
UNWRAPPED = "unwrapped_steps"
#: how a failed check of such a proof begins
WRAPPER_NOTE = "the proof depended on a wall-clock wrapper: it fails the check without it"

#: reasons that mean the infrastructure failed (status "error") rather than the search
_ERROR_REASONS = {Reason.PROVER_CRASH, Reason.START_FAILED, Reason.WORKER_CRASH}


@dataclass(frozen=True)
class JobResult:
    """What a worker sends back for one theorem."""

    record: TheoremRecord
    #: node-link JSON of the search tree (None when the search never started)
    trace: dict[str, Any] | None
    #: the checked proof file (None unless proved)
    proof_text: str | None
    proof_ext: str
    #: a found proof (the artifact) whose check was deferred: ``record`` is then not final and must
    #: not be written before ``complete_check`` (None: ``record`` is final)
    unchecked: tuple[str, ...] | None = None


def _record(theorem: Theorem, run_config: RunConfig, generator: str, **kw: Any) -> TheoremRecord:
    return TheoremRecord(
        theorem=theorem.name,
        split=run_config.split,
        family=theorem.family,
        backend=run_config.backend,
        generator=generator,
        **kw,
    )


def crash_record(theorem: Theorem, run_config: RunConfig, generator: str, attempts: int,
                 error: str) -> TheoremRecord:
    """The record of a theorem whose worker died on every attempt."""
    return _record(theorem, run_config, generator, status=Status.ERROR, reason=Reason.WORKER_CRASH,
                   proof=None, attempts=attempts, error=error)


def prove_theorem(
    theorem: Theorem,
    backend: ProverBackend,
    generator: TacticGenerator,
    run_config: RunConfig,
    check: bool = True,
) -> tuple[TheoremRecord, dict[str, Any] | None]:
    """Search for a proof of ``theorem``; re-check a found proof with ``backend.check``.

    Status is ``PROVED`` only if the re-check succeeds; a proof the checker rejects is ``FAILED``
    with reason ``CHECK_FAILED``. Prover failures become ``ERROR`` records. ``check=False``: a found
    proof is not checked here and its record is not final (``finish_record``).
    """
    from ..search.best_first import best_first_search  # search layer; imported when a job runs

    gen_name = generator.name or run_config.generator.name
    t0 = time.monotonic()
    try:
        outcome, tree = best_first_search(theorem, backend, generator, run_config.search)
        for _ in range(START_RETRIES):
            if outcome.reason is not Reason.START_FAILED:
                break
            # a prover killed while loading the theorem looks like a header that does not load;
            # one more try on a fresh process tells them apart (a broken header fails again)
            log.warning("%s: the theorem did not load (%s); trying once more on a fresh prover",
                        theorem.name, _one_line(Exception(outcome.error))[:300])
            first_error = outcome.error
            outcome, tree = best_first_search(theorem, backend, generator, run_config.search)
            outcome = replace(outcome, extra={**outcome.extra, "start_retry_after": first_error[:500]})
    except ProverStartError as exc:
        log.warning("%s: theorem did not load: %s", theorem.name, exc)
        return _record(theorem, run_config, gen_name, status=Status.ERROR, reason=Reason.START_FAILED,
                       proof=None, time=TimeSplit(total=time.monotonic() - t0),
                       restarts=backend.restarts, error=_one_line(exc)), None
    except ProverError as exc:
        log.warning("%s: prover failed: %s", theorem.name, exc)
        return _record(theorem, run_config, gen_name, status=Status.ERROR, reason=Reason.PROVER_CRASH,
                       proof=None, time=TimeSplit(total=time.monotonic() - t0),
                       restarts=backend.restarts, error=_one_line(exc)), None
    trace = tree.to_node_link() if tree is not None else None
    return finish_record(theorem, backend, run_config, gen_name, outcome, t0, check=check), trace


def finish_record(theorem: Theorem, backend: ProverBackend, run_config: RunConfig, gen_name: str,
                  outcome: SearchOutcome, t0: float, check: bool = True) -> TheoremRecord:
    """Turn a search outcome into a record, re-checking a found proof: the record holds the proof as
    checked (``artifact_proof``: without the search's wall-clock wrappers, around a tactic or inside
    it); the trace keeps the steps as the search ran them. ``extra["unwrapped_steps"]``: how many steps
    lost a ``timeout``; when the check then fails, its message begins with ``WRAPPER_NOTE`` (the proof
    depended on the machine's speed). The verdict is the check's, on the artifact.

    ``check=False``: a found proof is not checked; the record is ``FAILED``/``CHECK_FAILED`` with no
    ``check`` until ``complete_check`` gives it the verdict (it is never written as it is)."""
    # the artifact: what is checked is what is recorded and exported (no wall-clock wrapper)
    proof = None if outcome.proof is None else tuple(backend.dialect.artifact_proof(outcome.proof))
    unwrapped = 0
    if outcome.proof is not None and proof is not None:
        unwrapped = sum(a != b for a, b in zip(outcome.proof, proof, strict=True))
        if unwrapped:
            outcome = replace(outcome, extra={**outcome.extra, UNWRAPPED: unwrapped})
    verdict: CheckResult | None = None
    if check and outcome.reason is Reason.PROVED and proof is not None:
        try:
            verdict = backend.check(theorem, proof)
        except ProverError as exc:
            verdict = CheckResult(ok=False, checker=backend.name, elapsed=0.0, message=_one_line(exc))
        verdict = _wrapper_note(verdict, unwrapped)
    return _verdict(theorem, run_config, gen_name, outcome, proof, verdict, time.monotonic() - t0)


def _wrapper_note(check: CheckResult, unwrapped: int) -> CheckResult:
    """A failed check of a proof whose artifact lost wall-clock wrappers says so: the search's steps
    passed with them, the artifact without them did not, so the proof depended on them (the speed
    of the machine). The verdict itself is Coq's, unchanged."""
    if check.ok or not unwrapped or check.checker == "deferred" or WRAPPER_NOTE in check.message:
        return check
    return replace(check, message=f"{WRAPPER_NOTE} ({unwrapped} step(s) without their `timeout`): "
                                  f"{check.message}")


def _verdict(theorem: Theorem, run_config: RunConfig, gen_name: str, outcome: SearchOutcome,
             proof: tuple[str, ...] | None, check: CheckResult | None, total: float) -> TheoremRecord:
    """The record of a search outcome whose found proof ``proof`` got the verdict ``check`` (None: not
    checked, never ``PROVED``); ``total``: seconds of the whole theorem, the check included."""
    status = Status.FAILED
    reason = outcome.reason
    if outcome.reason is Reason.PROVED and proof is not None:
        if check is None:
            reason = Reason.CHECK_FAILED
        elif check.ok:
            status = Status.PROVED
        elif check.checker == "deferred":  # library mode: checked with the job's other proofs
            reason = Reason.CHECK_FAILED
        else:
            reason = Reason.CHECK_FAILED
            log.warning("%s: the search found a proof but the re-check rejected it: %s",
                        theorem.name, check.message[:300])
    elif outcome.reason in _ERROR_REASONS:
        status = Status.ERROR
    elif outcome.reason is Reason.PROVED:  # PROVED without a proof is a search bug; do not count it
        reason = Reason.CHECK_FAILED
    time_split = replace(outcome.time, total=total, check=check.elapsed if check else 0.0)
    return _record(
        theorem, run_config, gen_name,
        status=status, reason=reason, proof=proof,
        expansions=outcome.expansions, nodes=outcome.nodes, time=time_split, check=check,
        restarts=outcome.restarts, error=outcome.error,
        extra=dict(outcome.extra) if outcome.extra else {},
    )


@dataclass(frozen=True)
class ProveContext:
    """What one worker holds for all its theorems."""

    backend: ProverBackend
    generator: TacticGenerator

    def close(self) -> None:
        try:
            self.generator.close()
        except Exception as exc:  # closing the generator must not keep the prover running
            log.warning("closing the generator failed: %s", _one_line(exc))
        finally:
            self.backend.close()


def start_backend(backend: str, prover: ProverConfig) -> ProverBackend:
    """A started prover backend, closed again when its start fails: what every worker recipe begins with
    (``BackendSpec``, ``ProveSpec``, the driver's in-process context)."""
    from ..backends.base import make_backend

    started = make_backend(backend, prover)
    try:
        started.start()
    except BaseException:
        started.close()
        raise
    return started


@dataclass(frozen=True)
class BackendSpec:
    """Worker recipe for jobs that need a started prover alone (``autoformalize``'s fill jobs)."""

    backend: str
    prover: ProverConfig

    def setup(self) -> ProverBackend:
        return start_backend(self.backend, self.prover)

    def teardown(self, backend: ProverBackend) -> None:
        backend.close()


@dataclass(frozen=True)
class ProveSpec:
    """Worker recipe for ``prove``: a started backend and a tactic generator built from
    ``generator_config``; ``generator``, when given, is a picklable ready-made one that stands for its
    model part (the ``ServerGenerator`` that sends requests to the model servers)."""

    backend: str
    prover: ProverConfig
    generator_config: GeneratorConfig
    generator: Any = None

    def setup(self) -> ProveContext:
        from ..generators.registry import make_generator

        backend = start_backend(self.backend, self.prover)
        try:
            generator, _note = make_generator(self.generator_config, self.backend, served=self.generator)
        except BaseException:
            backend.close()
            raise
        return ProveContext(backend, generator)

    def teardown(self, context: ProveContext) -> None:
        context.close()


@dataclass(frozen=True)
class ProveJob:
    """One theorem to prove (picklable). ``defer_check``: a found proof is left to the driver's
    ``BatchChecker`` (``JobResult.unchecked``) instead of being checked on the search worker."""

    theorem: Theorem
    run_config: RunConfig
    defer_check: bool = False

    @property
    def key(self) -> str:
        return self.theorem.name

    def run(self, context: ProveContext, attempt: int) -> JobResult:
        return run_job(self.theorem, context.backend, context.generator, self.run_config, attempt=attempt,
                       check=not self.defer_check)

    def failed(self, attempt: int, error: str) -> JobResult:
        rec = crash_record(self.theorem, self.run_config, self.run_config.generator.name, attempt, error)
        return JobResult(rec, None, None, "")


def run_job(theorem: Theorem, backend: ProverBackend, generator: TacticGenerator, run_config: RunConfig,
            attempt: int = 1, check: bool = True) -> JobResult:
    """``prove_theorem`` plus the proof file; an unexpected exception becomes an ERROR record.
    ``check=False``: a found proof comes back unchecked (``JobResult.unchecked``; ``complete_check``)."""
    ext = backend.dialect.proof_ext
    try:
        record, trace = prove_theorem(theorem, backend, generator, run_config, check=check)
    except Exception as exc:  # a bug in a layer below must not end the run: record it loudly
        log.error("%s: unexpected error:\n%s", theorem.name, traceback.format_exc())
        record = _record(theorem, run_config, generator.name or run_config.generator.name,
                         status=Status.ERROR, reason=Reason.PROVER_CRASH, proof=None,
                         error=f"unexpected {type(exc).__name__}: {_one_line(exc)}")
        trace = None
    record = replace(record, attempts=attempt)
    proof_text = None
    if record.status is Status.PROVED and record.proof is not None:
        proof_text = backend.dialect.proof_text(theorem, record.proof)
    unchecked = None
    found = record.reason is Reason.CHECK_FAILED and record.check is None and record.proof is not None
    if not check and found:
        unchecked = record.proof  # found, not checked: the record is not final
    return JobResult(record=record, trace=trace, proof_text=proof_text, proof_ext=ext, unchecked=unchecked)


def complete_check(theorem: Theorem, result: JobResult, check: CheckResult, backend: type[ProverBackend]
                   ) -> JobResult:
    """The final result of a job whose check was deferred (``result.unchecked``), given the check's
    verdict on exactly that proof: ``PROVED`` only if ``check.ok``; the check's seconds are added to
    the record's total as ``finish_record`` counts them."""
    if result.unchecked is None:
        raise ValueError(f"{theorem.name}: the result has no deferred check")
    rec = result.record
    unwrapped = rec.extra.get(UNWRAPPED, 0)
    check = _wrapper_note(check, unwrapped if isinstance(unwrapped, int) else 0)
    if check.ok:
        status, reason = Status.PROVED, Reason.PROVED
    else:
        status, reason = Status.FAILED, Reason.CHECK_FAILED
        log.warning("%s: the search found a proof but the re-check rejected it: %s",
                    theorem.name, check.message[:300])
    t = rec.time
    rec = replace(rec, status=status, reason=reason, check=check,
                  time=replace(t, total=t.total + check.elapsed, check=check.elapsed))
    text = backend.dialect.proof_text(theorem, result.unchecked) if check.ok else None
    return replace(result, record=rec, proof_text=text, unchecked=None)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:1000]
