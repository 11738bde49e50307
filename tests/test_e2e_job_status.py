"""How the per-theorem job turns a search outcome and the re-check into a record's status.

The backend here is a stand-in that only answers ``check``: the search itself is not under test
(its real-Coq tests live with the search and in test_e2e_prove.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from llemma_prover.backends.base import ProofDialect, ProverBackend
from llemma_prover.core.config import ProverConfig, RunConfig
from llemma_prover.core.errors import ProverCrashed
from llemma_prover.core.types import CheckResult, Reason, SearchOutcome, Status, Theorem, TimeSplit
from llemma_prover.workers.job import finish_record

THM = Theorem(name="mathd_algebra_171", split="test", system="coq", header="", statement="Theorem x : True.")


class _NoText(ProofDialect):
    def proof_text(self, theorem: Theorem, proof: Sequence[str]) -> str:
        return ""


class CheckOnly(ProverBackend):
    name = "coq"
    dialect = _NoText("coq")

    def __init__(self, result: CheckResult | Exception) -> None:
        super().__init__(ProverConfig())
        self.result = result
        self.checked: list[tuple[str, ...]] = []

    def close(self) -> None:
        pass

    def start_theorem(self, theorem):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def apply(self, state_id, tactic):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def check(self, theorem: Theorem, proof: Sequence[str]) -> CheckResult:
        self.checked.append(tuple(proof))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def _outcome(reason: Reason, proof: tuple[str, ...] | None) -> SearchOutcome:
    return SearchOutcome(reason=reason, proof=proof, expansions=3, nodes=5,
                         time=TimeSplit(total=1.0, model=0.2, prover=0.7))


@pytest.mark.parametrize(
    ("backend_result", "status", "reason"),
    [
        (CheckResult(ok=True, checker="coqc", elapsed=0.5), Status.PROVED, Reason.PROVED),
        (CheckResult(ok=False, checker="coqc", elapsed=0.5, message="axiom", bad_axioms=("ax",)),
         Status.FAILED, Reason.CHECK_FAILED),
        (ProverCrashed("coqc died", backend="coq"), Status.FAILED, Reason.CHECK_FAILED),
    ],
)
def test_found_proof_counts_only_if_recheck_passes(backend_result, status, reason) -> None:  # type: ignore[no-untyped-def]
    be = CheckOnly(backend_result)
    rec = finish_record(THM, be, RunConfig(), "bank", _outcome(Reason.PROVED, ("intros.", "lra.")),
                        time.monotonic())
    assert be.checked == [("intros.", "lra.")]
    assert rec.status is status and rec.reason is reason
    assert rec.proof == ("intros.", "lra.") and rec.check is not None
    assert rec.check.ok is (status is Status.PROVED)
    if isinstance(backend_result, Exception):
        assert "coqc died" in rec.check.message


@pytest.mark.parametrize(
    ("reason", "status"),
    [(Reason.SEARCH_EXHAUSTED, Status.FAILED), (Reason.EXPANSION_BUDGET, Status.FAILED),
     (Reason.TIME_BUDGET, Status.FAILED), (Reason.PROVER_CRASH, Status.ERROR),
     (Reason.START_FAILED, Status.ERROR)],
)
def test_no_proof_no_check(reason: Reason, status: Status) -> None:
    be = CheckOnly(CheckResult(ok=True, checker="coqc", elapsed=0.0))
    rec = finish_record(THM, be, RunConfig(), "bank", _outcome(reason, None), time.monotonic())
    assert be.checked == [] and rec.check is None
    assert rec.status is status and rec.reason is reason
    assert rec.family == "mathd_algebra" and rec.time.model == 0.2 and rec.expansions == 3
