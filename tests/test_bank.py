"""The ``bank`` generator: ranking, ``k``, goal-aware choices, and real Coq proofs with its tactics."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llemma_prover.backends.coq.bank import COQ_POOL, coq_dynamic, coq_goal_features, parse_coq_goal
from llemma_prover.backends.coq.header import prepare_header
from llemma_prover.backends.lean4.bank import lean4_goal_features
from llemma_prover.core.errors import ConfigError
from llemma_prover.generators.bank import FAMILIES, BankGenerator

REPO = Path(__file__).resolve().parent.parent

# Goals as coqtop prints them (after the backend's normalisation: no blank lines, stripped lines).
REAL_GOAL = "n, x : R\n============================\nn + x = 97 -> n + 5 * x = 265 -> n + 2 * x = 139"
REAL_HYPS_GOAL = (
    "n, x : R\nH : n + x = 97\nH0 : n + 5 * x = 265\n============================\nn + 2 * x = 139"
)
NAT_GOAL = "============================\nforall n : nat, (3 * n) mod 11 = 2 -> n mod 11 = 8"
CLOSED_GOAL = "============================\n(239 + 174 + 83) mod 10 = 6"
CONJ_GOAL = "a, b : R\nH : a + b = 2\nH0 : a - b = 0\n============================\na = 1 /\\ b = 1"
FUN_GOAL = (
    "f, g : R -> R\nH : forall x : R, f x = x + 1\nH0 : forall x : R, g x = x ^ 2 + 3\n"
    "============================\nf (g 2) = 8"
)


def _uses(tactic: str, *words: str) -> bool:
    return any(re.search(rf"\b{re.escape(w)}\b", tactic) for w in words)


@pytest.mark.parametrize("backend", ["coq", "lean4", "leandojo", "isabelle"])
def test_scores_are_a_decreasing_log_prior(backend: str) -> None:
    gen = BankGenerator(backend, goal_aware=False)
    cands = gen.candidates_for("")  # the whole bank
    assert len(cands) >= 10
    scores = [c.score for c in cands]
    assert all(s < 0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    # the priors of the whole bank form a distribution
    assert math.isclose(sum(math.exp(s) for s in scores), 1.0, rel_tol=1e-9)
    assert len({c.tactic for c in cands}) == len(cands)
    assert gen.describe()["name"] == "bank" and gen.describe()["backend"] == backend


def test_coq_goal_with_a_binder_gets_only_intros() -> None:
    assert [c.tactic for c in BankGenerator("coq").generate(REAL_GOAL, 64)] == ["intros"]
    assert len(BankGenerator("coq").generate(REAL_HYPS_GOAL, 64)) > 5


def test_generate_respects_k_and_order() -> None:
    gen = BankGenerator("coq", intro_first=False)
    full = gen.candidates_for(REAL_GOAL)
    assert gen.generate(REAL_GOAL, 0) == []
    top3 = gen.generate(REAL_GOAL, 3)
    # best first = earliest stage, then highest prior
    ranked = sorted(full, key=lambda c: (c.stage, -c.score))
    assert [c.tactic for c in top3] == [c.tactic for c in ranked[:3]]
    assert len(gen.generate(REAL_GOAL, 10_000)) == len(full)
    # the same goal always gives the same list (the search relies on determinism)
    assert gen.generate(REAL_GOAL, 8) == gen.generate(REAL_GOAL, 8)


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'hol-light'"):
        BankGenerator("hol-light")


def test_each_backend_class_provides_its_bank() -> None:
    """The bank comes from the backend class (``tactic_bank``), not from a table keyed by name;
    a backend without one says so."""
    from llemma_prover.backends.base import DataHooks, data_hooks
    from llemma_prover.backends.coq.bank import COQ_POOL
    from llemma_prover.backends.isabelle.bank import ISABELLE_BANK
    from llemma_prover.backends.lean4.bank import LEAN4_BANK

    coq = data_hooks("coq").tactic_bank()
    assert coq.measured and {e.tactic for e in coq.entries} <= {e.tactic for e in COQ_POOL}
    assert data_hooks("lean4").tactic_bank().entries == LEAN4_BANK
    assert data_hooks("leandojo").tactic_bank().entries == LEAN4_BANK
    assert data_hooks("isabelle").tactic_bank().entries == ISABELLE_BANK

    with pytest.raises(ConfigError, match="no tactic bank for backend 'nobank'"):
        DataHooks("nobank").tactic_bank()


def test_coq_goal_features() -> None:
    f = coq_goal_features(REAL_GOAL)
    assert {"real", "intro"} <= f and "int" not in f and "closed" not in f
    f = coq_goal_features(NAT_GOAL)
    assert {"int", "intro", "divmod"} <= f and "real" not in f
    f = coq_goal_features(CLOSED_GOAL)
    assert "closed" in f and "intro" not in f
    assert "conj" in coq_goal_features(CONJ_GOAL)
    assert "fun_eq" in coq_goal_features(FUN_GOAL)
    assert "intro" not in coq_goal_features(REAL_HYPS_GOAL)
    # numerals in R_scope show no type: a %nat annotation or a division keeps the real tactics
    f = coq_goal_features(
        "n : nat\nh₀ : n = 11%nat\n============================\n(1 / 4) ^ (n + 1) * 2 ^ (2 * n) = 1 / 4"
    )
    assert {"real", "int"} <= f
    # a closed goal that shows no domain keeps both arithmetic families
    assert {"real", "int", "closed"} <= coq_goal_features("============================\n2 + 2 = 4")


def test_coq_goal_aware_choices() -> None:
    gen = BankGenerator("coq", entries=COQ_POOL, families=["closers", "structure"], intro_first=False)
    real = [c.tactic for c in gen.candidates_for(REAL_GOAL)]
    nat = [c.tactic for c in gen.candidates_for(NAT_GOAL)]
    closed = [c.tactic for c in gen.candidates_for(CLOSED_GOAL)]
    hyps = [c.tactic for c in gen.candidates_for(REAL_HYPS_GOAL)]
    # reals: lra/nra, never lia/nia; nat: lia/nia, never lra/nra/field
    assert any(_uses(t, "lra") for t in real) and any(_uses(t, "nra") for t in real)
    assert not any(_uses(t, "lia", "nia", "zify") for t in real)
    assert any(_uses(t, "lia") for t in nat)
    assert not any(_uses(t, "lra", "nra", "field") for t in nat)
    # evaluation only on closed goals
    assert any(_uses(t, "vm_compute", "reflexivity") for t in closed)
    assert not any(_uses(t, "vm_compute") for t in real + nat + hyps)
    # the bare step ``intros`` only where there is something to introduce
    assert "intros" in real and "intros" in nat
    assert "intros" not in hyps and "intros" not in closed
    # mod/div preprocessing only where mod or / occurs
    assert any("Z.div_mod_to_equations" in t for t in nat)
    assert not any("Z.div_mod_to_equations" in t for t in real)
    # goal-aware filtering can be switched off
    unfiltered = BankGenerator("coq", goal_aware=False).candidates_for(NAT_GOAL)
    assert len(unfiltered) == len(BankGenerator("coq").entries)


def test_filtering_keeps_the_bank_order() -> None:
    gen = BankGenerator("coq", intro_first=False)
    order = {c.tactic: i for i, c in enumerate(BankGenerator("coq", goal_aware=False).candidates_for(""))}
    for goal in (REAL_GOAL, NAT_GOAL, CLOSED_GOAL, CONJ_GOAL, FUN_GOAL):
        idx = [order[c.tactic] for c in gen.candidates_for(goal) if c.tactic in order]
        assert idx == sorted(idx)


def test_every_coq_bank_tactic_is_one_valid_sentence() -> None:
    sentences = pytest.importorskip("llemma_prover.backends.coq.sentences")
    for tactic in (c.tactic for c in BankGenerator("coq", goal_aware=False).candidates_for("")):
        assert sentences.validate_tactic(tactic) == tactic


# Goals as coqtop prints them after ``intros`` on miniF2F-valid problems (amc12_2001_p2,
# algebra_sqineq_36azm9asqle36zsq, and a made-up disjunction / conjunction / iff mix)
BOUNDED_GOAL = (
    "a, b, n : nat\nH : 1 <= a <= 9\nH0 : 0 <= b <= 9\nH1 : n = 10 * a + b\nH2 : n = a * b + a + b\n"
    "============================\nb = 9"
)
HINT_GOAL = "z, a : R\n============================\n36 * (a * z) - 9 * a ^ 2 <= 36 * z ^ 2"
MIXED_GOAL = (
    "x, y : R\nh₀ : x = 1 \\/ x = 2\nh₁ : 0 < y /\\ y < 3\n"
    "h₂ : forall t : R,\n t = t\n============================\nx * y < 6 <-> True"
)


def test_parse_coq_goal_names_types_and_continuations() -> None:
    g = parse_coq_goal(MIXED_GOAL)
    assert g.names_of_type("R") == ["x", "y"]
    assert dict(g.hyps)["h₂"] == "forall t : R, t = t"  # the continuation line is joined
    assert g.concl == "x * y < 6 <-> True"


def test_structure_and_cases_candidates_follow_the_goal() -> None:
    mixed = {e.tactic: e for e in coq_dynamic(MIXED_GOAL)}
    assert "split; intros" in mixed  # iff
    assert "destruct h₀ as [h₀ | h₀]" in mixed  # disjunction in a hypothesis
    assert any(t.startswith("repeat match goal with H : _ /\\ _") for t in mixed)  # conjunction
    assert "destruct h₂ as [h₂ | h₂]" not in mixed
    assert all(e.family in FAMILIES for e in mixed.values())
    bounded = [e.tactic for e in coq_dynamic(BOUNDED_GOAL)]
    # a <= 9 and b <= 9: ten values each, then the case S^10 that lia refutes
    assert "destruct b as [|[|[|[|[|[|[|[|[|[|b]]]]]]]]]]; simpl in *; lia" in bounded
    assert any(t.startswith("destruct a as ") for t in bounded)
    assert "subst" in bounded  # n = 10 * a + b
    hints = [e.tactic for e in coq_dynamic(HINT_GOAL)]
    assert "pose proof (pow2_ge_0 (z - a)); nra" in hints
    # no hints without two real variables, no case split without a bound
    assert not [e for e in coq_dynamic(NAT_GOAL) if e.family in ("hints", "cases")]


def test_field_simplify_in_a_hypothesis_must_change_it() -> None:
    """``field_simplify in H`` that leaves H as it was only adds side goals (Coq 8.16): the candidate
    fails then instead of opening an endless chain of new states (minif2f-valid mathd_algebra_181)."""
    goal = "n : R\nH : n <> 3\nH0 : (n + 5) / (n - 3) = 2\n============================\nn = 11"
    simp = [e.tactic for e in coq_dynamic(goal) if "field_simplify" in e.tactic]
    assert simp == [
        "let T := type of H0 in field_simplify in H0; "
        "[lazymatch type of H0 with T => fail | _ => idtac end | ..]"
    ]
    denoms = [e for e in COQ_POOL if e.family == "denominators"]
    assert denoms and all("real" in e.requires for e in denoms)
    assert "denominators" in FAMILIES


def test_families_switch_components_off_and_stages_come_from_the_schedule() -> None:
    full = BankGenerator("coq").generate(BOUNDED_GOAL, 64)
    only = BankGenerator("coq", families=["closers", "structure"]).generate(BOUNDED_GOAL, 64)
    assert any("destruct b" in c.tactic for c in full)
    assert not any("destruct b" in c.tactic for c in only)
    # stages never decrease along the list (cheap before expensive), timeouts are Coq's own
    assert [c.stage for c in full] == sorted(c.stage for c in full)
    assert all(re.fullmatch(r"timeout \d+ \(.+\)", c.tactic) for c in full if c.stage > 0)
    gen = BankGenerator("coq", schedule=dict.fromkeys(("step", "cheap", "medium", "expensive"), (0, 0)))
    assert all(c.stage == 0 and not c.tactic.startswith("timeout") for c in gen.generate(BOUNDED_GOAL, 64))
    with pytest.raises(ConfigError, match="unknown bank families"):
        BankGenerator("coq", families=["closers", "magic"])


def test_expensive_tactics_are_proposed_once_per_theorem() -> None:
    """``BANK_ONCE``: an expensive tactic (sauto, psatz degree 3) is proposed at the first node it fits
    and not again below it until the next theorem; ``once=()`` proposes it everywhere."""
    from llemma_prover.core.config import BANK_ONCE
    from llemma_prover.core.types import Theorem

    assert BANK_ONCE == ("expensive",)
    goal = "x, y : R\nh : x + y = 2\n============================\nx * y <= 1"
    gen = BankGenerator("coq")
    expensive = {c.tactic for c in gen.generate(goal, 64) if c.stage == 2}
    assert any("sauto" in t for t in expensive) and any("psatz R 3" in t for t in expensive)
    again = {c.tactic for c in gen.generate(goal, 64)}
    assert not expensive & again  # the same theorem: not proposed a second time
    assert {c.tactic for c in gen.generate(goal, 64) if c.stage < 2} == {
        c.tactic for c in BankGenerator("coq").generate(goal, 64) if c.stage < 2
    }  # the cheaper classes are unaffected
    gen.start_theorem(Theorem(name="t", split="valid", system="coq", header="", statement="S."))
    assert expensive <= {c.tactic for c in gen.generate(goal, 64)}  # a new theorem: proposed again
    every = BankGenerator("coq", once=())
    first = {c.tactic for c in every.generate(goal, 64)}
    assert expensive <= first and expensive <= {c.tactic for c in every.generate(goal, 64)}
    assert BankGenerator("coq").describe()["once_per_theorem"] == ["expensive"]


def test_every_generated_coq_candidate_is_one_valid_sentence() -> None:
    sentences = pytest.importorskip("llemma_prover.backends.coq.sentences")
    gen = BankGenerator("coq")
    for goal in (BOUNDED_GOAL, HINT_GOAL, MIXED_GOAL, REAL_GOAL, NAT_GOAL, CONJ_GOAL, FUN_GOAL):
        for c in gen.generate(goal, 64):
            assert sentences.validate_tactic(c.tactic) == c.tactic


def test_lean4_goal_features_and_choices() -> None:
    real = "x y : ℝ\nh₀ : x + y = 10\n⊢ x = 10 - y"
    nat = "n : ℕ\nh₀ : n % 5 = 3\n⊢ 2 * n % 5 = 1"
    assert "real" in lean4_goal_features(real) and "int" not in lean4_goal_features(real)
    assert "int" in lean4_goal_features(nat) and "real" not in lean4_goal_features(nat)
    assert "intro" in lean4_goal_features("⊢ ∀ (x : ℝ), x ^ 2 ≥ 0")
    gen = BankGenerator("lean4")
    real_t = [c.tactic for c in gen.candidates_for(real)]
    nat_t = [c.tactic for c in gen.candidates_for(nat)]
    assert "linarith" in real_t and "omega" not in real_t
    assert "omega" in nat_t and "linarith" not in nat_t
    assert "norm_num" in real_t and "norm_num" in nat_t


def test_isabelle_entries_are_single_proof_steps() -> None:
    for c in BankGenerator("isabelle").candidates_for("goal (1 subgoal):\n 1. (2::nat) + 2 = 4"):
        assert re.fullmatch(r"(by|apply) (\w+|\(.+\))", c.tactic), c.tactic
        assert "sorry" not in c.tactic and "oops" not in c.tactic


# -- real coqc: bank tactics prove real miniF2F problems -----------------------------------------


def _data_dir() -> Path:
    from conftest import data_dir

    return data_dir()


def _coqc(tmp: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp / "Bank.v").write_text(text, encoding="utf-8")
    return subprocess.run(["coqc", "-q", "Bank.v"], cwd=tmp, capture_output=True, text=True, timeout=300)


def _root_goal(tmp: Path, header: str, statement: str) -> str:
    """The root goal as coqtop prints it (hypotheses, separator, conclusion), normalised."""
    proc = _coqc(tmp, f"{header}\n{statement}\nProof.\nShow.\nAdmitted.\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split("goal", 1)[1].split("\n", 1)[1]
    return "\n".join(" ".join(line.split()) for line in out.splitlines() if line.strip())


@pytest.mark.coq
@pytest.mark.parametrize(
    "split,name",
    # valid problems the old bank could not prove: complex arithmetic, a function given by an equation
    # used in the hypotheses, a bounded natural number, denominators cleared (x <> 0, 3 + 1/x = 7/x)
    [("valid", "mathd_algebra_48"), ("valid", "mathd_algebra_43"), ("valid", "amc12_2001_p2"),
     ("valid", "mathd_algebra_251")],
)
def test_bank_proves_real_minif2f_problems(tmp_path: Path, split: str, name: str) -> None:
    """Probe the bank's candidates for the problem's root goal in order; the first that closes it
    must then give a complete proof that ``coqc`` accepts, with no axiom beyond the Reals'."""
    if shutil.which("coqc") is None:
        pytest.skip("coqc not installed")
    path = _data_dir() / "coq" / f"{split}.jsonl"
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path}")
    rec = next(r for r in map(json.loads, path.read_text().splitlines()) if r["name"] == name)
    header = prepare_header(rec["header"])
    # no class timeouts (a loaded CI machine must not turn a proof into a timeout): the probe's own
    untimed = dict.fromkeys(("step", "cheap", "medium", "expensive"), (0, 0))
    gen = BankGenerator("coq", intro_first=False, schedule=untimed)
    cands = gen.generate(_root_goal(tmp_path, header, rec["statement"]), 64)
    probes = "\n".join(
        f'first [ assert_succeeds (solve [timeout 10 ({c.tactic})]); idtac "@@OK {i}" | idtac "@@NO {i}" ].'
        for i, c in enumerate(cands)
    )
    proc = _coqc(tmp_path, f"{header}\n{rec['statement']}\nProof.\n{probes}\nAdmitted.\n")
    assert proc.returncode == 0, proc.stderr
    ok = [int(i) for i in re.findall(r"@@OK (\d+)", proc.stdout)]
    assert ok, f"no bank tactic closes {name}"
    tactic = cands[ok[0]].tactic
    thm = rec["statement"].split()[1].rstrip(":")
    proof = f"{header}\n{rec['statement']}\nProof.\n{tactic}.\nQed.\nPrint Assumptions {thm}.\n"
    proc = _coqc(tmp_path, proof)
    assert proc.returncode == 0, proc.stderr
    axioms = re.findall(r"^([\w.']+) :", proc.stdout.split("Axioms:", 1)[-1], re.MULTILINE)
    assert "Closed under the global context" in proc.stdout or all(
        a
        in {
            "ClassicalDedekindReals.sig_forall_dec",
            "ClassicalDedekindReals.sig_not_dec",
            "FunctionalExtensionality.functional_extensionality_dep",
            "sig_forall_dec",
            "sig_not_dec",
            "functional_extensionality_dep",
        }
        for a in axioms
    ), proc.stdout
