"""The in-context check of library lemmas (``backends/coq/library_check.py``), its dependency graph
(``library_deps.py``) and the hiding of installed files (``Sandbox.hiding``), on real Coq.

A tiny library ``Tiny`` (``A.v``, and ``B.v`` which requires it) is compiled in the test; hostile
proofs are fed both as tactics (``check``) and as raw sentences with the structure parse skipped
(``check_sentences(parse_structure=False)``), so that each one is refused by the kernel-level steps
alone. Honest proofs (an earlier lemma, a section variable, an automation tactic, a lemma inside a
module) are accepted. Two real stdlib lemmas of ``ZArith/BinInt.v`` (a test-split file) are checked too.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ProcessWatcher

from llemma_prover.backends.coq.library_check import (
    LemmaContext,
    LibraryRechecker,
    automation_header,
    closable_prefix,
    open_blocks,
)
from llemma_prover.backends.coq.library_deps import LibraryDeps
from llemma_prover.backends.process import ManagedProcess
from llemma_prover.backends.sandbox import Sandbox
from llemma_prover.core.errors import ConfigError
from llemma_prover.extract.sources import coq_stdlib, file_split, library_source

pytestmark = pytest.mark.coq

A_V = """\
Definition double (n : nat) := n + n.

Lemma double_0 : double 0 = 0.
Proof. reflexivity. Qed.

Section S.
Variable k : nat.
Hypothesis Hk : k = 0.

Lemma double_k : double k = 0.
Proof. rewrite Hk. reflexivity. Qed.

Lemma later : double 1 = 2.
Proof. reflexivity. Qed.
End S.

Module M <: Empty.
Lemma in_module : double 2 = 4.
Proof. reflexivity. Qed.
End M.

Lemma uses_earlier : double 0 + 0 = 0.
Proof. rewrite double_0. reflexivity. Qed.

Module Type HasX.
Parameter x : nat.
Axiom x_0 : x = 0.
End HasX.

Module Fun (Import P : HasX).
Lemma in_functor : double x = 0.
Proof. rewrite x_0. reflexivity. Qed.
End Fun.
"""
# ``Empty`` is a module type declared before A's content (M is checked against it: the check must
# drop the constraint to close M right after the lemma)
A_V = "Module Type Empty.\nEnd Empty.\n\n" + A_V
B_V = "Require Import Tiny.A.\nLemma b : double 0 = 0.\nProof. exact double_0. Qed.\n"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    sb = Sandbox.detect()
    if sb.network != "bwrap":
        pytest.skip("library mode needs bubblewrap")
    return sb


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LibraryDeps]:
    """The compiled ``Tiny`` library (its ``.vo`` beside the sources) and its dependency graph."""
    root = tmp_path_factory.mktemp("tinylib")
    (root / "A.v").write_text(A_V)
    (root / "B.v").write_text(B_V)
    for f in ("A.v", "B.v"):
        subprocess.run(["coqc", "-q", "-R", ".", "Tiny", f], cwd=root, check=True, timeout=120)
    src = library_source(root, "Tiny")
    deps = LibraryDeps.build(src, cache_dir=str(tmp_path_factory.mktemp("cache")))
    return root, deps


def _ctx(
    root: Path,
    text: str,
    rel: str,
    lemma: str,
    logical: str,
    args: tuple[str, ...],
    library: str,
    automation: tuple[str, ...] = (),
) -> LemmaContext:
    m = re.search(r"(?:Lemma|Theorem)\s+" + re.escape(lemma) + r"\b", text)
    assert m is not None
    end = re.compile(r"\.\s").search(text, m.start())
    assert end is not None
    return LemmaContext(
        library=library,
        logical=logical,
        root=str(root),
        rel=rel,
        args=args,
        prefix=text[: m.start()],
        statement=text[m.start() : end.start() + 1],
        name=lemma,
        automation=automation,
    )


def tiny_ctx(root: Path, lemma: str, automation: tuple[str, ...] = ()) -> LemmaContext:
    return _ctx(root, A_V, "A.v", lemma, "Tiny", ("-R", str(root), "Tiny"), "Tiny", automation)


@pytest.fixture(scope="module")
def checker(sandbox: Sandbox, tiny: tuple[Path, LibraryDeps]) -> LibraryRechecker:
    return LibraryRechecker(sandbox, deps=tiny[1], timeout_s=120)


# -- the dependency graph ------------------------------------------------------------------------
def test_tiny_graph(tiny: tuple[Path, LibraryDeps]) -> None:
    _, deps = tiny
    assert deps.dependants("A.v") == {"A.v", "B.v"}
    assert deps.dependants("B.v") == {"B.v"}
    assert deps.automation_for("A.v", ["Coq.micromega.Lia", "Tiny.B"]) == ("Coq.micromega.Lia",)
    hidden = deps.hidden_paths("A.v")
    assert {Path(p).name for p in hidden} >= {"A.vo", "B.vo", "A.glob"}
    with pytest.raises(ConfigError):
        deps.automation_for("A.v", ["No.Such.Module"])


def test_stdlib_graph(tmp_path: Path) -> None:
    deps = LibraryDeps.build(coq_stdlib(), cache_dir=str(tmp_path))
    again = LibraryDeps.build(coq_stdlib(), cache_dir=str(tmp_path))  # from the cache
    assert again == deps
    assert file_split("coq-stdlib", "ZArith/BinInt.v") == "test"
    users = deps.dependants("ZArith/BinInt.v")
    assert {"ZArith/BinInt.v", "ZArith/ZArith.v", "micromega/Lia.v"} <= users
    assert "Init/Logic.v" not in users and "Lists/List.v" not in users
    # every stdlib file outside Init loads the prelude (coqdep does not list it)
    assert len(deps.dependants("Init/Prelude.v")) > 500
    automation = ["Coq.micromega.Lia", "Coq.setoid_ring.Ring", "Hammer.Tactics.Tactics"]
    assert deps.automation_for("ZArith/BinInt.v", automation) == ()
    assert deps.automation_for("Reals/Ranalysis5.v", automation) == tuple(automation)


# -- hiding ------------------------------------------------------------------------------------
def _coqc_in(sandbox: Sandbox, workdir: Path, source: str) -> tuple[int, str]:
    (workdir / "T.v").write_text(source)
    proc = ManagedProcess(["coqc", "-q", "T.v"], private_tmpdir=False, cwd=str(workdir), sandbox=sandbox)
    with proc:
        return proc.wait(time.monotonic() + 120)


def test_hidden_installed_file_cannot_be_required(sandbox: Sandbox, tmp_path: Path) -> None:
    """In the sandbox of a lemma of ``ZArith/BinInt.v``, ``Require Coq.ZArith.BinInt.`` fails (and so
    does a file that depends on it); without the hiding the same file compiles."""
    deps = LibraryDeps.build(coq_stdlib(), cache_dir=str(tmp_path / "cache"))
    hiding = sandbox.hiding(deps.hidden_paths("ZArith/BinInt.v"))
    for module in ("Coq.ZArith.BinInt", "Coq.micromega.Lia"):
        rc, out = _coqc_in(sandbox, tmp_path, f"Require {module}.\n")
        assert rc == 0, out
        rc, out = _coqc_in(hiding, tmp_path, f"Require {module}.\n")
        assert rc != 0 and f"{module.split('.')[-1]}.vo" in out and "Permission denied" in out, out
    rc, out = _coqc_in(hiding, tmp_path, "Require Coq.Lists.List.\n")  # not a dependant: still there
    assert rc == 0, out


def test_hiding_refused_without_bubblewrap() -> None:
    with pytest.raises(ConfigError, match="bubblewrap"):
        Sandbox(network="none").hiding(["/nonexistent.vo"])
    with pytest.raises(ConfigError, match="bubblewrap"):
        Sandbox(network="unshare", hidden=("/x.vo",)).wrap(["true"])


# -- the text the check writes ---------------------------------------------------------------------
def test_open_blocks_and_closable_prefix() -> None:
    prefix = (
        "(* c *)\nModule Z\n <: Sig1 (* x. *)\n <: Sig2.\nModule F (X : T) : S.\nSection A.\n"
        'Definition s := "End F. ".\nEnd A.\nModule N := Z.\nModule Type TT.\nSection B.\n- simpl.\n'
    )
    assert open_blocks(prefix) == (("Module", "Z"), ("Module", "F"), ("Module Type", "TT"), ("Section", "B"))
    closable = closable_prefix(prefix)
    assert "Module Z." in closable and "<:" not in closable
    # a functor's parameters become declared modules, a module type a module
    assert "Declare Module X : T.\nModule F." in closable and "Module TT." in closable
    assert "Module N := Z." in closable
    assert automation_header(["Coq.micromega.Lia"]) == "Require Import Coq.micromega.Lia.\n"
    with pytest.raises(ConfigError):
        automation_header(["Lia. Axiom x : False"])


# -- honest proofs pass ------------------------------------------------------------------------------
HONEST = [
    ("double_k", ["rewrite Hk.", "reflexivity."], ()),  # a section hypothesis
    ("uses_earlier", ["rewrite double_0.", "reflexivity."], ()),  # an earlier lemma
    ("in_module", ["reflexivity."], ()),  # inside a constrained module
    ("in_functor", ["rewrite x_0.", "reflexivity."], ()),  # inside a functor, using its parameter
    ("double_k", ["unfold double.", "lia."], ("Coq.micromega.Lia",)),  # an automation tactic
]


@pytest.mark.parametrize(("lemma", "tactics", "automation"), HONEST)
def test_honest_proofs_pass(
    checker: LibraryRechecker,
    tiny: tuple[Path, LibraryDeps],
    lemma: str,
    tactics: list[str],
    automation: tuple[str, ...],
) -> None:
    result = checker.check(tiny_ctx(tiny[0], lemma, automation), tactics)
    assert result.ok, result.message
    assert result.bad_axioms == ()


# -- hostile proofs are refused ------------------------------------------------------------------------
#: (label, lemma, tactics): refused by ``check`` (tactics as the search would hand them over)
HOSTILE_TACTICS = [
    ("admit", "later", ["admit."]),
    ("the lemma being proved", "double_k", ["exact double_k."]),
    ("a later lemma of the file, by its installed name", "double_k", ["exact (Tiny.A.later 0)."]),
    ("a later lemma, by its short name", "double_0", ["exact (later 0)."]),
    ("a vernacular after a tactic", "later", ["reflexivity. Qed. Lemma x : True."]),
    ("Abort inside a line", "later", ["Abort."]),
    ("printed fake success", "later", ['idtac "Closed under the global context"; admit.']),
    ("Require in an ltac term", "later", ["exact ltac:(idtac; Require Tiny.A)."]),
]


@pytest.mark.parametrize(("label", "lemma", "tactics"), HOSTILE_TACTICS, ids=[h[0] for h in HOSTILE_TACTICS])
def test_hostile_tactics_refused(
    checker: LibraryRechecker, tiny: tuple[Path, LibraryDeps], label: str, lemma: str, tactics: list[str]
) -> None:
    result = checker.check(tiny_ctx(tiny[0], lemma), tactics)
    assert not result.ok, label


#: (label, lemma, sentences after ``Proof using All.``, what the refusal says): each file compiles, the
#: structure parse is skipped, and the kernel-level steps refuse it
HOSTILE_FILES = [
    (
        "Admitted, then another lemma closed by the check's Qed",
        "later",
        ["Admitted.", "Lemma other : True.", "Proof.", "( exact I\n)."],
        "axiom of its own proof",
    ),
    (
        "Abort, then the name re-declared with another statement",
        "later",
        ["Abort.", "Lemma later : True.", "Proof.", "( exact I\n)."],
        "not the original statement",
    ),
    (
        "Admitted, shadowed by a module lemma of the same name",
        "double_0",
        ["Admitted.", "Module X.", "Lemma double_0 : double 0 = 0.", "Proof.", "( reflexivity\n)."],
        "axiom of its own proof",
    ),
    (
        "Admitted inside a functor, then another lemma",
        "in_functor",
        ["Admitted.", "Lemma other : True.", "Proof.", "( exact I\n)."],
        "axiom of its own proof",
    ),
    (
        "an axiom declared inside the proof",
        "later",
        ["Axiom cheat : forall P : Prop, P.", "( apply cheat\n)."],
        "does not bring in",
    ),
    (
        "Unset Guard Checking and an unguarded fixpoint",
        "double_0",
        ["Unset Guard Checking.", "( exact ((fix f (n : nat) : double 0 = 0 := f n) 0)\n)."],
        "does not bring in",
    ),
]


@pytest.mark.parametrize(
    ("label", "lemma", "sentences", "why"), HOSTILE_FILES, ids=[h[0] for h in HOSTILE_FILES]
)
def test_hostile_files_refused_by_the_kernel_steps(
    checker: LibraryRechecker,
    tiny: tuple[Path, LibraryDeps],
    label: str,
    lemma: str,
    sentences: list[str],
    why: str,
) -> None:
    ctx = tiny_ctx(tiny[0], lemma)
    if label.startswith("Admitted, shadowed"):
        sentences = [
            *sentences,
            "Qed.",
            "End X.",
            "Import X.",
            "Lemma pad : True.",
            "Proof.",
            "( exact I\n).",
        ]
    result = checker.check_sentences(ctx, sentences, parse_structure=False)
    assert not result.ok, label
    assert "coqc (proof file)" not in result.message, f"{label}: must compile, to test the kernel steps"
    assert why in result.message, result.message
    # the structure parse refuses it too, before any verdict of the kernel steps
    assert not checker.check_sentences(ctx, sentences).ok


def test_own_installed_copy_refused_even_unhidden(sandbox: Sandbox, tiny: tuple[Path, LibraryDeps]) -> None:
    """An automation import that loads the file's installed copy (``Tiny.B`` requires ``Tiny.A``) lets
    ``exact Tiny.A.double_k`` compile when nothing is hidden; step 5 (``Print Libraries`` against the
    graph's dependants) refuses it by module name. With the hiding the import itself cannot load."""
    root, deps = tiny
    ctx = tiny_ctx(root, "double_k", automation=("Tiny.B",))
    unhidden = LibraryRechecker(sandbox, deps=deps, hide=False, timeout_s=120)
    result = unhidden.check(ctx, ["exact (Tiny.A.double_k k Hk)."])
    assert not result.ok
    assert "installed copy of A.v" in result.message, result.message
    assert set(result.bad_axioms) == {"Tiny.A", "Tiny.B"}
    # the same honest proof in the same unhidden setting passes (the refusal is about Tiny.A alone)
    assert unhidden.check(tiny_ctx(root, "double_k"), ["rewrite Hk.", "reflexivity."]).ok
    hidden = LibraryRechecker(sandbox, deps=deps, timeout_s=120).check(ctx, ["exact (Tiny.A.double_k k Hk)."])
    assert not hidden.ok and "B.vo" in hidden.message and "Permission denied" in hidden.message, (
        hidden.message
    )


# -- a real stdlib test-split file ------------------------------------------------------------------
@pytest.fixture(scope="module")
def stdlib_checker(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> LibraryRechecker:
    deps = LibraryDeps.build(coq_stdlib(), cache_dir=str(tmp_path_factory.mktemp("cache")))
    return LibraryRechecker(sandbox, deps=deps, timeout_s=300)


def bin_int(lemma: str) -> LemmaContext:
    src = coq_stdlib()
    text = (Path(src.root) / "ZArith/BinInt.v").read_text()
    return _ctx(Path(src.root), text, "ZArith/BinInt.v", lemma, "Coq", (), "coq-stdlib")


def test_stdlib_binint_in_context(stdlib_checker: LibraryRechecker) -> None:
    ctx = bin_int("add_0_l")
    assert ("Module", "Z") in open_blocks(ctx.prefix)
    honest = stdlib_checker.check(ctx, ["now destruct n."])
    assert honest.ok, honest.message
    # the installed copy of the very lemma: not loadable (hidden), so the proof does not compile
    for tactic in ("exact Coq.ZArith.BinInt.Z.add_0_l.", "exact (Coq.ZArith.BinInt.Z.add_0_l n)."):
        result = stdlib_checker.check(ctx, [tactic])
        assert not result.ok, tactic


def test_no_leftover_processes(checker: LibraryRechecker, tiny: tuple[Path, LibraryDeps]) -> None:
    """Every process a check starts (coqc, coqchk, coqidetop, their bwrap wrappers) is gone after it,
    on acceptance and on refusal."""
    watcher = ProcessWatcher(os.getpid())
    try:
        assert checker.check(tiny_ctx(tiny[0], "later"), ["reflexivity."]).ok
        assert not checker.check(tiny_ctx(tiny[0], "later"), ["admit."]).ok
    finally:
        watcher.stop()
    assert watcher.matching("coq"), "the watcher saw no Coq process: it watched the wrong tree"
    assert watcher.alive("coq", timeout=10) == []
    assert watcher.alive("bwrap", timeout=10) == []


def test_stdlib_lemma_inside_a_functor(stdlib_checker: LibraryRechecker) -> None:
    """``Logic/ProofIrrelevanceFacts.v`` (test split): ``eq_rect_eq`` sits in module ``Eq_rect_eq`` of
    the functor ``ProofIrrelevanceTheory (M : ProofIrrelevance)``; the parameter is declared, so the
    lemma has a name and its axioms (the parameter's field among them) are listed by coqchk."""
    src = coq_stdlib()
    text = (Path(src.root) / "Logic/ProofIrrelevanceFacts.v").read_text()
    ctx = _ctx(Path(src.root), text, "Logic/ProofIrrelevanceFacts.v", "eq_rect_eq", "Coq", (), "coq-stdlib")
    assert [kind for kind, _ in open_blocks(ctx.prefix)] == ["Module", "Module"]
    tactics = ["intros U p Q x h; rewrite (M.proof_irrelevance _ h (eq_refl p)).", "reflexivity."]
    result = stdlib_checker.check(ctx, tactics)
    assert result.ok, result.message
    assert "LlemmaCheck.M.proof_irrelevance" in result.axioms
    assert not stdlib_checker.check(ctx, ["apply Coq.Logic.ProofIrrelevanceFacts.eq_rect_eq."]).ok


def test_check_refuses_to_run_unhidden(tiny: tuple[Path, LibraryDeps]) -> None:
    """Without bubblewrap the check raises (library mode refuses) instead of running unhidden."""
    for sandbox in (Sandbox(), Sandbox(network="unshare")):
        with pytest.raises(ConfigError, match="bubblewrap"):
            LibraryRechecker(sandbox, deps=tiny[1]).check(tiny_ctx(tiny[0], "later"), ["reflexivity."])


def test_loaded_libraries_parse() -> None:
    from llemma_prover.backends.coq.library_check import _loaded_libraries

    out = "x\nLoaded library files: \n  Coq.Init.Prelude\n  LlemmaCheck\nAxioms:\n"
    assert _loaded_libraries(out) == ["Coq.Init.Prelude", "LlemmaCheck"]
    assert _loaded_libraries("no such answer") == []


def test_graph_without_a_writable_cache(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    deps = LibraryDeps.build(coq_stdlib(), cache_dir=str(blocked / "cache"))
    assert "ZArith/BinInt.v" in deps.dependants("ZArith/BinInt.v")
