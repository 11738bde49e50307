"""The batched in-context check (``LibraryRechecker.check_batch``) and the reference's disk cache, on
real Coq: honest proofs of several lemmas of one file pass in one batch; a hostile proof in a batch
makes only its own lemma fail (the batch is refused and each lemma is checked on its own); a batch
broken by ``Proof using All.`` (a section lemma generalised over every section hypothesis, used by a
later original proof) falls back too; a second checker sharing the cache directory compiles no
reference.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from test_library_check import A_V, sandbox, tiny, tiny_ctx  # noqa: F401 (fixtures)

import llemma_prover.backends.coq.library_check as lc
from llemma_prover.backends.coq.library_check import BatchItem, LemmaContext, LibraryRechecker
from llemma_prover.backends.coq.library_deps import LibraryDeps
from llemma_prover.backends.sandbox import Sandbox
from llemma_prover.extract.sources import library_source

pytestmark = pytest.mark.coq

C_V = """\
Section S.
Variable n : nat.
Hypothesis Hn : n = 0.

Lemma plus_zero : n + 0 = n.
Proof. symmetry. apply plus_n_O. Qed.

Lemma uses_h : n + 0 = 0.
Proof. rewrite Hn. reflexivity. Qed.
End S.

Lemma after : 3 + 0 = 3.
Proof. exact (plus_zero 3). Qed.

Lemma last_one : 0 + 0 = 0.
Proof. reflexivity. Qed.
"""


def _end(text: str, ctx: LemmaContext) -> int:
    """Where the lemma's original proof ends (after its ``Qed.``)."""
    m = re.compile(r"Qed\.").search(text, len(ctx.prefix))
    assert m is not None
    return m.end()


def tiny_item(root: Path, lemma: str, tactics: list[str]) -> BatchItem:
    ctx = tiny_ctx(root, lemma)
    return BatchItem(ctx, tuple(tactics), _end(A_V, ctx))


@pytest.fixture()
def checker(sandbox: Sandbox, tiny: tuple[Path, LibraryDeps], tmp_path: Path) -> LibraryRechecker:  # noqa: F811
    return LibraryRechecker(sandbox, deps=tiny[1], timeout_s=120, cache_dir=str(tmp_path / "refs"))


def test_batch_of_honest_proofs_passes_at_once(
    checker: LibraryRechecker, tiny: tuple[Path, LibraryDeps]  # noqa: F811
) -> None:
    items = [
        tiny_item(tiny[0], "double_0", ["reflexivity."]),
        tiny_item(tiny[0], "double_k", ["rewrite Hk.", "reflexivity."]),
        tiny_item(tiny[0], "uses_earlier", ["rewrite double_0.", "reflexivity."]),
    ]
    results = checker.check_batch(items)
    assert [r.ok for r in results] == [True, True, True], [r.message for r in results]
    assert all(r.message == "batched: 3" for r in results), checker.last_batch_refusal
    assert checker.times["batch_fallbacks"] == 0
    assert checker.times["checks"] == 0  # no lemma was checked on its own
    assert checker.times["references"] == 1  # one reference compile for the three


def test_batch_over_a_closed_constrained_module(
    checker: LibraryRechecker, tiny: tuple[Path, LibraryDeps]  # noqa: F811
) -> None:
    """``in_module`` is inside ``Module M <: Empty``, closed before ``uses_earlier``: batched."""
    items = [
        tiny_item(tiny[0], "in_module", ["reflexivity."]),
        tiny_item(tiny[0], "uses_earlier", ["rewrite double_0.", "reflexivity."]),
    ]
    results = checker.check_batch(items)
    assert [r.ok for r in results] == [True, True], [r.message for r in results]
    assert all(r.message == "batched: 2" for r in results), checker.last_batch_refusal


@pytest.mark.parametrize(
    ("label", "hostile"),
    [
        ("admit and Qed", ["admit."]),
        ("an axiom smuggled in an ltac term", ["exact ltac:(idtac; Axiom cheat : double k = 0)."]),
        ("the lemma itself", ["exact double_k."]),
    ],
)
def test_hostile_proof_fails_only_its_own_lemma(
    checker: LibraryRechecker, tiny: tuple[Path, LibraryDeps], label: str, hostile: list[str]  # noqa: F811
) -> None:
    items = [
        tiny_item(tiny[0], "double_0", ["reflexivity."]),
        tiny_item(tiny[0], "double_k", hostile),
        tiny_item(tiny[0], "uses_earlier", ["rewrite double_0.", "reflexivity."]),
    ]
    results = checker.check_batch(items)
    assert [r.ok for r in results] == [True, False, True], label
    assert checker.times["batch_fallbacks"] == 1 and checker.last_batch_refusal
    assert all("batched" not in r.message for r in results)


@pytest.mark.parametrize(
    ("first", "sentences"),
    [
        ("double_0", ["Axiom cheat : forall P : Prop, P.", "( apply cheat\n)."]),
        # inside ``Module M <: Empty``, closed before the last lemma: coqchk still sees M's lemma
        ("in_module", ["Admitted.", "Lemma other : True.", "Proof.", "( exact I\n)."]),
    ],
)
def test_kernel_refuses_a_batch_with_a_smuggled_axiom(
    checker: LibraryRechecker, tiny: tuple[Path, LibraryDeps], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    first: str, sentences: list[str],
) -> None:
    """The structure parse skipped and raw sentences fed: the batch's own kernel steps refuse an axiom
    declared inside, or an admitted lemma closed by, an earlier lemma's proof (coqchk lists it; the
    reference does not allow it)."""
    items = [
        tiny_item(tiny[0], first, ["x"] * len(sentences)),
        tiny_item(tiny[0], "uses_earlier", ["c"]),
    ]
    queue = [*sentences, "( rewrite double_0; reflexivity\n)."]
    monkeypatch.setattr(lc, "tactic_sentence", lambda t: queue.pop(0))
    monkeypatch.setattr(checker, "_batch_structure", lambda *a, **k: None)
    with pytest.raises(lc._Failed, match="does not bring in"):
        checker._batch(items, time.monotonic())


@pytest.fixture(scope="module")
def tiny2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LibraryDeps]:
    root = tmp_path_factory.mktemp("tiny2lib")
    (root / "C.v").write_text(C_V)
    subprocess.run(["coqc", "-q", "-R", ".", "Tiny2", "C.v"], cwd=root, check=True, timeout=120)
    deps = LibraryDeps.build(library_source(root, "Tiny2"), cache_dir=str(tmp_path_factory.mktemp("cache")))
    return root, deps


def _c_item(root: Path, lemma: str, tactics: list[str]) -> BatchItem:
    m = re.search(r"Lemma\s+" + lemma + r"\b", C_V)
    assert m is not None
    stmt_end = C_V.index(".\n", m.start()) + 1
    ctx = LemmaContext(library="Tiny2", logical="Tiny2", root=str(root), rel="C.v",
                       args=("-R", str(root), "Tiny2"), prefix=C_V[: m.start()],
                       statement=C_V[m.start() : stmt_end], name=lemma)
    return BatchItem(ctx, tuple(tactics), _end(C_V, ctx))


def test_proof_using_all_breaking_a_later_proof_falls_back(
    sandbox: Sandbox, tiny2: tuple[Path, LibraryDeps], tmp_path: Path  # noqa: F811
) -> None:
    """``plus_zero`` checked with ``Proof using All.`` is generalised over ``Hn`` too, so the original
    proof of ``after`` (``plus_zero 3``) does not compile in the batch file: the batch is refused and
    both lemmas pass on their own."""
    checker = LibraryRechecker(sandbox, deps=tiny2[1], timeout_s=120, cache_dir=str(tmp_path))
    items = [
        _c_item(tiny2[0], "plus_zero", ["symmetry.", "apply plus_n_O."]),
        _c_item(tiny2[0], "last_one", ["reflexivity."]),
    ]
    results = checker.check_batch(items)
    assert [r.ok for r in results] == [True, True], [r.message for r in results]
    assert checker.times["batch_fallbacks"] == 1
    assert "coqc (batch proof file)" in checker.last_batch_refusal


def test_reference_cached_on_disk(
    sandbox: Sandbox, tiny: tuple[Path, LibraryDeps], tmp_path: Path  # noqa: F811
) -> None:
    first = LibraryRechecker(sandbox, deps=tiny[1], timeout_s=120, cache_dir=str(tmp_path))
    assert first.check(tiny_ctx(tiny[0], "later"), ["reflexivity."]).ok
    assert first.times["references"] == 1 and len(list(tmp_path.glob("*.json"))) == 1
    second = LibraryRechecker(sandbox, deps=tiny[1], timeout_s=120, cache_dir=str(tmp_path))
    assert second.check(tiny_ctx(tiny[0], "later"), ["reflexivity."]).ok
    assert second.times["references"] == 0  # read from disk: no reference compile
    assert not second.check(tiny_ctx(tiny[0], "later"), ["admit."]).ok
    # a damaged cache file is compiled again, never trusted
    for f in tmp_path.glob("*.json"):
        f.write_text("{")
    third = LibraryRechecker(sandbox, deps=tiny[1], timeout_s=120, cache_dir=str(tmp_path))
    assert third.check(tiny_ctx(tiny[0], "later"), ["reflexivity."]).ok
    assert third.times["references"] == 1
