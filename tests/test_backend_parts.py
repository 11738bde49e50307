"""The backend interface stays narrow (issue 20 item 4): the session (``ProverBackend``) and each part
a backend carries (``backends/parts.py``) has at most ``MAX_METHODS`` public methods, counted here as a
ratchet; a backend's concrete parts add no public method their interface lacks; the parts are reached
without constructing a session; the doctor imports backends, never the reverse. Pure: no prover runs."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from llemma_prover.backends.base import (
    DataHooks,
    ProofDialect,
    ProverBackend,
    ProverSetup,
    SketchDialect,
    backend_class,
    register_backend,
)
from llemma_prover.core.config import BACKENDS

PACKAGE = Path(__file__).resolve().parents[1] / "llemma_prover"

#: the most public methods (and properties) one part of the interface may have
MAX_METHODS = 12
#: today's counts: a part may shrink; growing one means changing this table on purpose, within the cap
#: (ProverBackend 10 -> 11: ``prepare_check``, the batching checker's work ahead of a check, issue 21)
COUNTS = {ProverBackend: 11, ProofDialect: 6, SketchDialect: 5, DataHooks: 6, ProverSetup: 5}
#: the attribute of a session class that carries each part
PARTS = {"dialect": ProofDialect, "sketches": SketchDialect, "data": DataHooks, "setup": ProverSetup}


def public_methods(cls: type) -> list[str]:
    """Public methods, classmethods, staticmethods and properties of ``cls`` (inherited ones included,
    ``object``'s and ``abc.ABC``'s left out); data attributes (``proof_ext``, ...) are not methods."""
    names = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, (classmethod, staticmethod, property)) or inspect.isfunction(attr):
            names.append(name)
    return sorted(names)


def test_the_counter_counts_methods_not_data() -> None:
    class Part(ProofDialect):
        proof_ext = "x"

        def proof_text(self, theorem, proof):  # type: ignore[no-untyped-def]
            return ""

        @property
        def extra(self) -> int:
            return 0

    assert public_methods(Part) == sorted([*public_methods(ProofDialect), "extra"])
    assert "proof_ext" not in public_methods(Part) and "backend" not in public_methods(Part)


@pytest.mark.parametrize("part", list(COUNTS), ids=lambda c: c.__name__)
def test_no_part_has_more_than_twelve_methods(part: type) -> None:
    methods = public_methods(part)
    assert len(methods) <= MAX_METHODS, f"{part.__name__} has {len(methods)} methods: {methods}"
    assert len(methods) == COUNTS[part], (
        f"{part.__name__}: {len(methods)} methods {methods}, the table says {COUNTS[part]}: update COUNTS "
        f"on purpose (at most {MAX_METHODS})")


def test_the_session_holds_only_the_session() -> None:
    assert public_methods(ProverBackend) == sorted(
        ["start", "close", "start_theorem", "apply", "check", "check_audited", "check_many", "prepare_check",
         "probe", "restarts", "stats"])


@pytest.mark.parametrize("name", BACKENDS)
def test_each_backend_carries_its_own_parts_and_widens_none(name: str) -> None:
    cls = backend_class(name)
    for attr, interface in PARTS.items():
        part = getattr(cls, attr)
        assert isinstance(part, interface) and part.backend == name, (attr, part)
        extra = set(public_methods(type(part))) - set(public_methods(interface))
        assert not extra, f"{name}: {type(part).__name__} adds {sorted(extra)} to {interface.__name__}"


def test_a_part_of_another_backend_is_refused() -> None:
    from llemma_prover.backends.coq.text import CoqDialect

    class Wrong(ProverBackend):
        dialect = CoqDialect("coq")

    with pytest.raises(TypeError, match="a part of another backend"):
        register_backend("not-coq")(Wrong)


def _imports(path: Path) -> list[str]:
    """The absolute module names ``path`` imports (relative imports resolved), every import counted."""
    here = list(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - (node.level - 1)] if node.level else []
            out.append(".".join(base + (node.module.split(".") if node.module else [])))
            out += [f"{out[-1]}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def test_backends_never_import_the_doctor() -> None:
    wrong = [f"{p.relative_to(PACKAGE)}: {m}" for p in sorted((PACKAGE / "backends").rglob("*.py"))
             for m in _imports(p) if m.startswith("llemma_prover.doctor")]
    assert not wrong, wrong
    doctor = [m for p in (PACKAGE / "doctor").rglob("*.py") for m in _imports(p)]
    assert any(m.startswith("llemma_prover.backends") for m in doctor)  # the other direction exists
