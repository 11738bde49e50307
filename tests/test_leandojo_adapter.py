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
from llemma_prover.backends.leandojo import (  # noqa: E402
    SORRY_WARNING_REGEX,
    LeanDojoBackend,
    LeanDojoSettings,
    parse_source,
)
from llemma_prover.core.config import ProverConfig  # noqa: E402
from llemma_prover.core.errors import ProverCrashed, ProverStartError, ProverUnavailable  # noqa: E402
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


class SpawningDojo(FakeDojo):
    """Like ``Dojo.__enter__``: spawns a real process with ``pexpect.spawn`` (as LeanDojo spawns
    ``lake env lean``), then fails in one of the ways the real one can."""

    def __init__(self, error: BaseException) -> None:
        super().__init__({})
        self.error = error
        self.proc = None

    def __enter__(self):
        import pexpect

        # a shell that forks a child, like ``lake env lean``
        self.proc = pexpect.spawn("/bin/sh", ["-c", "sleep 300 & sleep 300"], timeout=5, encoding="utf-8")
        raise self.error

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        raise AttributeError("'Dojo' object has no attribute 'modified_file'")  # __exit__ can fail too


@pytest.mark.parametrize(
    "error",
    [
        lean_dojo.DojoInitError("Timeout during initialization"),
        AssertionError(),  # ``assert res["error"] is None`` in Dojo.__enter__
        RuntimeError("re-raised by Dojo.__enter__"),
        ValueError("Cannot find the *.ast.json file"),
    ],
    ids=["init-timeout", "assert", "runtime", "value"],
)
def test_every_start_failure_is_a_start_error_with_the_tree_torn_down(error: BaseException) -> None:
    from llemma_prover.core import procfs

    dojo = SpawningDojo(error)
    b = LeanDojoBackend(ProverConfig(), dojo_factory=lambda _t: dojo)
    with pytest.raises(ProverStartError, match=type(error).__name__) as ei:
        b.start_theorem(THM)
    assert ei.value.__cause__ is error
    pid = dojo.proc.pid
    assert not dojo.proc.isalive() and not procfs.group_members(pid)  # the shell and its sleeps
    b.close()


def test_start_timeout_for_entering_then_tactic_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ``Dojo`` is built with the start timeout (it bounds elaborating ``import Mathlib``) and
    every later read gets the tactic timeout."""
    made: list[object] = []

    class Recorder(FakeDojo):
        def __init__(self, entry: object, timeout: int) -> None:
            super().__init__({})
            self.timeout = timeout
            self.proc = type("Proc", (), {"timeout": timeout, "pid": None})()
            made.append(self)

    monkeypatch.setattr(lean_dojo, "Dojo", Recorder)
    cfg = ProverConfig(tactic_timeout=7, start_timeout=900)
    b = LeanDojoBackend(cfg)
    monkeypatch.setattr(b, "entry", lambda _t: "entry")
    b.start_theorem(THM)
    (dojo,) = made
    assert dojo.timeout == 7 and dojo.proc.timeout == 7  # type: ignore[attr-defined]
    assert b.settings.start_timeout == 900
    b.close()
    # the class default: generous for Mathlib, not the tactic timeout
    default = LeanDojoBackend.setup.default_config()
    assert default.start_timeout >= 300 and default.start_timeout > default.tactic_timeout


def test_missing_or_old_lean_dojo_is_one_line_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    import llemma_prover.backends.leandojo as mod

    monkeypatch.setitem(sys.modules, "lean_dojo", None)  # import lean_dojo -> ImportError
    with pytest.raises(ProverUnavailable) as ei:
        LeanDojoBackend(ProverConfig()).start()
    assert "pip install 'llemma-prover[leandojo]'" in str(ei.value) and "\n" not in str(ei.value)
    monkeypatch.setattr(mod, "lean_dojo_version", lambda: (2, 0, 0))
    with pytest.raises(ProverUnavailable, match="2.0.0 is too old"):
        LeanDojoBackend(ProverConfig()).start()


def test_check_proof_sorry_detection_covers_both_spellings() -> None:
    from lean_dojo.interaction import dojo as dojo_module

    b = LeanDojoBackend(ProverConfig())
    b.start()
    assert dojo_module._SORRY_WARNING_REGEX is SORRY_WARNING_REGEX
    for quote in ("'", "`"):
        out = f"File.lean:12:8: warning: declaration uses {quote}sorry{quote}\n"
        m = dojo_module._SORRY_WARNING_REGEX.search(out)
        assert m is not None and m.group("line") == "12", quote


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
