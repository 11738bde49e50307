"""The tree stays lint-clean (ruff) and the core stays type-clean (mypy --strict on llemma_prover/core)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


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
