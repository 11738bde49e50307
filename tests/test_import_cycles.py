"""No import cycle anywhere in the package: the module graph of ``llemma_prover`` is acyclic.

Every import counts -- at module level, inside functions and under ``TYPE_CHECKING`` alike -- so a
cycle cannot hide behind a lazy import. ``from pkg import name`` is an edge to ``pkg.name`` when that
is a module, else to ``pkg``; importing ``a.b.c`` is an edge to ``a.b.c`` only (its parent packages'
``__init__`` run too, but a package that imports its own submodules is not a circle of its files).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "llemma_prover"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (every import statement in its file)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        # the package a relative import starts from
        here = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - (node.level - 1)]
                    src = ".".join(base + (node.module.split(".") if node.module else []))
                else:
                    src = node.module or ""
                for alias in node.names:
                    sub = f"{src}.{alias.name}"
                    targets.append(sub if sub in modules else src)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[mod].update(t for t in targets if t in modules and t != mod)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_the_finder_sees_a_cycle() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(g) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_reads_relative_and_lazy_imports() -> None:
    g = import_graph()
    # a relative import at module level, and one inside a function (``doctor.runner`` imports
    # ``backends.base``; the doctor imports backends, never the reverse)
    assert "llemma_prover.core.config" in g["llemma_prover.backends.base"]
    assert "llemma_prover.backends.base" in g["llemma_prover.doctor.runner"]


def test_no_import_cycle_in_the_package() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (break each one):\n" + "\n".join(" <-> ".join(c) for c in cycles)
