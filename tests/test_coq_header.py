"""``prepare_header``: the mechanical Rocq 9 -> Coq 8.16 fixes (unit tests + real coqc checks)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from llemma_prover.backends.coq.header import (
    AUTOMATION_IMPORTS,
    COQUELICOT_COMPAT,
    needs_coquelicot_compat,
    prepare_header,
    rename_rocq_libraries,
)

REPO = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    from conftest import data_dir as found

    return found()


def load_coq(split: str) -> dict[str, dict]:
    path = data_dir() / "coq" / f"{split}.jsonl"
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path}")
    with open(path, encoding="utf-8") as fh:
        return {r["name"]: r for r in map(json.loads, filter(str.strip, fh))}


# -- unit tests -----------------------------------------------------------------------------------


def test_from_stdlib_becomes_from_coq() -> None:
    h = "Require Import Reals.\nFrom Stdlib Require Import Qreals.\nFrom  Rocq  Require Import Lia.\n"
    out = rename_rocq_libraries(h)
    assert "From Coq Require Import Qreals." in out
    assert "From  Coq  Require Import Lia." in out
    assert "Stdlib" not in out and "Rocq" not in out


def test_qualified_rocq_names_become_coq() -> None:
    h = "Require Import Stdlib.Reals.Reals.\nRequire Export Corelib.Init.Nat.\nImport Stdlib.Lists.List.\n"
    assert rename_rocq_libraries(h) == (
        "Require Import Coq.Reals.Reals.\nRequire Export Coq.Init.Nat.\nImport Coq.Lists.List.\n"
    )


def test_renaming_leaves_non_import_text_alone() -> None:
    h = "Require Import Reals.\n(* see Stdlib.Reals for details *)\nDefinition MyStdlib.x := 1.\n"
    assert rename_rocq_libraries(h) == h


def test_coquelicot_compat_only_when_required() -> None:
    plain = "Require Import Reals.\nOpen Scope R_scope.\n"
    assert not needs_coquelicot_compat(plain)
    assert COQUELICOT_COMPAT not in prepare_header(plain)
    for h in (
        "Require Import Reals.\nRequire Import Coquelicot.Coquelicot.\nOpen Scope C_scope.\n",
        "Require Import Reals.\nFrom Coquelicot Require Import Coquelicot.\n",
    ):
        assert needs_coquelicot_compat(h)
        out = prepare_header(h)
        # appended after the header (the notations need Coquelicot loaded) ...
        assert out.endswith(COQUELICOT_COMPAT)
        assert 'Notation "x ^ n" := (@Coquelicot.Hierarchy.pow_n Coquelicot.Complex.C_Ring x n)' in out
        assert "Arguments Coquelicot.Complex.Cmod _%C." in out
        assert "Arguments Coquelicot.Complex.Cmult _%C _%C." in out
        # ... and the original header is kept verbatim before it
        assert h in out
    # a comment that merely mentions Coquelicot does not trigger it
    assert not needs_coquelicot_compat("(* no Coquelicot here *)\nRequire Import Reals.\n")
    assert not needs_coquelicot_compat("(* Require Import Coquelicot.Coquelicot. *)\nRequire Import Reals.\n")


#: headers that import parts of Coquelicot (as PutnamBench's Coq files do): (header, gets the block)
PARTIAL_COQUELICOT = [
    ("From Coquelicot Require Import Derive.\n", False),
    ("From Coquelicot Require Import Hierarchy Rcomplements.\n", False),
    ("Require Import Coquelicot.Derive Coquelicot.RInt.\n", False),
    ("From Coquelicot Require Complex.\n", False),  # required, not imported: no C_scope to extend
    ("From Coquelicot Require Import Complex.\n", True),
    ("Require Import Coquelicot.Complex.\n", True),
    ("From Coquelicot Require Import Derive Complex.\n", True),
    ("Require Export Coquelicot.Coquelicot.\n", True),
]


@pytest.mark.parametrize(("imports", "expected"), PARTIAL_COQUELICOT)
def test_coquelicot_compat_only_for_the_complex_numbers(imports: str, expected: bool) -> None:
    assert needs_coquelicot_compat("Require Import Reals.\n" + imports) is expected


@pytest.mark.coq
@pytest.mark.parametrize(("imports", "expected"), PARTIAL_COQUELICOT)
def test_partial_coquelicot_headers_compile(tmp_path: Path, imports: str, expected: bool) -> None:
    """Every such header compiles once prepared (the old rule appended the block to all of them, and
    ``pow_n``/``C_Ring`` were not found where ``Hierarchy``/``Complex`` were not imported)."""
    if shutil.which("coqc") is None:
        pytest.skip("coqc not installed")
    header = prepare_header("Require Import Reals.\n" + imports)
    assert (COQUELICOT_COMPAT in header) is expected
    ok, log = coqc_ok(tmp_path, header + "\nTheorem t : True.\nProof.\nexact I.\nQed.\n")
    assert ok, log[-2000:]
    if expected:  # the notations work: the power of a complex number parses in C_scope
        stmt = "Theorem u : forall z : C, (z ^ 2 = z * z)%C.\nProof.\nAdmitted.\n"
        ok, log = coqc_ok(tmp_path, header + stmt)
        assert ok, log[-2000:]


def test_automation_imports_prepended_header_kept_in_order() -> None:
    h = "Require Import Arith.\nDefinition f (n : nat) := n + 1.\nOpen Scope nat_scope.\n"
    out = prepare_header(h)
    assert out.startswith(AUTOMATION_IMPORTS)
    assert "From Coq Require Import Lia Lra Psatz Ring Field" in out
    assert out[len(AUTOMATION_IMPORTS) :] == h


def test_prepare_header_is_idempotent() -> None:
    for h in (
        "",
        "Require Import Reals.\n",
        "From Stdlib Require Import Qreals.\nRequire Import Coquelicot.Coquelicot.\nOpen Scope C_scope.",
    ):
        once = prepare_header(h)
        assert prepare_header(once) == once


def test_every_benchmark_header_is_free_of_rocq_names() -> None:
    for split in ("test", "valid"):
        for rec in load_coq(split).values():
            out = prepare_header(rec["header"])
            assert "From Stdlib" not in out and "Require Import Stdlib." not in out, rec["name"]
            assert out.count(AUTOMATION_IMPORTS) == 1


# -- real coqc -------------------------------------------------------------------------------------

#: problems that do not type-check as written and do after ``prepare_header``
#: (two ``From Stdlib`` headers, three complex-number statements that need the Coquelicot notations)
NEEDS_FIXES = {
    "test": [
        "algebra_apbmpcneq0_aeq0anbeq0anceq0",
        "amc12a_2021_p18",
        "amc12a_2020_p15",
        "mathd_algebra_302",
    ],
    "valid": ["algebra_2rootspoly_apatapbeq2asqp2ab"],
}


def coqc_ok(tmp_path: Path, text: str) -> tuple[bool, str]:
    path = tmp_path / "Stmt.v"
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        ["coqc", "-q", path.name], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    return proc.returncode == 0, proc.stderr + proc.stdout


@pytest.mark.coq
@pytest.mark.parametrize("split,name", [(s, n) for s, names in NEEDS_FIXES.items() for n in names])
def test_statements_that_need_fixes_typecheck_after_prepare(tmp_path: Path, split: str, name: str) -> None:
    if shutil.which("coqc") is None:
        pytest.skip("coqc not installed")
    rec = load_coq(split)[name]
    body = "\n" + rec["statement"] + "\nProof.\nAdmitted.\n"
    ok_raw, _ = coqc_ok(tmp_path, rec["header"] + body)
    assert not ok_raw, f"{name} type-checks as written: it no longer demonstrates a fix"
    ok, log = coqc_ok(tmp_path, prepare_header(rec["header"]) + body)
    assert ok, f"{name} does not type-check after prepare_header:\n{log[-2000:]}"


@pytest.mark.coq
def test_automation_imports_make_lia_and_lra_available(tmp_path: Path) -> None:
    """A header without Lia/Lra imports: the bank's tactics work only after ``prepare_header``."""
    if shutil.which("coqc") is None:
        pytest.skip("coqc not installed")
    header = "Require Import Reals.\nOpen Scope R_scope.\n"
    body = "\nTheorem t : forall x : R, 0 < x -> 0 < 2 * x.\nProof.\nintros; lra.\nQed.\n"
    ok_raw, log_raw = coqc_ok(tmp_path, header + body)
    assert not ok_raw and "lra" in log_raw
    ok, log = coqc_ok(tmp_path, prepare_header(header) + body)
    assert ok, log
