"""No generator-name string is compared outside ``generators/`` (issue 20): what a generator needs is
asked of ``core.config`` (``is_auto``, ``uses_model``, ``may_use_model``, ``uses_bank_budgets``) or of
``generators/`` (``resolve_auto``, the one place that resolves ``--generator auto``; ``make_generator``).

Counted with ``ast`` in the package outside ``generators/`` and ``core/config.py`` (which defines the
names), as ``tests/test_backend_branches.py`` counts backend names:

* a comparison (``==``, ``!=``, ``in``, ``not in``, ``<=``, ...) with a generator's name (``"llemma"``,
  ``"bank"``, ``"replay"``, ``"retrieval"``, or a tuple/set of them); ``"auto"`` only when the other
  side is named like a generator (``generator``, ``cfg.generator.name``);
* a ``match`` case with a generator's name, a table keyed by two or more of them.

A ratchet: ``ALLOWED`` is what is left, and may only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

from llemma_prover.core.config import AUTO, MIXABLE

PACKAGE = Path(__file__).resolve().parents[1] / "llemma_prover"
NAMES = set(MIXABLE)
DEFINITIONS = {Path("core/config.py")}
#: (issue 20: 9 places counted first: ``"llemma"`` compared in driver.py (2), prove.py (2), rundir.py and
#: serving/config.py, ``"auto"`` resolved in driver.py, prove.py (2) and registry.py, the modelless set of
#: driver.py; all gone; then autoformalize's 5 drafter comparisons, now asked of ``core.config``.)
ALLOWED: dict[str, int] = {}


def _subject(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_subject(node.value)}.{node.attr}"
    return ""


def _names(node: ast.expr | None) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def _generatorish(node: ast.expr) -> bool:
    word = _subject(node).lower()
    return "generator" in word


def _compares_a_name(left: ast.expr, right: ast.expr) -> bool:
    for side, other in ((left, right), (right, left)):
        names = _names(other)
        if names & NAMES or (AUTO in names and _generatorish(side)):
            return True
    return False


def _pattern_names(pattern: ast.pattern) -> set[str]:
    if isinstance(pattern, ast.MatchValue):
        return _names(pattern.value)
    if isinstance(pattern, ast.MatchOr):
        return set().union(*(_pattern_names(p) for p in pattern.patterns))
    return set()


def _is_branch(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare):
        sides = [node.left, *node.comparators]
        return any(_compares_a_name(a, b) for a, b in zip(sides, sides[1:], strict=False))
    if isinstance(node, ast.Match):
        return any(_pattern_names(c.pattern) & NAMES for c in node.cases)
    if isinstance(node, ast.Dict):
        return len({k.value for k in node.keys if isinstance(k, ast.Constant)} & NAMES) >= 2
    return False


def generator_branches(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "generators" or rel in DEFINITIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if _is_branch(node):
                found.append(f"{rel.as_posix()}:{node.lineno}")  # type: ignore[attr-defined]
    return sorted(found, key=lambda s: (s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])))


def test_the_counter_sees_a_branch(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text(
        "if cfg.generator.name == 'llemma':\n    pass\n"
        "if generator == 'auto': pass\n"
        "modelless = set(parts) <= {'bank', 'retrieval'}\n"
        "if 'replay' in parts: pass\n"
        "y = {'bank': 1, 'llemma': 2}\n"
        "match name:\n    case 'retrieval':\n        pass\n"
        # not branches: "auto" of another setting, a name compared with a variable, a one-key dict,
        # a field of a data file
        "if device == 'auto': pass\nif generator == other: pass\nw = {'bank': 1}\nv = priors['bank']\n"
    )
    assert generator_branches(tmp_path) == ["x.py:1", "x.py:3", "x.py:4", "x.py:5", "x.py:6", "x.py:7"]


def test_no_generator_name_compared_outside_generators() -> None:
    found = generator_branches()
    per_file: dict[str, int] = {}
    for where in found:
        per_file[where.rsplit(":", 1)[0]] = per_file.get(where.rsplit(":", 1)[0], 0) + 1
    over = {f: n for f, n in per_file.items() if n > ALLOWED.get(f, 0)}
    assert not over, "generator names compared outside generators/ (ask core.config or generators/):\n" \
        + "\n".join(found)
    fewer = {f: n for f, n in ALLOWED.items() if per_file.get(f, 0) < n}
    assert not fewer, f"fewer than allowed: lower ALLOWED to ratchet {fewer}"
