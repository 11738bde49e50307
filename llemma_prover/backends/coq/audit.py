"""The vacuity audit's probes on Coq: the statement's structure is read by Coq, never by our text.

A probe is a proof search on the **original statement** (same name, same text) under the original
header plus the Ltac definitions below, with the first step fixed to ``llemma_probe.`` (the search's
``root_tactic``); the header says what ``llemma_probe`` does:

* ``vacuous`` -- ``llemma_vacuous``: Coq's ``lazymatch`` walks the goal's type ``T`` through
  ``forall``/``->`` and ``exists`` and builds ``T'``, the same type with the final conclusion replaced
  by ``False`` (binders renamed apart, so no name is captured); then ``cut T'`` and a generic
  weakening (``T' -> T``: introduce, specialise, destruct the witnesses, ``False_ind``) leave ``T'`` as
  the only goal. A proof therefore shows that the statement holds whatever its conclusion says.
  A conclusion that already is ``False``, ``~ P`` or ``P -> False`` makes ``llemma_vacuous`` fail:
  there ``T' = T`` and the probe would flag every honest negative statement, so such statements are
  judged by ``inconsistent`` alone.
* ``inconsistent`` -- ``llemma_inconsistent``: ``intro`` as long as the goal is a product that is not
  a negation (the same stopping rule), then ``exfalso``: ``False`` from the hypotheses alone.

Whatever the search finds after ``llemma_probe.`` is a proof of the original statement, re-checked by
the independent check like any proof (``coqc`` + ``coqchk`` + identity against the original
statement); the Ltac definitions add no axiom and no definition to the environment. A flag is raised
only for a checked proof whose first step is ``llemma_probe.``.

``WITNESS_TACTICS``: the witness family the audit adds to the bank (``exists 0``/``1`` at ``nat``,
``Z``, ``R``; ``eexists``; ``llemma_witness``, a value read off a hypothesis ``a = b`` or a variable of
the witness's type). Not in the default bank: it was chosen for the audit only.
"""

from __future__ import annotations

import dataclasses

from ...core.types import Theorem

__all__ = ["PROBE_LTAC", "PROBES", "ROOT_TACTIC", "WITNESS_TACTICS", "probe_theorem"]

#: the search's first step in every probe (``GeneratorConfig.root_tactic``)
ROOT_TACTIC = "llemma_probe."

#: probe name -> the Ltac that ``llemma_probe`` runs
PROBES: dict[str, str] = {"vacuous": "llemma_vacuous", "inconsistent": "llemma_inconsistent"}

PROBE_LTAC = """\
(* llemma-prover audit probes: tactics only (no definitions, no axioms) *)
Ltac llemma_conclusion_false T :=
  lazymatch T with
  | False => fail 1 "llemma audit: the conclusion already is False"
  | ~ _ => fail 1 "llemma audit: the conclusion is a negation"
  | _ -> False => fail 1 "llemma audit: the conclusion is a negation"
  | forall y : ?A, @?B y =>
      let x := fresh "llemma_x" in
      constr:(forall x : A, ltac:(let b := eval cbv beta in (B x) in
                                  let v := llemma_conclusion_false b in exact v))
  | exists y : ?A, @?B y =>
      let x := fresh "llemma_x" in
      constr:(exists x : A, ltac:(let b := eval cbv beta in (B x) in
                                  let v := llemma_conclusion_false b in exact v))
  | _ => constr:(False)
  end.
Ltac llemma_weaken H :=
  lazymatch goal with
  | |- forall _, _ => let x := fresh "x" in intro x; specialize (H x); llemma_weaken H
  | |- exists _, _ => let x := fresh "w" in let H' := fresh "H" in
                      destruct H as [x H']; exists x; llemma_weaken H'
  | |- _ => exact (False_ind _ H)
  end.
Ltac llemma_vacuous :=
  lazymatch goal with
  | |- ?T => let v := llemma_conclusion_false T in
             cut v; [let H := fresh "Hvac" in intro H; llemma_weaken H | idtac]
  end.
Ltac llemma_inconsistent :=
  repeat lazymatch goal with
  | |- False => fail
  | |- ~ _ => fail
  | |- _ -> False => fail
  | |- forall _, _ => intro
  end; exfalso.
Ltac llemma_witness :=
  match goal with
  | H : ?a = ?b |- exists _ : ?T, _ => first [exists b | exists a]
  | x : ?T |- exists _ : ?T, _ => exists x
  end.
"""

WITNESS_TACTICS: tuple[str, ...] = (
    "exists 0%Z.", "exists 1%Z.", "exists 0%nat.", "exists 1%nat.", "exists 0%R.", "exists 1%R.",
    "eexists.", "llemma_witness.",
)


def probe_header(header: str, probe: str) -> str:
    """``header`` + the probe tactics + ``Ltac llemma_probe := <the probe>.``"""
    body = header if header.endswith("\n") or not header else header + "\n"
    return f"{body}{PROBE_LTAC}Ltac llemma_probe := {PROBES[probe]}.\n"


def probe_theorem(theorem: Theorem, probe: str) -> Theorem:
    """The theorem the ``probe`` search runs on: same statement, the probe header, name
    ``<name>.<probe>`` (the record's key; the Coq name stays the statement's)."""
    return dataclasses.replace(theorem, name=f"{theorem.name}__{probe}",
                               header=probe_header(theorem.header, probe))
