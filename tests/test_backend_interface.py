"""What callers ask of a backend, answered without constructing it (issue 11: the interface is wide
enough that no caller branches on a backend's name), through its parts (``backends/parts.py``). Pure: no
prover runs."""

from __future__ import annotations

import pytest

from llemma_prover.backends.base import (
    ProverBackend,
    backend_class,
    data_hooks,
    proof_dialect,
    sketch_dialect,
)
from llemma_prover.backends.sketch import Sketch, SketchError
from llemma_prover.core.config import BACKENDS, DATA_SYSTEM
from llemma_prover.core.types import Theorem
from llemma_prover.doctor.runner import backend_checks

THEOREMS = {
    "coq": Theorem("t", "test", "coq", "Require Import Arith.", "Theorem t : 1 + 1 = 2."),
    "lean4": Theorem("t", "test", "lean4", "import Mathlib", "theorem t : 1 + 1 = 2 :="),
    "isabelle": Theorem(
        "t", "test", "isabelle", "theory t imports Main begin", 'theorem t: "1 + 1 = (2::nat)"'
    ),
}


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_answers_without_being_constructed(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ProverBackend, "__init__", lambda *a, **k: pytest.fail("a backend was constructed"))
    assert backend_class(name).name == name
    files, sketches, data = proof_dialect(name), sketch_dialect(name), data_hooks(name)
    assert files.backend == sketches.backend == data.backend == backend_class(name).setup.backend == name
    thm = THEOREMS[DATA_SYSTEM[name]]
    assert files.proof_ext in ("v", "lean", "thy")
    closed = files.proof_text(thm, ["simp"])
    assert thm.statement.rstrip(":=").strip() in closed and "simp" in closed
    left_open = files.export_text(thm, ["simp"], complete=False, remaining="x = 2")
    assert "x = 2" in left_open and ("Admitted." in left_open or "sorry" in left_open)
    # the sketch that is one hole for the whole proof parses in the backend's own dialect
    sk = sketches.parse_sketch(sketches.whole_proof_sketch)
    assert isinstance(sk, Sketch) and sk.n_holes == 1, sk
    assert isinstance(sketches.parse_sketch("x" * 20001), SketchError)
    assert backend_checks(name), "every backend has its doctor checks (doctor/<name>.py)"
    assert data.reads_steps_of(name)


def test_the_capabilities_differ_where_the_provers_do() -> None:
    coq, lean, isa = (sketch_dialect(n) for n in ("coq", "lean4", "isabelle"))
    assert coq.fill_hole("assert (h : P) by hole", "lia") == "assert (h : P) by lia"
    assert lean.fill_hole("have h : x = 3 := by sorry", "norm_num") == "have h : x = 3 := by norm_num"
    with pytest.raises(ValueError, match="no stepwise holes"):
        isa.fill_hole("sledgehammer", "by simp")
    assert isa.fills_by_probes and not coq.fills_by_probes and not lean.fills_by_probes
    assert isa.hammer_command(5) is not None and coq.hammer_command(5) is None
    coq_data, lean_data, dojo_data = (data_hooks(n) for n in ("coq", "lean4", "leandojo"))
    assert coq_data.step_tactic_text("lia") == "lia." and lean_data.step_tactic_text("simp") == "simp"
    assert dojo_data.reads_steps_of("lean4") and not lean_data.reads_steps_of("leandojo")
    assert not coq_data.reads_steps_of("lean4")
    goal = "h : x = 1\n============================\nx = 1"
    assert coq_data.splits_goals and coq_data.goal_parts(goal) == (["h : x = 1"], "x = 1")
    hammer = coq.automation_theorem(THEOREMS["coq"], use_hammer=True)
    assert hammer.header.startswith("From Hammer Require Import Tactics.")
    assert coq.automation_theorem(THEOREMS["coq"], use_hammer=False) is THEOREMS["coq"]
    assert lean.automation_theorem(THEOREMS["lean4"], use_hammer=True) is THEOREMS["lean4"]
    imported = proof_dialect("lean4").imported_theorem("t", "test", "theorem t : True", None)
    assert imported.statement.endswith(":=") and imported.header.startswith("import Mathlib")
    assert proof_dialect("coq").imported_theorem("t", "test", "Theorem t : True.", None).header == ""
