"""The tree stays lint-clean (ruff), the core stays type-clean (mypy --strict on llemma_prover/core), and
the package's imports follow its layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGE = REPO / "llemma_prover"

#: the import order, top to bottom: a module imports from its own package and from packages on lower
#: lines only, never from one on its own line or above (every import counts: inside functions and under
#: TYPE_CHECKING too). A new package must be given its line here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("autoformalize", "doctor", "importers", "reports", "train"),
    ("workers",),       # the one pool under every long job: prove, autoformalize, extract, library files
    ("library",),       # `prove --library`: a library's lemmas in their files' context
    ("extract",),
    ("traces",),
    ("search", "serving"),
    ("generators",),
    ("backends", "lm"),
    ("contamination",),
    ("data", "results", "testing"),
    ("core",),
)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_ruff_is_clean() -> None:
    r = _run(str(BIN / "ruff"), "check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict_on_the_core() -> None:
    r = _run(str(BIN / "mypy"))  # files and strictness from pyproject.toml
    assert r.returncode == 0, r.stdout + r.stderr


def test_core_imports_nothing_heavy() -> None:
    code = (
        "import sys, llemma_prover.core.config, llemma_prover.core.types, llemma_prover.core.records, "
        "llemma_prover.core.errors, llemma_prover.backends.base, llemma_prover.generators.base;"
        "heavy = [m for m in ('torch', 'ray', 'transformers', 'pexpect', 'networkx') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    r = _run(sys.executable, "-c", code)
    assert r.returncode == 0, r.stdout + r.stderr


def _imported_packages(path: Path) -> list[tuple[str, int]]:
    """``(top-level package of llemma_prover, line)`` of every import in ``path``."""
    here = list(path.relative_to(PACKAGE.parent).parts[:-1])  # the package a relative import starts from
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[list[str]] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                full = base + (node.module.split(".") if node.module else [])
            else:
                full = node.module.split(".") if node.module else []
            if full[:1] == [PACKAGE.name]:
                # ``from llemma_prover import X``: X a subpackage, else a constant of the root module
                names = [full] if len(full) > 1 else [[PACKAGE.name, a.name] for a in node.names
                                                      if (PACKAGE / a.name).is_dir()]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names if a.name.split(".")[0] == PACKAGE.name]
        found += [(n[1], node.lineno) for n in names if len(n) > 1]
    return found


def test_imports_follow_the_layers() -> None:
    rank = {pkg: len(LAYERS) - i for i, line in enumerate(LAYERS) for pkg in line}
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    unplaced = [p for p in packages if p not in rank]
    assert not unplaced, f"give each package its line in LAYERS (tests/test_tooling.py): {unplaced}"
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2:
            continue  # llemma_prover/__init__.py: the version only
        src = parts[0]
        for dst, line in _imported_packages(path):
            if dst != src and (dst not in rank or rank[dst] >= rank[src]):
                wrong.append(f"{path.relative_to(REPO)}:{line}: {src} imports {dst}")
    assert not wrong, "imports against the layers (tests/test_tooling.py: LAYERS):\n" + "\n".join(wrong)
