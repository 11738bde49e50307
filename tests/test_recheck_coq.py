"""The final check on its own (``backends/coq/recheck.py``), fed hand-written hostile proof files.

Each file is given to ``Rechecker.check_file`` directly, as if the step layer and our validator had
both been fooled into letting it through: the verdict must come from coqc + coqchk + the proof-free
identity files alone. Every hostile file below compiles with ``coqc`` (checked), so each is refused
by the kernel-level steps, not by a compile error. Honest proofs are accepted (the check can say yes).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from llemma_prover.backends.coq.header import prepare_header
from llemma_prover.backends.coq.recheck import (
    CHECK_MODULE,
    BatchItem,
    Rechecker,
    _assumption_answers,
    parse_coqchk,
    proof_file,
    split_assumptions,
)
from llemma_prover.backends.sandbox import Sandbox

pytestmark = pytest.mark.coq

#: a light header (no real numbers: each check compiles in well under a second) with a parameter, an
#: axiom and a definition of its own
HEADER = (
    "Parameter floor : nat -> nat.\n"
    "Axiom floor_spec : forall n : nat, floor n <= n.\n"
    "Definition g (n : nat) := S n.\n"
)
FALSE = "Theorem thm (n : nat) : g n = n."  # false: g n = S n
TRUE = "Theorem thm (n : nat) (h : n = 1) : g n = 2."
TRUE_PROOF = "unfold g; subst; reflexivity."
NAT_HEADER = ""
NAT_FALSE = "Theorem thm : 1 = 2."
#: the real thing: a prepared miniF2F-style header on the real numbers
REAL_HEADER = prepare_header(
    "Require Import Coq.Reals.Reals.\nOpen Scope R_scope.\nDefinition gr (x : R) := x + 1.\n"
)

#: a prepared real-number header without objects of its own (identity 4b)
REAL_HEADER_NO_OBJECTS = prepare_header("Require Import Coq.Reals.Reals.\nOpen Scope R_scope.\n")

#: (label, header, statement, everything after ``Proof.``): every one must be refused
HOSTILE: list[tuple[str, str, str, str]] = [
    ("Admitted", NAT_HEADER, NAT_FALSE, "Admitted."),
    (
        "Abort, then the name re-declared with another statement",
        NAT_HEADER,
        NAT_FALSE,
        "Abort.\nTheorem thm : 1 = 1.\nProof. reflexivity. Qed.",
    ),
    (
        "Admitted, shadowed by a module theorem of the same name",
        NAT_HEADER,
        NAT_FALSE,
        "Admitted.\nModule M. Theorem thm : 1 = 1. Proof. reflexivity. Qed. End M.\nImport M.",
    ),
    (
        "Abort, a smuggled axiom with a stdlib theorem's short name",
        NAT_HEADER,
        NAT_FALSE,
        "Abort.\nAxiom plus_n_O : 1 = 2.\nTheorem thm : 1 = 2.\nProof. exact plus_n_O. Qed.",
    ),
    (
        "Abort, an axiom in a module, the statement re-proved from it",
        NAT_HEADER,
        NAT_FALSE,
        "Abort.\nModule X. Axiom cheat : 1 = 2. End X.\nTheorem thm : 1 = 2.\nProof. exact X.cheat. Qed.",
    ),
    (
        "Unset Guard Checking + unguarded fix",
        NAT_HEADER,
        NAT_FALSE,
        "Unset Guard Checking.\nexact ((fix f (n : nat) : 1 = 2 := f n) 0).\nQed.",
    ),
    (
        "Unset Positivity Checking + a negative inductive",
        NAT_HEADER,
        NAT_FALSE,
        "Abort.\nUnset Positivity Checking.\nInductive bad := C : (bad -> False) -> bad.\n"
        "Set Positivity Checking.\nDefinition h (b : bad) : False := match b with C f => f b end.\n"
        "Theorem thm : 1 = 2.\nProof. exact (False_ind _ (h (C h))). Qed.",
    ),
    (
        "type-in-type anywhere in the library",
        HEADER,
        TRUE,
        TRUE_PROOF + "\nQed.\nUnset Universe Checking.\nDefinition T := Type : Type.",
    ),
    (
        "fake 'Closed under the global context' printed, then Admitted",
        NAT_HEADER,
        NAT_FALSE,
        'idtac "Closed under the global context".\nAdmitted.',
    ),
    (
        "fake coqchk summary printed, then Admitted",
        NAT_HEADER,
        NAT_FALSE,
        'idtac "CONTEXT SUMMARY".\nidtac "* Axioms: <none>".\nAdmitted.',
    ),
    (
        "Reset Initial, header definition redefined, statement re-proved",
        HEADER,
        FALSE,
        "Reset Initial.\n"
        + HEADER.replace("Definition g (n : nat) := S n.", "Definition g (n : nat) := n.")
        + FALSE
        + "\nProof. reflexivity. Qed.",
    ),
    (
        "Abort, a different (true) statement under the same name",
        HEADER,
        FALSE,
        "Abort.\nTheorem thm (n : nat) : g n = S n.\nProof. reflexivity. Qed.",
    ),
    (
        "Abort, fake module named like a library, statement re-proved with it",
        HEADER,
        FALSE,
        "Abort.\nModule Datatypes. Definition g (n : nat) := n. End Datatypes.\n"
        "Theorem thm (n : nat) : Datatypes.g n = n.\nProof. reflexivity. Qed.",
    ),
    (
        "the header axiom abused: a new constant proved from a new axiom",
        HEADER,
        FALSE,
        "Abort.\nAxiom floor_spec' : forall n : nat, g n = n.\nTheorem thm (n : nat) : g n = n.\n"
        "Proof. apply floor_spec'. Qed.",
    ),
    (
        "an extra library (plugin) loaded after the proof",
        HEADER,
        TRUE,
        TRUE_PROOF + "\nQed.\nFrom Coq Require Import extraction.Extraction.",
    ),
    ("an extra declaration after the proof", HEADER, TRUE, TRUE_PROOF + "\nQed.\nDefinition extra := 0."),
    # a header without objects of its own: identity 4b (the proof's type against the trusted statement)
    (
        "an extra plugin loaded after the proof, header without objects",
        NAT_HEADER,
        "Theorem thm : 1 = 1.",
        "reflexivity.\nQed.\nFrom Coq Require Import extraction.Extraction.",
    ),
    (
        "Abort, the name re-declared with a convertible but different statement",
        NAT_HEADER,
        "Theorem thm : 2 = 2.",
        "Abort.\nTheorem thm : 1 + 1 = 2.\nProof. reflexivity. Qed.",
    ),
]


@pytest.fixture(scope="module", params=["fast", "reference"])
def rechecker(request: pytest.FixtureRequest) -> Iterator[Rechecker]:
    """Each identity path on its own: "fast" (4b; an undecided check is a refusal, no fallback) and
    "reference" (4a). Headers with objects of their own go to 4a in both."""
    r = Rechecker(sandbox=Sandbox.detect(), identity=request.param)
    yield r
    r.close()


def _file(header: str, statement: str, rest: str) -> str:
    return header.rstrip("\n") + "\n" + statement + "\nProof.\n" + rest + "\n"


def _compiles(text: str, tmp: Path) -> bool:
    (tmp / f"{CHECK_MODULE}.v").write_text(text, encoding="utf-8")
    r = subprocess.run(["coqc", "-q", f"{CHECK_MODULE}.v"], cwd=tmp, capture_output=True, timeout=300)
    return r.returncode == 0


CLASSIC_HEADER = "Require Import Coq.Logic.Classical.\n"
CLASSIC = "Theorem thm (P : Prop) : P \\/ ~ P."
#: (label, compile header, statement, tactics, audit header or None, an axiom the proof must list or None)
HONEST: list[tuple[str, str, str, list[str], str | None, str | None]] = [
    # the proof uses the real numbers' axioms, named by Coq (Print Assumptions in a proof-free file)
    ("reals", REAL_HEADER, "Theorem thm (x : R) (h : x = 1) : gr x = 2.", ["unfold gr; subst; lra"], None,
     "ClassicalDedekindReals.sig_forall_dec"),
    ("no axiom", HEADER, TRUE, [TRUE_PROOF.rstrip(".")], None, None),
    # a header axiom used honestly is allowed (its kernel name is the header library's)
    ("header axiom", HEADER, "Theorem thm : floor 0 <= 0.", ["exact (floor_spec 0)"], None,
     f"{CHECK_MODULE}.floor_spec"),
    # the compile header brings classic in: allowed when no other audit header is named
    ("classic from the header", CLASSIC_HEADER, CLASSIC, ["apply classic"], None,
     "Classical_Prop.classic"),
    # an audit header that brings fewer axioms accepts a proof that uses none
    ("audit header, no axiom", CLASSIC_HEADER, "Theorem thm : 1 + 1 = 2.",
     ["reflexivity"], NAT_HEADER, None),
]


@pytest.mark.parametrize("case", HONEST, ids=[c[0] for c in HONEST])
def test_honest_proofs_are_accepted(
    rechecker: Rechecker, case: tuple[str, str, str, list[str], str | None, str | None]
) -> None:
    _, header, statement, tactics, audit_header, axiom = case
    ok = rechecker.check(
        header=header, statement=statement, tactics=tactics, name="thm", timeout=300,
        audit_header=audit_header,
    )
    assert ok.ok, ok.message
    assert ok.checker == "coqchk" and ok.bad_axioms == ()
    assert axiom is None or axiom in ok.axioms, ok.axioms


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_proof_files_are_refused(
    rechecker: Rechecker, case: tuple[str, str, str, str], tmp_path: Path
) -> None:
    label, header, statement, rest = case
    text = _file(header, statement, rest)
    # the attack is real: coqc alone accepts the file (so only the kernel-level steps can refuse it)
    assert _compiles(text, tmp_path), label
    # the kernel-level steps alone (as if Coq's structure parse had been fooled too)
    res = rechecker.check_file(
        text, header=header, statement=statement, name="thm", timeout=300, parse_structure=False
    )
    assert not res.ok, f"{label}: accepted"
    assert res.checker == "coqchk" and not res.message.startswith("not header"), res.message


STRUCTURE_CASES = [
    c for c in HOSTILE if c[0].startswith(("Admitted, shadowed", "Reset Initial", "Unset Guard"))
]


@pytest.mark.parametrize("case", STRUCTURE_CASES, ids=[c[0] for c in STRUCTURE_CASES])
def test_structure_by_coqs_parser_refuses_vernacular_lines(
    rechecker: Rechecker, case: tuple[str, str, str, str]
) -> None:
    """Step 0 (coqidetop, nothing executed) refuses a file whose lines are not tactic sentences."""
    label, header, statement, rest = case
    text = _file(header, statement, rest)
    res = rechecker.check_file(text, header=header, statement=statement, name="thm", timeout=300)
    assert not res.ok and res.message.startswith("not header + statement + Proof."), (label, res.message)


def test_structure_accepts_selectors_and_multiline_tactics(rechecker: Rechecker) -> None:
    statement = "Theorem thm : True /\\ 1 = 1."
    tactics = ["split", "2: reflexivity", "all:\n  exact I"]
    res = rechecker.check(header=NAT_HEADER, statement=statement, tactics=tactics, name="thm", timeout=300)
    assert res.ok, res.message


def test_audit_header_judges_axioms_by_the_problems_own_header(rechecker: Rechecker) -> None:
    # the same proof as HONEST's "classic from the header", judged by a header without classic
    uses_classic = rechecker.check(
        header=CLASSIC_HEADER,
        statement=CLASSIC,
        tactics=["apply classic"],
        name="thm",
        timeout=300,
        audit_header=NAT_HEADER,
    )
    assert not uses_classic.ok and any("classic" in a for a in uses_classic.bad_axioms), uses_classic


def test_huge_output_fails_fast(rechecker: Rechecker) -> None:
    """A proof that prints without end is killed at the output cap, long before the deadline."""
    flood = 'do 100000000 idtac "' + "x" * 200 + '"; exact I'
    t0 = time.monotonic()
    res = rechecker.check(
        header=NAT_HEADER, statement="Theorem thm : True.", tactics=[flood], name="thm", timeout=250
    )
    assert not res.ok and "printed more than" in res.message, res.message
    assert time.monotonic() - t0 < 120


def test_invalid_tactic_is_refused_before_any_process(rechecker: Rechecker) -> None:
    res = rechecker.check(
        header=NAT_HEADER, statement=NAT_FALSE, tactics=["admit. Qed"], name="thm", timeout=10
    )
    assert not res.ok and res.message.startswith("rejected")
    assert proof_file("", "Theorem t : True.", ["exact I", "2: idtac."]) == (
        "\nTheorem t : True.\nProof.\n( exact I\n).\n2: ( idtac\n).\nQed.\n"
    )


def test_parse_coqchk_fails_closed() -> None:
    good = (
        "\nCONTEXT SUMMARY\n===============\n\n* Theory: Set is predicative\n  \n* Axioms:\n    A.b\n  \n"
        "* Constants/Inductives relying on type-in-type: <none>\n  \n"
        "* Constants/Inductives relying on unsafe (co)fixpoints: <none>\n  \n"
        "* Inductives whose positivity is assumed: <none>\n  \n"
    )
    report = parse_coqchk(good)
    assert report is not None and report.axioms == ("A.b",) and report.unsafe == ()
    assert parse_coqchk("Closed under the global context") is None
    assert parse_coqchk(good.replace("* Axioms:", "* Axioms: <none>\n* Axioms:")) is None  # twice
    assert parse_coqchk(good.replace("* Theory", "* Something new: x\n* Theory")) is None
    assert parse_coqchk(good.replace("    A.b", "    A.b extra")) is None
    assert parse_coqchk(good.replace("* Inductives whose positivity is assumed: <none>\n", "")) is None


def test_split_assumptions() -> None:
    assert split_assumptions("a\nb\nClosed under the global context\n") == ("a\nb", ())
    assert split_assumptions("a\nAxioms:\nX.y : nat\nZ : Prop\n") == ("a", ("X.y", "Z"))
    assert split_assumptions("a\nAxioms:\n")[1] is None
    assert split_assumptions("Closed under the global context\nmore")[1] is None
    assert split_assumptions("nothing")[1] is None


def test_batch_shares_the_kernel_steps_and_decides_as_check_does() -> None:
    """``check_batch``: one coqchk and one identity file for the proofs of a header; the verdicts and
    the axioms listed are those of ``check`` one by one; a proof that fails takes nothing with it."""
    reals = REAL_HEADER_NO_OBJECTS
    items = [
        BatchItem(reals, "Theorem thm (x : R) (h : x = 1) : x + 1 = 2.", ("subst; lra",), "thm"),
        BatchItem(NAT_HEADER, "Theorem thm : 1 + 1 = 2.", ("reflexivity",), "thm"),
        BatchItem(NAT_HEADER, "Theorem thm : 1 = 2.", ("reflexivity",), "thm"),  # false: coqc refuses
        BatchItem(NAT_HEADER, "Theorem other (n : nat) : n + 0 = n.", ("intro n", "lia"), "other"),
        BatchItem(reals, "Theorem thm (x : R) : x * 1 = x.", ("intros; ring",), "thm"),
        BatchItem(HEADER, TRUE, (TRUE_PROOF.rstrip("."),), "thm"),  # header with objects: 4a
    ]
    r = Rechecker(sandbox=Sandbox.detect())
    try:
        batch = r.check_batch(items, timeout=600)
        assert [v.ok for v in batch] == [True, True, False, False, True, True], [v.message for v in batch]
        assert "lia" in batch[3].message or "coqc" in batch[3].message  # lia is not loaded: a compile error
        assert r.times["fast"] == 3 and r.times["reference"] == 1, r.times  # nothing fell back to one by one
        one_by_one = [
            r.check(header=it.header, statement=it.statement, tactics=it.tactics, name=it.name, timeout=300)
            for it in items
        ]
        assert [v.ok for v in one_by_one] == [v.ok for v in batch]
        assert [v.axioms for v in one_by_one] == [v.axioms for v in batch]
        assert "ClassicalDedekindReals.sig_forall_dec" in batch[0].axioms
    finally:
        r.close()


def test_batch_audits_headers_that_allow_the_same_axioms_with_one_coqchk() -> None:
    """Across headers that allow the same axioms, one ``coqchk`` audits every library (one identity
    file per header); a coqchk that fails for the partition is run again per header, so a header whose
    libraries are clean keeps its passes and the guilty one is decided on its own."""
    other_nat = "Require Import Bool.\n"  # another header whose library allows no axiom
    items = [
        BatchItem(NAT_HEADER, "Theorem thm : 1 + 1 = 2.", ("reflexivity",), "thm"),
        BatchItem(other_nat, "Theorem thm (n : nat) : n + 0 = n.", ("rewrite <- plus_n_O", "reflexivity"),
                  "thm"),
        BatchItem(other_nat, "Theorem thm2 : 2 * 3 = 6.", ("reflexivity",), "thm2"),
    ]
    r = Rechecker(sandbox=Sandbox.detect())
    calls: list[int] = []
    real = r._coqchk_many
    r._coqchk_many = lambda workdir, libs: (calls.append(len(libs)), real(workdir, libs))[1]  # type: ignore[method-assign]
    try:
        batch = r.check_batch(items, timeout=600)
        assert [v.ok for v in batch] == [True, True, True], [v.message for v in batch]
        assert calls == [3], calls  # both headers allow nothing: one coqchk for all three proofs
        assert r.times["fast"] == 3, r.times
        assert r.header_facts(other_nat, time.monotonic() + 60).allowed_axioms == frozenset()

        # A Reals proof among them whose header is said to allow nothing either (as a proof that used an
        # axiom its header does not allow would look): the partition's coqchk fails, each header is
        # audited alone, the nat proofs still pass and the real one is refused by ``check`` alone.
        reals = REAL_HEADER_NO_OBJECTS
        r.header_facts(reals, time.monotonic() + 120)
        r._headers[reals] = replace(r._headers[reals], allowed_axioms=frozenset())
        calls.clear()
        real_item = BatchItem(reals, "Theorem thm (x : R) (h : x = 1) : x + 1 = 2.", ("subst; lra",), "thm")
        mixed = [*items, real_item]
        batch = r.check_batch(mixed, timeout=600)
        assert [v.ok for v in batch] == [True, True, True, False], [v.message for v in batch]
        refused = batch[3]
        assert "does not bring in" in refused.message, refused
        assert "sig_forall_dec" in " ".join(refused.bad_axioms), refused
        assert calls[:4] == [4, 1, 2, 1], calls  # the partition, then each header alone
    finally:
        r.close()


def test_a_headers_proofs_are_compiled_together_and_none_leans_on_another() -> None:
    """The proofs of one header go through one ``coqc`` (each theorem in a module of its own) with the
    verdicts and axioms of ``check``; a proof that names another proof's theorem does not compile
    there (the modules are not imported and their names are random) nor alone, and a proof that does
    not compile sends the rest to be compiled alone, where the honest ones pass."""
    reals = REAL_HEADER_NO_OBJECTS
    honest = [
        BatchItem(reals, "Theorem helper (x : R) (h : x = 1) : x + 1 = 2.", ("intros; subst; lra",),
                  "helper"),
        BatchItem(reals, "Theorem thm (x : R) : x * 1 = x.", ("intros; ring",), "thm"),
    ]
    leaning = BatchItem(reals, "Theorem other (y : R) (h : y = 1) : y + 1 = 2.", ("exact helper",), "other")
    r = Rechecker(sandbox=Sandbox.detect())
    units: list[tuple[bool, int]] = []  # (together, proofs) of each compile plan made
    real = r._units

    def spy(root: str, header: str, texts: dict[int, str], together: bool):  # type: ignore[no-untyped-def]
        units.append((together, len(texts)))
        return real(root, header, texts, together)

    r._units = spy  # type: ignore[method-assign]
    try:
        batch = r.check_batch(honest, timeout=600)
        assert [v.ok for v in batch] == [True, True], [v.message for v in batch]
        assert units == [(True, 2)] and r.times["checks"] == 0, (units, r.times)  # one compile
        for it, v in zip(honest, batch, strict=True):
            alone = r.check(header=it.header, statement=it.statement, tactics=it.tactics, name=it.name,
                            timeout=300)
            assert alone.ok and alone.axioms == v.axioms

        units.clear()
        batch = r.check_batch([honest[0], leaning, honest[1]], timeout=600)
        assert [v.ok for v in batch] == [True, False, True], [v.message for v in batch]
        assert units == [(True, 3), (False, 3)]  # the together compile failed: each compiled alone
        assert "coqc" in batch[1].message and "helper" in batch[1].message, batch[1].message
    finally:
        r.close()


def test_the_step0_parser_keeps_its_process_across_headers_and_no_grammar_leaks() -> None:
    """Step 0's coqidetop loads the prelude once and each header's sentences on it: a header change
    goes back to the shared sentences (``Edit_at``), so what one header added to the grammar is gone
    for the next (``zap !`` parses only with the first header's notation)."""
    with_notation = prepare_header('Tactic Notation "zap" "!" := idtac.\n')
    plain = prepare_header("Require Import Arith.\n")
    r = Rechecker(sandbox=Sandbox.detect())
    try:
        ok = r.check(header=with_notation, statement="Theorem t : True.", tactics=("zap !", "exact I"),
                     name="t", timeout=300)
        assert ok.ok, ok.message
        (parser,) = r._parsers.values()
        pid = parser.ide.proc.pid
        fine = r.check(header=plain, statement="Theorem t : 1 + 1 = 2.", tactics=("reflexivity",), name="t",
                       timeout=300)
        assert fine.ok, fine.message
        (parser,) = r._parsers.values()
        assert parser.ide.proc.pid == pid  # the same process, another header
        bad = r.check(header=plain, statement="Theorem t : True.", tactics=("zap !", "exact I"), name="t",
                      timeout=300)
        assert not bad.ok and "parser" in bad.message, bad.message  # refused by step 0, not by coqc
        assert not r._parsers  # a parser that refused a file is not kept
    finally:
        r.close()


def test_assumption_answers() -> None:
    out = "Loaded ML Modules: a\n\nAxioms:\nX.y : nat\nClosed under the global context\nAxioms:\nZ : Prop\n"
    start, answers = _assumption_answers(out, 3) or (0, [])
    assert answers == [("X.y",), (), ("Z",)] and out[:start].endswith("Loaded ML Modules: a\n")
    assert _assumption_answers(out, 4) is None  # the plugin list is not an answer
    assert _assumption_answers("Axioms:\nno colon here\n", 1) is None
    assert _assumption_answers("Closed under the global context\nextra\n", 1) is None


def test_prefetch_computes_a_headers_facts_ahead_and_leaves_a_broken_header_to_the_check() -> None:
    """``prefetch`` (what the prove run's checker does while no batch is due): the facts are there before
    the batch, which then computes none; a header that does not compile raises nothing there and is
    refused by the check itself."""
    r = Rechecker(sandbox=Sandbox.detect())
    try:
        r.prefetch(NAT_HEADER, time.monotonic() + 120)
        assert NAT_HEADER in r._headers
        spent = r.times["header"]
        (ok,) = r.check_batch([BatchItem(NAT_HEADER, "Theorem thm : 1 + 1 = 2.", ("reflexivity",), "thm")],
                              timeout=300)
        assert ok.ok and r.times["header"] == spent, (ok.message, r.times)
        broken = "Require Import NoSuchLibraryAnywhere.\n"
        r.prefetch(broken, time.monotonic() + 120)
        assert broken not in r._headers
        (bad,) = r.check_batch([BatchItem(broken, "Theorem thm : True.", ("exact I",), "thm")], timeout=300)
        assert not bad.ok and "header" in bad.message, bad.message
    finally:
        r.close()
