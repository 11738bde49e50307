"""Attacks on the Isabelle re-check (``IsabelleBackend.check``, ``isabelle/audit.py``).

No Isabelle runs here: the server is ``tests/fixtures/fake_isabelle.py``, which speaks the documented
wire protocol but is not a prover. It *emulates* our two audit theories (their ML cannot run in the
fake): the parse audit with the fake's own small keyword list but the allowlist written in our ML, the
oracle audit from whether the fake accepted a ``sorry``/``tactic`` in the proof theory. So these tests
show our side -- which theories are written, that the audit theories carry none of the model's text,
that the verdict is every node's structured status, and that each attack is refused by a node other
than the regex filter -- not that Isabelle's parser and ``Thm.peek_status`` behave as modelled (to be
confirmed on a real Isabelle; docs/autoformalize.md).

Every attack runs with ``theory.validate_proof`` (the regex first filter) bypassed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_isabelle_client import GOAL, THM, make_fake, pid_alive

from llemma_prover.backends.base import make_backend
from llemma_prover.backends.isabelle import backend as isa_backend
from llemma_prover.backends.isabelle.audit import PROOF_COMMANDS, audit_plan, audit_verdict
from llemma_prover.backends.isabelle.theory import validate_proof
from llemma_prover.core.config import ProverConfig

GOOD = "by (auto simp: field_simps)"
ORACLE = {"claims": {GOAL: {"(auto simp: field_simps)": "ok", "blast": "ok"}}}


@pytest.fixture
def backend(tmp_path: Path):
    exe = make_fake(tmp_path, {**ORACLE, "nodes_status": True})
    b = make_backend("isabelle", ProverConfig(executable=exe, tactic_timeout=5, check_timeout=20))
    yield b
    b.close()


@pytest.fixture
def no_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isa_backend, "validate_proof", lambda text, extra_forbidden=(): None)


def nodes(backend, proof: str):
    plan = audit_plan(THM, proof)
    assert not isinstance(plan, str)
    res = backend.session().check_theories(plan.theories, 20.0, plan.files)
    return plan, res


def test_honest_proof_passes_all_three_nodes_and_audits_carry_no_model_text(backend) -> None:
    c = backend.check(THM, [GOOD])
    assert c.ok and c.message == "" and c.checker == "isabelle use_theories"
    plan, res = nodes(backend, GOOD)
    assert [n for n, _ in plan.theories] == [plan.proof_theory, plan.parse_theory, plan.oracle_theory]
    assert plan.proof_theory == "aime_1983_p2" and set(res.nodes) == {n for n, _ in plan.theories}
    assert all(res.nodes[n].ok for n in res.nodes) and audit_verdict(plan, res) is None
    texts = dict(plan.theories)
    proof_thy = texts[plan.proof_theory]
    assert GOOD in proof_thy and "declare [[quick_and_dirty = false]]" in proof_thy
    for audit in (plan.parse_theory, plan.oracle_theory):
        assert GOOD not in texts[audit]  # the proof reaches the parse audit only as a data file
    assert plan.files == {"aime_1983_p2.proof": GOOD + "\n"}
    parse = texts[plan.parse_theory]
    assert "imports Complex_Main\n" in parse and '"aime_1983_p2"' not in parse  # never imports the proof
    assert "Outer_Syntax.parse_spans" in parse and "Token.explode keywords" in parse
    oracle = texts[plan.oracle_theory]
    assert 'imports "aime_1983_p2"' in oracle and "Thm.peek_status" in oracle
    assert "theorem llemma_restated:" in oracle
    assert "using assms by (rule aime_1983_p2.aime_1983_p2)" in oracle


ATTACKS = [
    ("sorry", "sorry", True),
    ("sorry in a step", 'have "0 < p" sorry\nthen show ?thesis by (auto simp: field_simps)', True),
    ("oops and a restated theorem from an axiom", 'oops\naxiomatization where ax: "False"\n'
     'lemma aime_1983_p2: "15 \\<le> f x" using ax by blast', False),
    ("axiomatization", 'by (auto simp: field_simps)\naxiomatization where ax: "False"', False),
    ("consts + axiomatization", 'by (auto simp: field_simps)\nconsts c :: bool\n'
     'axiomatization where c_def: "c = False"', False),
    ("ML block", "ML \\<open>Thm.add_axiom_global\\<close>\nby (auto simp: field_simps)", False),
    ("ML_file", 'ML_file "cheat.ML"\nby (auto simp: field_simps)', False),
    ("quick_and_dirty + sorry", "declare [[quick_and_dirty = true]]\nsorry", True),
    ("tactic method (ML inside a proof)",
     "apply (tactic \\<open>Skip_Proof.cheat_tac \\<^context> 1\\<close>)\ndone", True),
    ("extra premise via a leading 'and'", 'and hx: "False"\nusing hx by blast', False),
    ("end of theory, then a new one", "by (auto simp: field_simps)\nend\ntheory X imports Main begin", False),
    ("setup", "setup \\<open>I\\<close>\nby (auto simp: field_simps)", False),
    ("oracle declaration", 'oracle cheat = \\<open>fn ct => ct\\<close>\nby (auto simp: field_simps)', False),
]  # fmt: skip


@pytest.mark.parametrize(("label", "proof", "oracle_too"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attacks_fail_the_recheck_without_the_filter(
    backend, no_filter: None, label: str, proof: str, oracle_too: bool
) -> None:
    c = backend.check(THM, [proof])
    assert not c.ok, label
    plan, res = nodes(backend, proof)
    assert not res.nodes[plan.parse_theory].ok, f"{label}: Isabelle's parse of the proof must refuse it"
    if oracle_too:
        assert not res.nodes[plan.oracle_theory].ok, f"{label}: the oracle audit must refuse it too"
    assert audit_verdict(plan, res) is not None


@pytest.mark.parametrize(("label", "proof"), [(a[0], a[1]) for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_the_regex_filter_refuses_the_same_text_first(label: str, proof: str) -> None:
    assert validate_proof(proof) is not None, label


def test_a_missing_node_or_a_timeout_is_not_a_proof(backend) -> None:
    plan, res = nodes(backend, GOOD)
    partial = type(res)(overall=res.overall, nodes={plan.proof_theory: res.nodes[plan.proof_theory]})
    assert "was not reported" in (audit_verdict(plan, partial) or "")
    assert audit_plan(THM.__class__(**{**THM.__dict__, "statement": 'lemma "x"'}), GOOD) == (
        "cannot audit: statement is not 'theorem NAME: ...'"
    )


def test_allowlist_excludes_every_cheating_command() -> None:
    for cmd in ("sorry", "oops", "ML", "ML_file", "declare", "axiomatization", "consts", "lemma", "end",
                "setup", "local_setup", "oracle", "definition", "theorem", "method_setup"):  # fmt: skip
        assert cmd not in PROOF_COMMANDS


def test_nodes_status_notes_are_tolerated_and_the_server_is_sandboxed(
    backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake sends Isabelle2025-2-style ``nodes_status`` NOTEs (and one of another task) during
    session_start and use_theories; the server runs with a scrubbed environment."""
    monkeypatch.setenv("LLEMMA_TEST_SECRET_TOKEN", "must-not-leak")
    assert backend.check(THM, [GOOD]).ok
    pid = int((tmp_path / "server.pid").read_text())
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not [e for e in environ if e.startswith(b"LLEMMA_TEST_SECRET_TOKEN=")]
    desc = backend.sandbox.describe()
    assert desc["network_isolation"] == "none" and desc["rlimits"]["address_space_mb"] == 0
    assert desc["rlimits"]["file_size_mb"] >= 4096 and desc["scrubbed_env"] is True
    backend.close()
    assert not pid_alive(pid)
    assert "LLEMMA_TEST_SECRET_TOKEN" in os.environ  # (only the server's environment was scrubbed)


def test_config_json_sandbox_says_what_each_backend_really_runs_under() -> None:
    from llemma_prover.backends.base import prover_setup

    def describe_sandbox(name: str, config: ProverConfig) -> dict[str, object]:
        return prover_setup(name).sandbox_description(config)

    cfg = ProverConfig()
    isa = describe_sandbox("isabelle", cfg)
    assert isa["network_isolation"] == "none" and isa["rlimits"]["address_space_mb"] == 0  # type: ignore[index]
    lean = describe_sandbox("lean4", cfg)
    assert lean["rlimits"]["address_space_mb"] == 65536  # type: ignore[index]
    assert describe_sandbox("leandojo", cfg)["network_isolation"] == "none"
    assert describe_sandbox("coq", cfg)["rlimits"]["address_space_mb"] == cfg.memory_limit_mb  # type: ignore[index]
