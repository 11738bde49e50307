"""No caller branches on a backend's name: what differs per prover is asked of the backend
(``ProverBackend`` and its parts, ``proof_dialect(name)``, ``sketch_dialect(name)``, ``data_hooks(name)``,
``prover_setup(name)``: ``proof_ext``, ``preflight``, ``proof_text``, ``parse_sketch``, ...).

Counted with ``ast`` in the package outside ``backends/``:

* a comparison (``==``, ``!=``, ``in``, ``not in``) between something named like a backend
  (``backend``, ``backend_name``, ``cfg.backend``, ``system``, ...) and a backend's name;
* a ``match`` on something named like a backend with a backend's name as a ``case``;
* a subscript or ``.get`` keyed by a backend's name (``TABLE["coq"]``, ``table.get("lean4")``);
* a table keyed by backend names (a ``dict`` display with two or more of them as keys): looking a
  backend's behaviour up in it is a branch on its name too. ``core/config.py`` is the one place that
  defines the names (``BACKENDS``, and ``DATA_SYSTEM``: which benchmark data each one reads).
"""

from __future__ import annotations

import ast
from pathlib import Path

from llemma_prover.core.config import BACKENDS, DATA_SYSTEM

PACKAGE = Path(__file__).resolve().parents[1] / "llemma_prover"
NAMES = set(BACKENDS) | set(DATA_SYSTEM.values())
#: where the names (and the one table of the data each backend reads) are defined
DEFINITIONS = {Path("core/config.py")}
#: (issue 11: 19 branches when counted first, 26 with the doctor, the retrieval generator and train/;
#: the last, the bank generator's table of banks keyed by backend name, became
#: ``DataHooks.tactic_bank()``: none is left)


def _subject(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _names(node: ast.expr | None) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def _backendish(node: ast.expr) -> bool:
    word = _subject(node).lower()
    return "backend" in word or "system" in word


def _pattern_names(pattern: ast.pattern) -> set[str]:
    if isinstance(pattern, ast.MatchValue):
        return _names(pattern.value)
    if isinstance(pattern, ast.MatchOr):
        return set().union(*(_pattern_names(p) for p in pattern.patterns))
    if isinstance(pattern, ast.MatchAs) and pattern.pattern is not None:
        return _pattern_names(pattern.pattern)
    return set()


def _is_branch(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = node.left, node.comparators[0]
        return any(_backendish(s) and _names(v) & NAMES for s, v in ((left, right), (right, left)))
    if isinstance(node, ast.Match):
        return _backendish(node.subject) and any(_pattern_names(c.pattern) & NAMES for c in node.cases)
    if isinstance(node, ast.Subscript):
        return bool(_names(node.slice) & NAMES)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and bool(_names(node.args[0]) & NAMES)
    if isinstance(node, ast.Dict):
        return len({k.value for k in node.keys if isinstance(k, ast.Constant)} & NAMES) >= 2
    return False


def backend_branches(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "backends" or rel in DEFINITIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if _is_branch(node):
                found.append(f"{rel}:{node.lineno}")  # type: ignore[attr-defined]
    return sorted(found, key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


def test_the_counter_sees_a_branch(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text(
        "if cfg.backend == 'coq':\n    pass\n"
        "if system in ('lean4',): pass\n"
        "match backend:\n    case 'isabelle' | 'other':\n        pass\n"
        "EXT = {'coq': 'v', 'lean4': 'lean'}\n"
        "x = EXT['coq']\n"
        "y = EXT.get('leandojo', 'txt')\n"
        # not branches: a lookup keyed by a variable, a one-key dict, a name compared with another value
        "z = EXT[name]\nw = {'coq': 1}\nif backend == other: pass\n"
    )
    assert backend_branches(tmp_path) == ["x.py:1", "x.py:3", "x.py:4", "x.py:7", "x.py:8", "x.py:9"]


def test_no_backend_name_branches() -> None:
    found = backend_branches()
    print("\n".join(found))
    assert found == [], "\n".join(found)
