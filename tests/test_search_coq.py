"""Best-first search on the real Coq backend (coqtop), with the replay and bank generators."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from llemma_prover.backends.base import ProverBackend, make_backend
from llemma_prover.core import procfs
from llemma_prover.core.config import ProverConfig, SearchConfig
from llemma_prover.core.types import Reason, Theorem
from llemma_prover.generators.replay import ReplayGenerator
from llemma_prover.search import NodeStatus, SearchTree, best_first_search

pytestmark = [
    pytest.mark.coq,
    pytest.mark.skipif(shutil.which("coqtop") is None, reason="coqtop not installed"),
]

SEARCH = SearchConfig(candidates=16, max_expansions=20, time_budget=120.0, debug_invariants=True)


def coq_thm(name: str, statement: str, header: str = "Require Import Arith.\n") -> Theorem:
    return Theorem(name=name, split="test", system="coq", header=header, statement=statement)


SYM = coq_thm("sym", "Theorem sym : forall a b : nat, a = b -> b = a.")
ADD0 = coq_thm("add0", "Theorem add0 : forall n : nat, n + 0 = n.")


def descendants(pid: int) -> set[int]:
    """Live descendant pids of ``pid`` (from /proc)."""
    return procfs.descendants(pid)


@pytest.fixture(scope="module")
def backend() -> Iterator[ProverBackend]:
    before = descendants(os.getpid())
    b = make_backend("coq", ProverConfig(tactic_timeout=10.0, warm_spare=False))
    b.start()
    try:
        yield b
    finally:
        b.close()
        assert descendants(os.getpid()) - before == set(), "coqtop processes left behind"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_two_step_proof_needs_composition(backend: ProverBackend, tmp_path: Path) -> None:
    # No single candidate proves it (`exact H` fails on the root: there is no H yet); `symmetry`
    # then `exact H` does.
    f = write(tmp_path, "t.txt", "exact H.\nsymmetry.\nintros a b H.\nfoo_not_a_tactic.\nAdmitted.\n")
    out, tree = best_first_search(SYM, backend, ReplayGenerator(f), SEARCH)
    assert out.reason is Reason.PROVED, out
    assert out.proof == ("symmetry.", "exact H.")
    root_edges = {d["tactic"]: d["outcome"] for _, _, d in tree.graph.out_edges(0, data=True)}
    assert root_edges["exact H."] == "error"
    assert root_edges["symmetry."] == "advanced"
    assert out.time.prover > 0
    assert tree.status(0) is NodeStatus.PROVED
    outcomes = {d["outcome"] for _, _, d in tree.graph.edges(data=True)}
    assert {"advanced", "error", "rejected", "proved"} <= outcomes
    rejected = [d for _, _, d in tree.graph.edges(data=True) if d["tactic"] == "Admitted."]
    assert rejected and all(d["outcome"] == "rejected" for d in rejected)
    check = backend.check(SYM, out.proof)
    assert check.ok, check.message


def test_jsonl_replay_reruns_a_known_proof(backend: ProverBackend, tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "p.jsonl",
        json.dumps(
            {
                "theorem": "add0",
                "tactics": ["intros n.", "induction n.", "reflexivity.", "simpl.", "rewrite IHn."],
            }
        )
        + "\n"
        + json.dumps({"theorem": "sym", "tactics": ["intros a b H.", "symmetry.", "exact H."]})
        + "\n",
    )
    gen = ReplayGenerator(f)
    out, _ = best_first_search(SYM, backend, gen, SEARCH)
    assert out.reason is Reason.PROVED and out.proof is not None
    assert backend.check(SYM, out.proof).ok
    out2, _ = best_first_search(ADD0, backend, gen, SEARCH)
    assert out2.reason is Reason.PROVED, out2
    assert out2.proof is not None and "rewrite IHn." in out2.proof
    assert backend.check(ADD0, out2.proof).ok
    # a theorem the file does not mention gets no candidates: exhausted after one expansion
    other = coq_thm("other", "Theorem other : 1 + 1 = 2.")
    out3, tree3 = best_first_search(other, backend, gen, SEARCH)
    assert out3.reason is Reason.SEARCH_EXHAUSTED and out3.expansions == 1
    assert tree3.status(0) is NodeStatus.FAILED


def test_transpositions_are_merged_on_real_goals(backend: ProverBackend, tmp_path: Path) -> None:
    # `intros a b H` and `intro a; intro b; intro H` style paths reach the same goal text
    f = write(tmp_path, "t.txt", "intros a b H.\nintro a.\nintro b.\nintro H.\n")
    cfg = SearchConfig(candidates=8, max_expansions=10, time_budget=120.0, debug_invariants=True)
    out, tree = best_first_search(SYM, backend, ReplayGenerator(f), cfg)
    assert out.proof is None
    dup = [(u, v) for u, v, d in tree.graph.edges(data=True) if d["outcome"] == "duplicate"]
    assert dup, "reaching the introduced goal twice must be a duplicate edge"
    goals = [tree.goals(n) for n in tree.state_nodes()]
    assert len(goals) == len({" ".join(g.split()) for g in goals})


def test_trace_round_trips_through_node_link_json(backend: ProverBackend, tmp_path: Path) -> None:
    f = write(tmp_path, "t.txt", "intros a b H.\nsymmetry.\nexact H.\n")
    out, tree = best_first_search(SYM, backend, ReplayGenerator(f), SEARCH)
    path = tmp_path / "sym.json"
    path.write_text(json.dumps(tree.to_node_link()), encoding="utf-8")
    back = SearchTree.from_node_link(json.loads(path.read_text(encoding="utf-8")))
    back.check_invariants()
    assert back.proof() == list(out.proof or ())
    g = back.graph.graph
    assert g["theorem"] == "sym" and g["backend"] == "coq" and g["generator"] == "replay"
    assert g["reason"] == "proved" and g["proved"] is True
    assert back.graph.nodes[0]["goals"] == tree.graph.nodes[0]["goals"]
    assert "b = a" in back.graph.nodes[0]["goals"]


def test_bank_generator_proves_small_theorems(backend: ProverBackend) -> None:
    bank = pytest.importorskip("llemma_prover.generators.bank")
    gen = bank.BankGenerator("coq")
    gen.start()
    try:
        cfg = SearchConfig(candidates=32, max_expansions=8, time_budget=120.0, debug_invariants=True)
        for thm in (ADD0, SYM):
            out, _ = best_first_search(thm, backend, gen, cfg)
            assert out.reason is Reason.PROVED, (thm.name, out)
            assert backend.check(thm, out.proof or ()).ok
    finally:
        gen.close()
