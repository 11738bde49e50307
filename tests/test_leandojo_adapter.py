"""LeanDojo adapter: the real ``lean_dojo`` result and exception classes, a stand-in only for ``Dojo``.

``Dojo`` itself needs a traced repository and a Lean toolchain (neither can exist here); the
stand-in returns real ``lean_dojo.TacticState``/``ProofFinished``/``LeanError``/``ProofGivenUp``
objects and raises the real ``DojoTacticTimeoutError``/``DojoCrashError``/``DojoInitError``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

lean_dojo = pytest.importorskip("lean_dojo")

from llemma_prover.backends.base import make_backend  # noqa: E402
from llemma_prover.backends.leandojo import LeanDojoBackend, LeanDojoSettings, parse_source  # noqa: E402
from llemma_prover.core.config import ProverConfig  # noqa: E402
from llemma_prover.core.errors import ProverCrashed, ProverStartError  # noqa: E402
from llemma_prover.core.types import Advanced, ProofFinished, TacticError, TacticTimeout, Theorem  # noqa: E402

ROOT = "p q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p ∧ r"
SPLIT = (
    "case left\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p\n\n"
    "case right\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ r"
)
RIGHT = "case right\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ r"

THM = Theorem(
    name="complex_and",
    split="test",
    system="lean4",
    header="import Mathlib\n",
    statement="theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r :=",
    source="yangky11/miniF2F-lean4/MiniF2F/Test/complex_and.lean@5746b7d6c47855ce1294bed87329618ff7f1bc31",
)


class FakeDojo:
    """Stands in for ``lean_dojo.Dojo`` (context manager + ``run_tac``) with scripted real results."""

    instances: list[FakeDojo] = []

    def __init__(self, faults: dict[str, list[BaseException]]) -> None:
        self.faults = faults
        self.exited = False
        self.calls: list[tuple[str, str]] = []
        self._sid = 0
        FakeDojo.instances.append(self)

    def __enter__(self):
        return self, lean_dojo.TacticState(ROOT, 0)

    def __exit__(self, *exc: object) -> None:
        self.exited = True

    def run_tac(self, state, tactic: str):
        assert not self.exited
        self.calls.append((state.pp, tactic))
        pending = self.faults.get(tactic)
        if pending:
            raise pending.pop(0)
        self._sid += 1
        table = {
            (ROOT, "apply And.intro"): lambda: lean_dojo.TacticState(SPLIT, self._sid),
            (SPLIT, "exact h1.left"): lambda: lean_dojo.TacticState(RIGHT, self._sid),
            (RIGHT, "exact h2 h1.right"): lambda: lean_dojo.ProofFinished(self._sid, ""),
            (ROOT, "exact foo"): lambda: lean_dojo.LeanError("unknown identifier 'foo'"),
            (ROOT, "simp"): lambda: lean_dojo.ProofGivenUp(),
        }
        return table[(state.pp, tactic)]()


def backend(faults: dict[str, list[BaseException]] | None = None, **kw) -> LeanDojoBackend:
    FakeDojo.instances.clear()
    f = faults or {}
    return LeanDojoBackend(
        ProverConfig(), LeanDojoSettings(tactic_timeout=3, **kw), dojo_factory=lambda _t: FakeDojo(f)
    )


def test_registered_and_lean_dojo_imported_lazily() -> None:
    assert isinstance(make_backend("leandojo", ProverConfig()), LeanDojoBackend)
    code = (
        "import sys, llemma_prover.backends.leandojo as m;"
        "from llemma_prover.backends.base import make_backend;"
        "from llemma_prover.core.config import ProverConfig; make_backend('leandojo', ProverConfig());"
        "print('lean_dojo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_outcomes_map_onto_the_interface() -> None:
    with backend() as b:
        root = b.start_theorem(THM)
        assert root.goals == (ROOT,)
        s1 = b.apply(root.state_id, "apply And.intro")
        assert isinstance(s1, Advanced) and len(s1.goals) == 2 and s1.goal_text == SPLIT
        err = b.apply(root.state_id, "exact foo")
        assert isinstance(err, TacticError) and "unknown identifier" in err.message and not err.rejected
        given_up = b.apply(root.state_id, "simp")
        assert isinstance(given_up, TacticError) and "sorry" in given_up.message
        rej = b.apply(root.state_id, "sorry")
        assert isinstance(rej, TacticError) and rej.rejected
        s2 = b.apply(s1.state_id, "exact h1.left")
        done = b.apply(s2.state_id, "exact h2 h1.right")  # type: ignore[union-attr]
        assert isinstance(done, ProofFinished)
        dojo = FakeDojo.instances[-1]
    assert dojo.exited
    assert all(t != "sorry" for _p, t in dojo.calls)  # refused before Lean


def test_timeout_restarts_and_replays() -> None:
    with backend({"exact h1.left": [lean_dojo.DojoTacticTimeoutError()]}) as b:
        root = b.start_theorem(THM)
        s1 = b.apply(root.state_id, "apply And.intro")
        r = b.apply(s1.state_id, "exact h1.left")  # type: ignore[union-attr]
        assert isinstance(r, TacticTimeout) and r.timeout == 3
        assert FakeDojo.instances[0].exited and b.restarts == 1
        s2 = b.apply(s1.state_id, "exact h1.left")  # type: ignore[union-attr]
        assert isinstance(s2, Advanced) and s2.goals == (RIGHT,)
        assert len(FakeDojo.instances) == 2 and b.stats()["replayed_tactics"] == 1
        assert FakeDojo.instances[1].calls[0] == (ROOT, "apply And.intro")


def test_crash_raises_then_recovers() -> None:
    with backend({"apply And.intro": [lean_dojo.DojoCrashError("OOM")]}) as b:
        root = b.start_theorem(THM)
        with pytest.raises(ProverCrashed, match="OOM"):
            b.apply(root.state_id, "apply And.intro")
        assert isinstance(b.apply(root.state_id, "apply And.intro"), Advanced)


def test_init_error_is_start_error() -> None:
    class Broken(FakeDojo):
        def __enter__(self):
            raise lean_dojo.DojoInitError("Cannot find the *.ast.json file")

    b = LeanDojoBackend(ProverConfig(), dojo_factory=lambda _t: Broken({}))
    with pytest.raises(ProverStartError, match="ast.json"):
        b.start_theorem(THM)
    b.close()


def test_check_uses_checker_text_and_refuses_cheats() -> None:
    seen: list[str] = []

    def checker(t: Theorem, text: str) -> bool:
        seen.append(text)
        return True

    b = LeanDojoBackend(ProverConfig(), checker=checker)
    c = b.check(THM, ["apply And.intro", "exact h1.left", "exact h2 h1.right"])
    assert c.ok and c.checker == "leandojo.check_proof" and "axioms not audited" in c.message
    assert seen == [" by\n  apply And.intro\n  exact h1.left\n  exact h2 h1.right"]
    assert not b.check(THM, ["exact sorry"]).ok and len(seen) == 1


def test_parse_source_of_minif2f_records() -> None:
    assert parse_source(THM.source) == (
        "https://github.com/yangky11/miniF2F-lean4",
        "MiniF2F/Test/complex_and.lean",
        "5746b7d6c47855ce1294bed87329618ff7f1bc31",
    )
    with pytest.raises(ProverStartError):
        parse_source("no-commit")
