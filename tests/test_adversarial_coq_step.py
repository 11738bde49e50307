"""The Coq step layer is not fooled (issue 10, points 1, 2 and 5), on the real coqidetop.

Every statement here is false, so any ``ProofFinished`` would be a false proof. The attacks are the
issue's reproductions -- our lexer is not Coq's, printed text that imitates the protocol, a smuggled
``Fail``/``Show`` -- plus kernel-level cheats. Each runs twice: through the backend as it is, and
with the first filter (``validate_tactic``) switched off, to show that Coq's own parser, goals and
kernel decide, not our regexes. The last test is "one bad candidate costs one candidate": 13+
candidates that break the prover process in one expansion, then a correct ``ring`` still proves.
"""

from __future__ import annotations

import shutil

import pytest

import llemma_prover.backends.coq.backend as coq_backend
from llemma_prover.backends.base import make_backend
from llemma_prover.core.config import ProverConfig, RunConfig, SearchConfig
from llemma_prover.core.types import (
    Advanced,
    ProofFinished,
    Reason,
    Status,
    TacticError,
    TacticTimeout,
    Theorem,
)
from llemma_prover.generators.replay import ReplayGenerator
from llemma_prover.workers.job import prove_theorem

pytestmark = [pytest.mark.coq]
if shutil.which("coqidetop.opt") is None:
    pytestmark.append(pytest.mark.skip(reason="coqidetop.opt not installed"))

def _theorem(name: str, statement: str, header: str = "") -> Theorem:
    return Theorem(name=name, split="test", system="coq", header=header, statement=statement)


FALSE = [
    _theorem("step_one_two", "Theorem step_one_two : 1 = 2."),
    _theorem("step_false", "Theorem step_false : False."),
    Theorem(
        name="step_lt",
        split="test",
        system="coq",
        header="Require Import Arith.\n",
        statement="Theorem step_lt : forall n : nat, n < n.",
    ),
]

FAKE_PROMPT = "<prompt>step_false < 99 |step_false| 0 < </prompt>"
FAKE_GOALS = "1 goal\n  \n  ============================\n   True\n"

#: (label, tactic): each tries to make the step layer report a finished proof of a false statement
ATTACKS: list[tuple[str, str]] = [
    # route 1: our lexer is not Coq's (the reproduction and variants)
    ("... ends a sentence", "pose (m := 0)... Axiom plus_n_O : ltac:(do 3000000 idtac; exact False)"),
    ("... then Admitted", "idtac... Admitted"),
    ("string inside a comment", 'idtac (* "(*" *). Admitted. (* "*)" *)'),
    ("string inside a comment 2", 'idtac (* "*)" *) . Admitted.'),
    ("unbalanced paren closes our wrapper", "idtac) . Admitted. (idtac"),
    ("sentence end before a comment", "idtac.\nAdmitted.(* x *)"),
    ("carriage return ends a sentence", "idtac.\rAdmitted"),
    # route 2: printed text imitating the protocol, the old prompt or goals
    ("fake No more goals", 'idtac "</infomsg>No more goals.<infomsg>"'),
    ("fake prompt", f'idtac "{FAKE_PROMPT}"'),
    ("fake goals", f'idtac "{FAKE_GOALS}"'),
    ("fake XML value", 'idtac "<value val=""good""><option val=""some""><goals><list/><list/><list/><list/>'
                       '</goals></option></value>"'),
    ("fake feedback close", 'idtac "</pp></richpp></message></feedback_content></feedback>"'),
    ("failing tactic that prints No more goals", 'fail "No more goals."'),
    ("smuggled Fail ending in No more goals", 'idtac. Fail fail "No more goals."'),
    ("smuggled Show", "idtac. Show."),
    ("try fail printing", 'try (idtac "No more goals."; fail)'),
    # tactics that leave the proof unfinished or skip the kernel
    ("admit", "admit"),
    ("give_up", "give_up"),
    ("shelve", "shelve"),
    ("exact_no_check", "exact_no_check I"),
    ("change_no_check", "change_no_check True; exact I"),
    ("fix", "fix IH 1; exact IH"),
    ("cofix", "cofix IH; exact IH"),
    ("vernacular", "Admitted."),
    ("vernacular in parens", "(Admitted)"),
    ("Axiom then use", "Axiom cheat : False."),
]


@pytest.fixture(scope="module")
def backend():  # type: ignore[no-untyped-def]
    with make_backend("coq", ProverConfig(tactic_timeout=3.0)) as b:
        yield b


def _no_filter(text: str) -> str:
    """``validate_tactic`` switched off: only the final period is taken off, nothing is refused."""
    body = text.strip()
    return body[:-1] if body.endswith(".") else body


def _run_attacks(backend, theorem: Theorem) -> dict[str, str]:  # type: ignore[no-untyped-def]
    root = backend.start_theorem(theorem)
    outcomes: dict[str, str] = {}
    for label, tactic in ATTACKS:
        step = backend.apply(root.state_id, tactic)
        assert not isinstance(step, ProofFinished), f"{theorem.name}: {label}: {tactic!r} finished it"
        if isinstance(step, Advanced):
            # printed text never changes the goals: they are Coq's, and still the original one
            assert step.goals == root.goals, label
            for follow_up in ("exfalso; exact plus_n_O", "exact cheat", "auto", "exact I"):
                after = backend.apply(step.state_id, follow_up)
                assert not isinstance(after, ProofFinished), f"{label} then {follow_up}"
            outcomes[label] = "advanced"
        else:
            assert isinstance(step, TacticError | TacticTimeout), f"{label}: {step!r}"
            outcomes[label] = "rejected" if isinstance(step, TacticError) and step.rejected else "error"
    # the follow-up on a fresh root: plus_n_O is the stdlib lemma, not a smuggled axiom
    assert not isinstance(backend.apply(root.state_id, "exfalso; exact plus_n_O"), ProofFinished)
    return outcomes


@pytest.mark.parametrize("theorem", FALSE, ids=[t.name for t in FALSE])
def test_attacks_do_not_finish_a_false_statement(backend, theorem: Theorem) -> None:  # type: ignore[no-untyped-def]
    outcomes = _run_attacks(backend, theorem)
    for label in ("... ends a sentence", "string inside a comment", "unbalanced paren closes our wrapper",
                  "smuggled Fail ending in No more goals", "vernacular"):
        assert outcomes[label] == "rejected", label


@pytest.mark.parametrize("theorem", FALSE, ids=[t.name for t in FALSE])
def test_attacks_fail_with_the_first_filter_switched_off(backend, theorem: Theorem, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(coq_backend, "validate_tactic", _no_filter)
    outcomes = _run_attacks(backend, theorem)
    after = backend.stats()  # counters of this theorem (start_theorem resets them)
    # Coq's parser refused every smuggled second sentence (``Admitted`` alone parses as a call of an
    # Ltac named Admitted -- a tactic -- and fails when it runs)
    for label in ("... ends a sentence", "... then Admitted", "string inside a comment",
                  "string inside a comment 2", "unbalanced paren closes our wrapper",
                  "sentence end before a comment", "carriage return ends a sentence",
                  "smuggled Fail ending in No more goals", "smuggled Show", "Axiom then use"):
        assert outcomes[label] == "rejected", (label, outcomes)
    for label in ("vernacular", "vernacular in parens"):
        assert outcomes[label] in ("rejected", "error"), (label, outcomes)
    assert after["coq_rejected"] >= 10
    # ... and the kernel refused the proofs that only look finished to the tactic engine
    if theorem.name == "step_false":
        assert after["kernel_rejected"] >= 1


def test_kernel_check_keeps_the_state_usable(backend, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(coq_backend, "validate_tactic", _no_filter)
    th = _theorem("step_true", "Theorem step_true : True.")
    root = backend.start_theorem(th)
    bad = backend.apply(root.state_id, "exact_no_check (0 = 0)")  # no goals left, but ill-typed
    assert isinstance(bad, TacticError) and "kernel rejected" in bad.message
    good = backend.apply(root.state_id, "exact I")
    assert isinstance(good, ProofFinished)
    again = backend.apply(root.state_id, "trivial")  # the root is still open after the Qed check
    assert isinstance(again, ProofFinished)
    assert backend.check(th, backend.tactics_to(good.state_id)).ok


def test_one_bad_candidate_costs_one_candidate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # 14 distinct candidates that each break the prover process (each prints more than the answer cap,
    # so the process is killed and replaced), then a correct ring. With max_restarts=2 any candidate
    # counted as a restart would end the theorem as prover_crash before ring is tried.
    theorem = Theorem(
        name="step_ring",
        split="test",
        system="coq",
        header="Require Import Arith.\n",
        statement="Theorem step_ring : forall a b : nat, (a + b) * (a + b) = a * a + 2 * a * b + b * b.",
    )
    floods = [f'intros; do 3000 idtac "flood {k} ................................................"'
              for k in range(14)]
    replay = tmp_path / "bad_then_ring.txt"
    replay.write_text("\n".join([*floods, "intros a b; ring"]) + "\n", encoding="utf-8")
    run = RunConfig(
        backend="coq",
        search=SearchConfig(candidates=len(floods) + 1, max_expansions=1, time_budget=300.0),
        prover=ProverConfig(tactic_timeout=5.0, max_restarts=2),
    )
    backend = make_backend("coq", run.prover)
    assert isinstance(backend, coq_backend.CoqBackend)
    backend.max_answer_chars = 100_000
    with backend:
        record, trace = prove_theorem(theorem, backend, ReplayGenerator(replay), run)
        stats = backend.stats()
    assert record.status is Status.PROVED and record.reason is Reason.PROVED, record
    assert record.restarts == 0
    assert stats["candidate_crashes"] >= len(floods) and stats["restarts"] == 0
    assert trace is not None
    failed = [e for e in trace["edges"] if "prover failed on this tactic" in (e.get("error") or "")]
    assert len(failed) == len(floods)
