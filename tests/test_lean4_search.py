"""Best-first search (llemma_prover.search.best_first) over the Lean 4 backend and the replay REPL.

The generator is scripted per goal text (the goal strings are the REPL's own pretty-printed goals).
Besides the recorded tactics it proposes cheats (refused before Lean), a tactic the replay REPL is
told to hang on (timeout -> kill -> restart, then the search goes on with states replayed in the new
process) and one it is told to exit on (crash -> restart).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from llemma_prover.backends.lean4 import Lean4Backend, Lean4Settings
from llemma_prover.backends.lean4.pool import PoolPolicy
from llemma_prover.backends.lean4.repl_process import ProcessPolicy, group_alive
from llemma_prover.core.config import ProverConfig, SearchConfig
from llemma_prover.core.types import Candidate, Reason, Theorem
from llemma_prover.generators.base import TacticGenerator
from llemma_prover.search.best_first import best_first_search

REPO = Path(__file__).resolve().parents[1]
TRANSCRIPTS = Path(
    os.environ.get("LLEMMA_PROVER_LEAN_TRANSCRIPTS", REPO.parent / "shared/lean4_repl/transcripts")
)
pytestmark = pytest.mark.skipif(not TRANSCRIPTS.is_dir(), reason="no REPL transcripts")

HANG = "nlinarith [h]"
CRASH = "omega"

# proof_branching2: `example (p q : Prop) : p ∧ q → q ∧ p := by sorry`, goals as the REPL printed them
SCRIPT: dict[str, list[tuple[str, float]]] = {
    "p q : Prop\n⊢ p ∧ q → q ∧ p": [("sorry", -0.01), ("exact?", -0.02), (HANG, -0.05), ("intro h", -0.3)],
    "p q : Prop\nh : p ∧ q\n⊢ q ∧ p": [
        (CRASH, -0.01),
        ("native_decide", -0.02),
        ("have hp : p := h.left", -0.2),
    ],
    "p q : Prop\nh : p ∧ q\nhp : p\n⊢ q ∧ p": [("have hq : q := h.right", -0.1)],
    "p q : Prop\nh : p ∧ q\nhp : p\nhq : q\n⊢ q ∧ p": [("admit", -0.01), ("apply And.intro", -0.1)],
    "case left\np q : Prop\nh : p ∧ q\nhp : p\nhq : q\n⊢ q\n\n"
    "case right\np q : Prop\nh : p ∧ q\nhp : p\nhq : q\n⊢ p": [("exact hq", -0.1)],
    "case right\np q : Prop\nh : p ∧ q\nhp : p\nhq : q\n⊢ p": [("exact hp", -0.1)],
}


class ScriptedGenerator(TacticGenerator):
    name = "scripted"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        self.asked.append(goal_text)
        return [Candidate(t, s) for t, s in SCRIPT.get(goal_text, [])][:k]


def test_best_first_search_proves_through_timeout_and_crash(tmp_path: Path) -> None:
    cmd = (
        sys.executable,
        "-m",
        "llemma_prover.testing.replay_repl",
        "--transcripts",
        str(TRANSCRIPTS),
        "--hang",
        HANG,
        "--exit",
        CRASH,
        "--spawn-child",
    )
    settings = Lean4Settings(
        command=cmd,
        command_cwd=str(REPO),
        tactic_timeout=1.5,
        start_timeout=20,
        pool=PoolPolicy(start_timeout=20, recycle_rss_mb=0, warm_spare=False),
        process=ProcessPolicy(address_space_mb=4096, rss_kill_mb=2048),
    )
    theorem = Theorem(
        name="swap",
        split="test",
        system="lean4",
        header="",
        statement="example (p q : Prop) : p ∧ q → q ∧ p :=",
    )
    gen = ScriptedGenerator()
    backend = Lean4Backend(ProverConfig(), settings)
    with backend:
        outcome, tree = best_first_search(
            theorem,
            backend,
            gen,
            SearchConfig(candidates=8, max_expansions=20, time_budget=60, debug_invariants=True),
        )
        pgid = backend._session.process.pgid if backend._session else None
        stats = backend.stats()
    assert outcome.reason is Reason.PROVED, outcome
    assert outcome.proof == (
        "intro h",
        "have hp : p := h.left",
        "have hq : q := h.right",
        "apply And.intro",
        "exact hq",
        "exact hp",
    )
    # one timeout, and the crashing tactic crashes again when tried once more (PROVER_ERROR_RETRIES)
    assert outcome.restarts == 3
    assert outcome.extra["prover_errors"] == 2
    outcomes = [d["outcome"] for _u, _v, d in tree.graph.edges(data=True)]
    assert outcomes.count("timeout") == 1 and outcomes.count("rejected") == 4
    assert stats["replayed_tactics"] >= 1  # states from the killed processes were rebuilt
    assert pgid is not None and not group_alive(pgid)
