"""Zero false proofs on Coq: an adversarial corpus of model-written "tactics".

Every case runs on the real coqtop against statements that are FALSE (so any "proof" would be a
false proof). Each must end as a clean ``TacticError`` -- never ``ProofFinished``, never an
exception -- and a whole search offered the entire corpus must not end as "proved".
"""

from __future__ import annotations

import pytest

from llemma_prover.backends.base import make_backend
from llemma_prover.core.config import ProverConfig, RunConfig, SearchConfig
from llemma_prover.core.types import Advanced, ProofFinished, Status, TacticError, Theorem
from llemma_prover.generators.replay import ReplayGenerator
from llemma_prover.workers.job import prove_theorem

pytestmark = pytest.mark.coq

FALSE_R = Theorem(
    name="adv_false_r",
    split="test",
    system="coq",
    header="Require Import Reals.\nOpen Scope R_scope.\n",
    statement="Theorem adv_false_r : forall x : R, x = x + 1.",
)
FALSE_NAT = Theorem(
    name="adv_false_nat",
    split="test",
    system="coq",
    header="",
    statement="Theorem adv_false_nat : forall n : nat, n = S n.",
)

#: (label, tactic) -- each one tries to end a proof of a false statement without proving it
CORPUS: list[tuple[str, str]] = [
    # admits and give-ups, however spelled
    ("admit", "admit"),
    ("admit with period", "admit."),
    ("admit after intros", "intros; admit"),
    ("admit in a term", "exact ltac:(admit)"),
    ("admit under a selector", "all: admit"),
    ("admit under a numbered selector", "1: admit"),
    ("admit in solve", "solve [admit]"),
    ("admit in abstract", "abstract admit"),
    ("admit in let", "let x := admit in idtac"),
    ("now admit", "now admit"),
    ("give_up", "give_up"),
    ("give_up after a tactic", "intros; give_up"),
    ("admit with nbsp", "admit\u00a0"),
    # vernacular smuggled in as a tactic
    ("Admitted", "Admitted."),
    ("Admitted without period", "Admitted"),
    ("Abort", "Abort."),
    ("Qed", "Qed."),
    ("Defined", "Defined."),
    ("second sentence Qed", "intros. Qed."),
    ("second sentence Admitted", "idtac. Admitted"),
    ("newline then Qed", "intros.\nQed."),
    ("tab then Qed", "intros\tQed"),
    ("glued Qed", "intros .Qed."),
    ("semicolon Qed", "idtac; Qed"),
    ("comment before Admitted", "(* harmless *) Admitted."),
    ("Axiom", "Axiom cheat : False."),
    ("Parameter", "Parameter cheat : False."),
    ("Definition", "Definition x := 1."),
    ("Ltac", "Ltac t := idtac."),
    ("Require Classical", "Require Import Classical."),
    ("Unshelve", "Unshelve."),
    ("Timeout prefix", "Timeout 1 admit"),
    ("Fail prefix", "Fail idtac"),
    ("Reset", "Reset Initial."),
    ("BackTo", "BackTo 1."),
    ("Undo", "Undo."),
    ("Load", 'Load "x".'),
    ("Redirect", 'Redirect "f" Print nat.'),
    ("Cd", 'Cd "/tmp".'),
    ("Drop", "Drop."),
    ("Declare ML Module", 'Declare ML Module "x".'),
    ("Add LoadPath", 'Add LoadPath "/tmp".'),
    ("attribute + Hint", "#[global] Hint Resolve I : core."),
    # unicode look-alikes and invisible characters
    ("one-dot leader", "intros\u2024 Qed"),
    ("fullwidth period", "intros\uff0e"),
    ("fullwidth A", "\uff21dmitted."),
    ("zero-width space", "ad\u200bmit"),
    ("line separator", "intros\u2028Qed"),
    # bullets and braces (no focus structure is kept)
    ("bullet", "- intros"),
    ("open brace", "{ intros"),
    ("close brace", "}"),
    # unchecked casts
    ("exact_no_check", "exact_no_check I"),
    ("change_no_check", "change_no_check True"),
    ("vm_cast_no_check", "vm_cast_no_check I"),
    ("native_cast_no_check", "native_cast_no_check I"),
    # reaches coqtop but must fail there
    ("unknown lemma", "exact proof_admitted"),
    ("classic not in scope", "apply classic"),
    ("False_rect hole", "exact (False_rect _ _)"),
    ("string trick", 'idtac "Qed."'),
    ("comment trick", "intros (* . Qed. *)"),
    # shelving: nothing focused left is not a finished proof
    ("shelve", "shelve"),
    ("exfalso then shelve", "exfalso; shelve"),
    ("intros then shelve", "intros; shelve"),
    # unguarded recursion: coqtop accepts it until Qed
    ("fix", "fix IH 1; exact IH"),
    ("cofix", "cofix IH; exact IH"),
]


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 40
    assert len({t for _, t in CORPUS}) == len(CORPUS)


@pytest.fixture(scope="module")
def backend():  # type: ignore[no-untyped-def]
    with make_backend("coq", ProverConfig(tactic_timeout=3.0)) as b:
        yield b


@pytest.mark.parametrize("theorem", [FALSE_R, FALSE_NAT], ids=["R", "nat"])
def test_no_adversarial_tactic_finishes_a_false_theorem(backend, theorem: Theorem) -> None:  # type: ignore[no-untyped-def]
    root = backend.start_theorem(theorem)
    outcomes: dict[str, str] = {}
    for label, tactic in CORPUS:
        step = backend.apply(root.state_id, tactic)  # must not raise
        assert not isinstance(step, ProofFinished), f"{label}: {tactic!r} finished a false theorem"
        if isinstance(step, Advanced):
            # harmless steps (comments, strings) may advance; none may lead to a finished proof
            follow = backend.apply(step.state_id, "auto")
            assert not isinstance(follow, ProofFinished), label
            outcomes[label] = "advanced"
        else:
            assert isinstance(step, TacticError), f"{label}: {step!r}"
            assert step.message
            outcomes[label] = "rejected" if step.rejected else "error"
    # the validator, not coqtop, must stop every vernacular / admit / unicode case
    for label in ("Admitted", "Qed", "second sentence Qed", "fullwidth period", "admit in a term",
                  "Axiom", "Redirect", "fix", "exact_no_check", "bullet"):
        assert outcomes[label] == "rejected", label
    assert outcomes["shelve"] == "error"


def test_state_does_not_leak_between_branches(backend) -> None:  # type: ignore[no-untyped-def]
    root = backend.start_theorem(FALSE_R)
    a = backend.apply(root.state_id, "intros x")
    assert isinstance(a, Advanced)
    # branch 1 adds a hypothesis (an assumption of False would prove anything)
    b1 = backend.apply(a.state_id, "assert (H : False)")
    assert isinstance(b1, Advanced)
    # branch 2, expanded after branch 1, must not see H
    b2 = backend.apply(a.state_id, "destruct H")
    assert isinstance(b2, TacticError)
    b3 = backend.apply(a.state_id, "exact (False_ind _ H)")
    assert isinstance(b3, TacticError)
    # and a theorem started later does not see anything from this one
    root2 = backend.start_theorem(FALSE_NAT)
    r = backend.apply(root2.state_id, "exact adv_false_r")
    assert isinstance(r, TacticError)


def test_whole_search_offered_the_corpus_does_not_prove(tmp_path) -> None:  # type: ignore[no-untyped-def]
    replay = tmp_path / "corpus.txt"
    # one tactic per line: multi-line cases are offered in their one-line form too
    lines = [t.replace("\n", " ") for _, t in CORPUS] + ["intros", "auto"]
    replay.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = RunConfig(
        backend="coq",
        search=SearchConfig(candidates=len(CORPUS) + 2, max_expansions=3, time_budget=120.0),
        prover=ProverConfig(tactic_timeout=3.0),
    )
    with make_backend("coq", run.prover) as backend:
        for theorem in (FALSE_R, FALSE_NAT):
            record, trace = prove_theorem(theorem, backend, ReplayGenerator(replay), run)
            assert record.status is not Status.PROVED
            assert record.proof is None
            assert record.status is Status.FAILED, record
            assert trace is not None and record.extra["attempts"] >= len(CORPUS)
