"""The Coq tactic-sentence validator (pure; no coqtop needed)."""

from __future__ import annotations

import pytest

from llemma_prover.backends.coq.sentences import MAX_TACTIC_CHARS, InvalidTactic, validate_tactic

ACCEPTED = [
    ("lia", "lia"),
    ("lia.", "lia"),
    ("  intros x y h.  ", "intros x y h"),
    ("intros; nra.", "intros; nra"),
    ("rewrite Nat.add_comm.", "rewrite Nat.add_comm"),
    ("rewrite Coq.Arith.PeanoNat.Nat.add_comm; lia", "rewrite Coq.Arith.PeanoNat.Nat.add_comm; lia"),
    ("assert (h : 1.5 = 3/2) by lra.", "assert (h : 1.5 = 3/2) by lra"),
    ("all: lia.", "all: lia"),
    ("2: lia", "2: lia"),
    ("try (field; lra).", "try (field; lra)"),
    ('idtac "hello. world".', 'idtac "hello. world"'),
    ('idtac "say ""hi"". ok"', 'idtac "say ""hi"". ok"'),
    ("(* a comment. with a period *) lia.", "(* a comment. with a period *) lia"),
    ("intros (* nested (* comment *) . *) x.", "intros (* nested (* comment *) . *) x"),
    ("destruct (Z.eq_dec x y) as [H|H].", "destruct (Z.eq_dec x y) as [H|H]"),
    ("exists {| x := 1 |}.", "exists {| x := 1 |}"),
    ("apply (f_equal (fun z => z + 1)).", "apply (f_equal (fun z => z + 1))"),
    ("unfold x in *.", "unfold x in *"),
    ("induction n as [|n IH];\n  simpl; lia.", "induction n as [|n IH];\n  simpl; lia"),
    ("repeat split.", "repeat split"),
    ("nra.\n", "nra"),
    # Coq reads a string inside a comment as a string: these comments are closed
    ('idtac (* "*)" *)', 'idtac (* "*)" *)'),
    ('idtac (* "(*" *)', 'idtac (* "(*" *)'),
]


@pytest.mark.parametrize(("text", "normalised"), ACCEPTED)
def test_accepts_single_tactic_sentences(text, normalised):
    assert validate_tactic(text) == normalised
    # idempotent: the normalised form, with or without its period, is accepted unchanged
    assert validate_tactic(normalised) == normalised
    assert validate_tactic(normalised + ".") == normalised


REJECTED = [
    ("Qed.", "vernacular"),
    ("Qed", "vernacular"),
    ("Admitted.", "vernacular"),
    ("Abort.", "vernacular"),
    ("Defined.", "vernacular"),
    ("Require Import Classical.", "vernacular"),
    ("From Coq Require Import Classical.", "vernacular"),
    ("Definition x := 1.", "vernacular"),
    ("Lemma l : True.", "vernacular"),
    ("Theorem t : False.", "vernacular"),
    ("Axiom cheat : False.", "vernacular"),
    ("Parameter p : nat.", "vernacular"),
    ("Hypothesis h : False.", "vernacular"),
    ("Variable v : nat.", "vernacular"),
    ('Load "evil".', "vernacular"),
    ('Cd "/tmp".', "vernacular"),
    ('Redirect "/tmp/x" Print All.', "vernacular"),
    ("Drop.", "vernacular"),
    ('Declare ML Module "x".', "vernacular"),
    ("Set Printing All.", "vernacular"),
    ("Unset Printing Notations.", "vernacular"),
    ("Print Assumptions t.", "vernacular"),
    ("Check nat.", "vernacular"),
    ("Show.", "vernacular"),
    ("Undo.", "vernacular"),
    ("Restart.", "vernacular"),
    ("BackTo 1.", "vernacular"),
    ("Back 1.", "vernacular"),
    ("Reset Initial.", "vernacular"),
    ("Timeout 100 nia.", "vernacular"),
    ("Fail lia.", "vernacular"),
    ("Time lia.", "vernacular"),
    ("Ltac t := idtac.", "vernacular"),
    ("Focus 2.", "vernacular"),
    ("admit.", "forbidden"),
    ("give_up.", "forbidden"),
    ("try admit.", "forbidden"),
    ("intros; (admit).", "forbidden"),
    ("exact_no_check I.", "forbidden"),
    ("all: admit", "forbidden"),
    ("- lia.", "bullet"),
    ("+ lia", "bullet"),
    ("* lia.", "bullet"),
    ("--", "bullet"),
    ("{", "unbalanced"),
    ("}", "unbalanced"),
    ("2: {", "unbalanced"),
    ("intros. lia.", "more than one sentence"),
    ("intros.\nlia.", "more than one sentence"),
    ("lia. Qed.", "more than one sentence"),
    ("nra.\tQed", "more than one sentence"),
    ("lia.. ", "'..'"),
    ("intros (x", "unbalanced"),
    ("intros x)", "unbalanced"),
    ("destruct h as [a b", "unbalanced"),
    ("lia (* never closed", "unterminated comment"),
    ('idtac "never closed', "unterminated string"),
    ("lia *)", "comment end"),
    ("lia\x00", "control"),
    ("lia\x1b[2J", "control"),
    ("lia\r", "control"),
    ("intros\u200b x", "invisible"),
    ("lia\uff0e Qed\uff0e", "look-alike"),
    ("lia\u3002", "look-alike"),
    ("intros\u2024 Qed", "look-alike"),
    ("", "empty"),
    ("   ", "empty"),
    (".", "empty"),
    ("x" * (MAX_TACTIC_CHARS + 1), "longer"),
    ("2: Qed", "vernacular"),
    # the issue-10 lexer mismatches: Coq's lexer ends these sentences early
    ("pose (m := 0)... Axiom plus_n_O : ltac:(do 3000000 idtac; exact False)", "more than one sentence"),
    ('idtac (* "(*" *). Admitted. (* "*)" *)', "more than one sentence"),
    ("idtac.\rAdmitted", "control"),
    ('idtac (* "never closed *)', "unterminated string"),
]


@pytest.mark.parametrize(("text", "why"), REJECTED)
def test_rejects_everything_but_one_tactic(text, why):
    with pytest.raises(InvalidTactic) as info:
        validate_tactic(text)
    assert why in str(info.value)


def test_non_string_is_rejected():
    with pytest.raises(InvalidTactic):
        validate_tactic(None)  # type: ignore[arg-type]


def test_recheck_drops_every_timeout() -> None:
    from llemma_prover.backends.coq.recheck import without_timeout

    assert without_timeout("timeout 2 (intros; nra)") == "intros; nra"
    assert without_timeout("timeout 3 (destruct n as [|[|n]]; simpl in *; lia)") == (
        "destruct n as [|[|n]]; simpl in *; lia"
    )
    # not one wrapper around the whole tactic: the keyword and its number go, the argument stays
    for t, stripped in (("timeout 2 (a); (b)", "(a); (b)"), ("timeout 2 (a) ; lia", "(a) ; lia"),
                        ("intros", "intros"), ("idtac; timeout 2 (lia)", "idtac; (lia)"),
                        ('timeout 2 (idtac "(")', '(idtac "(")'), ("timeout 2 (a (* ) *))", "(a (* ) *))")):
        assert without_timeout(t) == stripped
        assert validate_tactic(stripped) == stripped  # a parenthesised tactic is one
