"""The ``prove --library`` job for the worker pool: one file, a few of its sampled lemmas, in context.

A job walks its file in one coqidetop (``backends/coq/library_session.LibrarySession``) from the start:
lemmas it does not attempt are replayed with their original proofs; at each lemma it attempts, the
best-first search (``search/best_first.py``, unchanged) starts just after the statement, a proof found
is checked in context (``LibrarySession.check``), and the original proof is added before the walk goes
on. With online learning, the steps of every original proof the walk has passed (extract's records,
from the scan) are handed to the generator (``TacticGenerator.learn_steps``) before the next search.

Every attempted lemma gets a record (``JobResult``): a lemma the walk could not reach (the file stops
loading, the process cannot be replaced) is an ``ERROR`` record with reason ``start_failed``, so one
file can never stop a run, and the job is resumable lemma by lemma (a resumed run's jobs attempt only
the lemmas without a record).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..backends.coq.library_session import DEFERRED, LibraryLemma, LibrarySession
from ..core.config import GeneratorConfig, ProverConfig, RunConfig
from ..core.errors import ProverError
from ..core.records import TheoremRecord
from ..core.types import CheckResult, Reason, Status, Theorem, TimeSplit
from ..generators.base import TacticGenerator
from ..library.lemmas import Lemma
from ..library.plan import FileChunk
from .job import JobResult, _record, crash_record, run_job

log = logging.getLogger(__name__)

__all__ = ["LibraryContext", "LibraryJob", "LibraryJobResult", "LibrarySpec", "lemma_theorem"]


def lemma_theorem(lemma: Lemma, split: str) -> Theorem:
    """What the search and the generator get of a lemma: its id and its statement sentence (no header:
    the context is the prover's; never the proof)."""
    return Theorem(name=lemma.key, split=split, system="coq", header="",
                   statement=" ".join(lemma.statement.split()),
                   source=f"{lemma.library}/{lemma.rel}:{lemma.line}")


@dataclass(frozen=True)
class LibraryJobResult:
    """The records of one job, in file order."""

    results: tuple[JobResult, ...]


@dataclass
class LibraryContext:
    """What one worker holds for all its jobs: the generator (each job starts its own coqidetop) and
    the in-context checker (it caches the dependency graph and each lemma's reference compile)."""

    generator: TacticGenerator
    rechecker: Any = None

    def checker(self, prover: ProverConfig) -> Any:
        if self.rechecker is None:
            from ..backends.coq.library_check import LibraryRechecker
            from ..backends.sandbox import sandbox_for

            self.rechecker = LibraryRechecker(sandbox_for(prover), timeout_s=prover.check_timeout)
        return self.rechecker

    def close(self) -> None:
        self.generator.close()


@dataclass(frozen=True)
class LibrarySpec:
    """Worker recipe: a generator built from ``generator_config`` (or ``generator``, a ready-made
    picklable one such as the model servers' client)."""

    backend: str
    prover: ProverConfig
    generator_config: GeneratorConfig
    generator: Any = None

    def setup(self) -> LibraryContext:
        from ..generators.registry import make_generator

        # the served generator (model servers) stands for the model part, a mixture's too
        generator, _note = make_generator(self.generator_config, self.backend, served=self.generator)
        return LibraryContext(generator)

    def teardown(self, context: LibraryContext) -> None:
        context.close()


@dataclass(frozen=True)
class LibraryJob:
    """One chunk of one file (picklable)."""

    chunk: FileChunk
    run_config: RunConfig
    #: extract's step records of the original proofs of ``chunk.lemmas`` (online learning; else empty)
    steps: Mapping[str, Sequence[Mapping[str, Any]]]

    @property
    def key(self) -> str:
        return self.chunk.key

    def failed(self, attempt: int, error: str) -> LibraryJobResult:
        recs = []
        for lem in self._attempted():
            rec = crash_record(lemma_theorem(lem, self.run_config.split), self.run_config,
                               self.run_config.generator.name, attempt, error)
            recs.append(JobResult(self._located(rec, lem), None, None, ""))
        return LibraryJobResult(tuple(recs))

    def _attempted(self) -> list[Lemma]:
        wanted = set(self.chunk.attempt)
        return [lem for lem in self.chunk.lemmas if lem.key in wanted]

    def _located(self, rec: TheoremRecord, lemma: Lemma, **extra: Any) -> TheoremRecord:
        # ``statement``: the lemma's statement sentence (``trace path`` writes it above the tactics)
        return replace(rec, library=lemma.library, file=lemma.rel, line=lemma.line,
                       extra={**rec.extra, "automation": list(self.chunk.file.automation),
                              "statement": " ".join(lemma.statement.split()), **extra})

    def run(self, context: LibraryContext, attempt: int) -> LibraryJobResult:
        cfg = self.run_config
        generator = context.generator
        generator.forget_learned()
        session = LibrarySession(cfg.prover, self.chunk.file, rechecker=context.checker(cfg.prover),
                                 replay_timeout=cfg.library.replay_timeout if cfg.library else 900.0)
        session.defer_checks = True  # checked together after the walk (``_settle``)
        wanted = set(self.chunk.attempt)
        out: list[JobResult] = []
        broken = ""
        learned = 0
        walk_from = time.monotonic()  # the walk since the last search: replays, process start, statement
        try:
            for lem in self.chunk.lemmas:
                if broken:
                    if lem.key in wanted:
                        out.append(self._unreachable(lem, broken, attempt))
                    continue
                if lem.key not in wanted:
                    try:
                        session.replay_to(lem.end)
                    except ProverError as exc:
                        broken = _one_line(exc)
                    else:
                        learned += self._learn(generator, lem)
                    continue
                try:
                    session.open_lemma(_span(lem))
                except ProverError as exc:
                    broken = _one_line(exc)
                    out.append(self._unreachable(lem, broken, attempt))
                    continue
                walk_s = time.monotonic() - walk_from
                res = run_job(lemma_theorem(lem, cfg.split), session, generator, cfg, attempt=attempt)
                stats = session.stats()
                rec = self._located(res.record, lem, walk_s=walk_s, learned_steps=learned,
                                    prefix_replays=int(stats.get("prefix_replays", 0)),
                                    prefix_replay_s=stats.get("prefix_replay_s", 0.0))
                out.append(replace(res, record=rec))
                walk_from = time.monotonic()
                try:
                    session.finish_lemma()
                except ProverError as exc:
                    broken = _one_line(exc)
                    continue
                learned += self._learn(generator, lem)
        finally:
            session.close()
        return LibraryJobResult(tuple(self._settle(session, out)))

    def _settle(self, session: LibrarySession, out: list[JobResult]) -> list[JobResult]:
        """The deferred checks of the job's proofs, run as one batch; each record gets its own result
        (``PROVED`` only if it passed), ``time.check`` its share of the batch."""
        deferred = [i for i, res in enumerate(out)
                    if res.record.check is not None and res.record.check.checker == DEFERRED]
        if not deferred:
            return out
        checks = session.check_deferred()
        cfg = self.run_config
        lemmas = {lem.key: lem for lem in self.chunk.lemmas}
        for i in deferred:
            rec = out[i].record
            check = checks.get(rec.theorem)
            if check is None:  # never: every deferred proof is in the batch; not counted if it were not
                check = CheckResult(ok=False, checker="coqchk-library", elapsed=0.0, message="not checked")
            t = replace(rec.time, check=check.elapsed, total=rec.time.total + check.elapsed)
            proof_text = None
            if check.ok:
                rec = replace(rec, status=Status.PROVED, reason=Reason.PROVED, check=check, time=t)
                assert rec.proof is not None
                lemma = lemma_theorem(lemmas[rec.theorem], cfg.split)
                proof_text = session.dialect.proof_text(lemma, rec.proof)
            else:
                log.warning("%s: the search found a proof but the re-check rejected it: %s",
                            rec.theorem, check.message[:300])
                rec = replace(rec, check=check, time=t)
            out[i] = replace(out[i], record=rec, proof_text=proof_text)
        return out

    def _learn(self, generator: TacticGenerator, lemma: Lemma) -> int:
        if not (self.run_config.library and self.run_config.library.online_learning):
            return 0
        steps = self.steps.get(lemma.key, ())
        if steps:
            generator.learn_steps(steps)
        return len(steps)

    def _unreachable(self, lemma: Lemma, why: str, attempt: int) -> JobResult:
        cfg = self.run_config
        rec = _record(lemma_theorem(lemma, cfg.split), cfg, cfg.generator.name, status=Status.ERROR,
                      reason=Reason.START_FAILED, proof=None, time=TimeSplit(), attempts=attempt,
                      error=f"the file could not be replayed up to this lemma: {why}")
        return JobResult(self._located(rec, lemma), None, None, "")


def _span(lemma: Lemma) -> LibraryLemma:
    """Where ``lemma`` is in its file, as the session needs it."""
    return LibraryLemma(key=lemma.key, name=lemma.name, start=lemma.start, stmt_end=lemma.stmt_end,
                        end=lemma.end)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]
