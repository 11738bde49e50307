"""Draft-Sketch-Prove: pure unit tests (sketch parsing, hole templates, prompts, pass@k, drafters, config)."""

from __future__ import annotations

import json

import pytest

from llemma_prover.autoformalize.drafter import NoneDrafter, ReplayDrafter, make_drafter
from llemma_prover.autoformalize.pipeline import pass_at_k, pass_summary
from llemma_prover.autoformalize.prompts import load_dsp_prompt, parse_prompt, split_formal
from llemma_prover.autoformalize.sketch import (
    Sketch,
    SketchError,
    parse_sketch,
)
from llemma_prover.backends.base import sketch_dialect
from llemma_prover.backends.coq.sketch import coq_hole_tactics, needs_intros
from llemma_prover.core.config import AutoformalizeConfig, DrafterConfig, GeneratorConfig, HolePolicy
from llemma_prover.core.errors import ConfigError, DataError
from llemma_prover.core.records import TheoremRecord
from llemma_prover.core.types import Reason, Status, Theorem


def _thm(name: str = "t") -> Theorem:
    return Theorem(
        name=name,
        split="test",
        system="coq",
        header="Require Import Reals.\n",
        statement=f"Theorem {name} : True.",
        informal_statement="S",
        informal_proof="P",
    )


# ---------------------------------------------------------------------------------------------
# Coq sketches
# ---------------------------------------------------------------------------------------------


def test_coq_sketch_steps_bullets_comments_and_holes():
    sk = parse_sketch(
        "coq",
        """```coq
Proof.
  intros x y h0 h1.
  (* a comment with a period. and hole *)
  assert (hx : x = 3) by hole.
  - subst. hole.
  + { lia. }
Qed.
```""",
    )
    assert isinstance(sk, Sketch)
    assert [s.text for s in sk.steps] == [
        "intros x y h0 h1",
        "assert (hx : x = 3) by hole",
        "subst",
        "hole",
        "lia",
    ]
    assert [s.hole for s in sk.steps] == [False, True, False, True, False]
    assert sk.steps[1].claim == "x = 3"
    assert sk.n_holes == 2


def test_coq_hole_templates_force_the_hole_closed():
    fill_hole = sketch_dialect("coq").fill_hole
    assert fill_hole("assert (h : P) by hole", "lia") == "assert (h : P) by lia"
    assert fill_hole("assert (h : P) by hole", "field; lra") == "assert (h : P) by (field; lra)"
    assert fill_hole("hole", "intros; nia") == "solve [ intros; nia ]"
    # "hole" inside another identifier is not a hole
    assert parse_sketch("coq", "apply holes_lemma.").steps[0].hole is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text,why",
    [
        ("intros. admit.", "admit"),
        ("intros. Admitted.", "Admitted"),
        ("intros. Abort.", "Abort"),
        ("Axiom cheat : False. exact cheat.", "Axiom"),
        ("intros. Require Import Classical.", "Require"),
        ("intros. hole", "after the last sentence"),
        ("assert (h : 1 = 1 /\\ 2 = 2) by (split; hole; hole).", "more than one hole"),
        ("", "empty"),
        ("Proof. Qed.", "empty"),
        ("intros. (* unterminated", "unterminated comment"),
        ("intros. exact_no_check I.", "exact_no_check"),
    ],
)
def test_coq_sketch_refusals(text, why):
    res = parse_sketch("coq", text)
    assert isinstance(res, SketchError)
    assert why in res.message


def test_coq_text_after_qed_is_ignored():
    sk = parse_sketch("coq", "intros. lia.\nQed.\n\nTheorem other : False. Admitted.")
    assert isinstance(sk, Sketch) and [s.text for s in sk.steps] == ["intros", "lia"]


def test_needs_intros_and_tactic_order():
    assert needs_intros("forall x : R, x = x")
    assert needs_intros("x = 1 -> x + 1 = 2")
    assert needs_intros("~ (x = 2)")
    assert not needs_intros("(x -> y) /\\ z = 1")
    assert not needs_intros("x + 1 = 2")
    tacs = coq_hole_tactics("x = 2")
    assert tacs[:4] == ["assumption", "lia", "lra", "nia"] and "sauto" not in tacs
    assert coq_hole_tactics("x = 2", use_hammer=True)[-2:] == ["sauto", "hauto"]
    assert all(t.startswith("intros; ") for t in coq_hole_tactics("forall n : nat, n = n"))


# ---------------------------------------------------------------------------------------------
# Isabelle and Lean sketches
# ---------------------------------------------------------------------------------------------


def test_isabelle_sketch_holes_outside_terms():
    text = 'proof -\n  have c0: "sorry = x" using h0 sledgehammer\n  then show ?thesis sorry\nqed'
    sk = parse_sketch("isabelle", text)
    assert isinstance(sk, Sketch)
    assert sk.hole_texts() == ["sledgehammer", "sorry"]  # the quoted "sorry" is a term, not a hole
    filled = sk.render_isabelle(["by simp", "by auto"])
    assert 'have c0: "sorry = x" using h0 by simp' in filled and "show ?thesis by auto" in filled
    assert sk.render_isabelle(["by simp"]).endswith("show ?thesis sorry\nqed")
    assert sk.hole_line(1, ["by (simp\n add: x)"]) == 3
    opts = parse_sketch("isabelle", "sledgehammer [timeout = 5]")
    assert isinstance(opts, Sketch) and opts.hole_texts() == ["sledgehammer [timeout = 5]"]


@pytest.mark.parametrize(
    "text",
    ["ML \\<open>1\\<close>", 'axiomatization where a: "False"', "by auto\nend", "oops", "proof - (* open"],
)
def test_isabelle_sketch_refusals(text):
    assert isinstance(parse_sketch("isabelle", text), SketchError)


def test_lean_sketch_steps():
    sk = parse_sketch("lean4", "by\n  have h : x = 3 := by sorry\n  rw [h,\n    foo]\n  sorry\n")
    assert isinstance(sk, Sketch)
    assert [s.hole for s in sk.steps] == [True, False, True]
    assert sk.steps[1].text == "rw [h,\n  foo]"
    assert sketch_dialect("lean4").fill_hole(sk.steps[0].text, "norm_num") == "have h : x = 3 := by norm_num"
    assert isinstance(parse_sketch("lean4", "by\n  exact sorryAx _"), SketchError)


# ---------------------------------------------------------------------------------------------
# prompts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["coq", "isabelle", "lean4"])
def test_shipped_prompts_parse_and_their_sketches_parse(backend):
    p = load_dsp_prompt(backend)
    assert len(p.examples) >= 3
    for ex in p.examples:
        sk = parse_sketch(backend, ex.sketch)
        assert isinstance(sk, Sketch), (ex.formal, sk)
        assert sk.n_holes >= 1
        header, statement = split_formal(ex.formal)
        assert statement.lstrip().lower().startswith(("theorem", "lemma"))
    q = p.render(_thm())
    assert q.startswith(p.instruction) and q.endswith("Formal sketch:\n")
    assert (
        "Informal statement:\nS\nInformal proof:\nP\nFormal statement:\nRequire Import Reals.\nTheorem t" in q
    )


def test_prompt_format_errors():
    with pytest.raises(ConfigError):
        parse_prompt("only an instruction")
    with pytest.raises(ConfigError):
        parse_prompt("instr\n=====\nInformal statement:\nx\n")


# ---------------------------------------------------------------------------------------------
# pass@k, drafters, config
# ---------------------------------------------------------------------------------------------


def test_pass_at_k_estimator():
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - (3 / 5) * (2 / 4))

    def rec(name: str, n: int, c: int) -> TheoremRecord:
        return TheoremRecord(
            theorem=name,
            split="test",
            family="other",
            backend="coq",
            generator="replay",
            status=Status.PROVED if c else Status.FAILED,
            reason=Reason.PROVED if c else Reason.SEARCH_EXHAUSTED,
            proof=None,
            extra={"dsp": {"n": n, "correct": c}},
        )

    s = pass_summary([rec("a", 4, 1), rec("b", 4, 0), rec("c", 4, 4)])
    assert s.problems == 3 and s.n == 4 and s.solved == 2
    assert s.pass_at_1 == pytest.approx((0.25 + 0 + 1) / 3)
    assert s.pass_at_n == pytest.approx(2 / 3)


def test_replay_drafter_reads_jsonl_and_reports_bad_lines(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_text(
        json.dumps({"theorem": "t", "sketches": ["hole.", "lia."]})
        + "\n"
        + json.dumps({"theorem": "t", "sketch": "nia."})
        + "\n"
    )
    d = ReplayDrafter(str(f))
    assert [x.text for x in d.draft(_thm("t"), 5)] == ["hole.", "lia.", "nia."]
    assert [x.text for x in d.draft(_thm("t"), 1)] == ["hole."]
    assert d.draft(_thm("other"), 3) == []
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"theorem": "t", "sketches": ["a"]}\n{"theorem": 3}\n')
    with pytest.raises(DataError, match=":2:"):
        ReplayDrafter(str(bad)).start()


def test_none_drafter_is_one_hole_per_backend():
    assert NoneDrafter("coq").draft(_thm(), 8)[0].text == "hole."
    assert NoneDrafter("isabelle").draft(_thm(), 1)[0].text == "sledgehammer"
    assert NoneDrafter("lean4").draft(_thm(), 1)[0].text == "sorry"
    assert isinstance(make_drafter(DrafterConfig(name="none"), "coq"), NoneDrafter)


@pytest.mark.parametrize(
    "cfg,msg",
    [
        (AutoformalizeConfig(drafter=DrafterConfig(name="bank")), "unknown --generator"),
        (AutoformalizeConfig(drafter=DrafterConfig(name="replay")), "--replay-file"),
        (AutoformalizeConfig(drafter=DrafterConfig(samples=0)), "--samples"),
        (
            AutoformalizeConfig(
                drafter=DrafterConfig(name="llemma", samples=4, model=GeneratorConfig(temperature=0.0))
            ),
            "--temperature",
        ),
        (AutoformalizeConfig(holes=HolePolicy(hole_time_limit=0)), "--hole-time-limit"),
        (AutoformalizeConfig(backend="hol4"), "unknown backend"),
    ],
)
def test_config_validation(cfg, msg):
    with pytest.raises(ConfigError, match=msg):
        cfg.validate()


def test_lean_holes_use_the_bank_closing_tactics():
    from llemma_prover.backends.lean4.bank import LEAN4_BANK
    from llemma_prover.backends.lean4.sketch import hole_tactics as lean_hole_tactics

    tacs = lean_hole_tactics()
    assert tacs[0] == max(LEAN4_BANK, key=lambda e: e.weight).tactic
    assert "intros" not in tacs and "constructor" not in tacs
    assert set(tacs) <= {e.tactic for e in LEAN4_BANK}


# ---------------------------------------------------------------------------------------------
# the stepwise filling loop on a Lean 4 sketch, against a scripted backend (no Lean runs here)
# ---------------------------------------------------------------------------------------------


class _ScriptedBackend:
    """Accepts exactly the sentences in ``script`` (sentence -> "advance" | "finish" | "timeout")."""

    name = "lean4"

    def __init__(self, script):
        self.script = script
        self.calls = []
        self.n = 0
        self.checked = None

    def start_theorem(self, theorem):
        from llemma_prover.core.types import RootState

        return RootState(state_id=0, goals=("x y : ℝ\n⊢ y = 5",), elapsed=0.0)

    def apply(self, state_id, tactic):
        from llemma_prover.core.types import Advanced, ProofFinished, TacticError, TacticTimeout

        self.calls.append(tactic)
        self.n += 1
        what = self.script.get(tactic)
        if what == "advance":
            return Advanced(state_id=self.n, goals=(f"goal after {tactic}",), elapsed=0.01)
        if what == "finish":
            return ProofFinished(state_id=self.n, elapsed=0.01)
        if what == "timeout":
            return TacticTimeout(timeout=1.0, elapsed=1.0)
        if what == "crash":
            from llemma_prover.core.errors import ProverCrashed

            raise ProverCrashed("prover exited while running the tactic", backend="lean4")
        return TacticError(message=f"failed: {tactic}", elapsed=0.01)

    def check(self, theorem, proof):
        from llemma_prover.core.types import CheckResult

        self.checked = list(proof)
        return CheckResult(ok=True, checker="scripted", elapsed=0.0)

    class dialect:  # noqa: N801 - the part a backend carries (``backends/parts.py``), as the pipeline uses it
        @staticmethod
        def proof_text(theorem, proof):
            return "\n".join(proof)

    @property
    def restarts(self):
        return 0


def test_stepwise_filling_of_a_lean_sketch_with_the_bank_tactics():
    from llemma_prover.autoformalize.drafter import Draft
    from llemma_prover.autoformalize.pipeline import autoformalize_theorem
    from llemma_prover.backends.lean4.sketch import hole_tactics as lean_hole_tactics

    sketch = "by\n  have hx : x = 3 := by sorry\n  rw [h₁, hx]\n  sorry\n"
    backend = _ScriptedBackend(
        {
            "have hx : x = 3 := by norm_num": "crash",
            "have hx : x = 3 := by linarith": "advance",
            "rw [h₁, hx]": "advance",
            "(norm_num)": "finish",
        }
    )
    thm = Theorem(
        name="t", split="test", system="lean4", header="import Mathlib", statement="theorem t : True :="
    )
    out = autoformalize_theorem(thm, [Draft(sketch)], "lean4", backend, HolePolicy(), "replay", 1)
    rec = out.record
    assert rec.status is Status.PROVED
    h0, h1 = rec.extra["dsp"]["samples"][0]["holes"]
    assert [a["tactic"] for a in h0["attempts"]] == lean_hole_tactics()[:2]
    # a candidate that crashed the prover is one failed attempt; the next candidate is tried
    assert [a["outcome"] for a in h0["attempts"]] == ["prover_error", "closed"] and h0[
        "closed_by"
    ] == "linarith"
    assert h1["closed_by"] == "norm_num" and h1["claim"] == "goal after rw [h₁, hx]"
    assert backend.checked == ["have hx : x = 3 := by linarith", "rw [h₁, hx]", "(norm_num)"]
    assert rec.proof == tuple(backend.checked)
