"""Shared test fixtures: the benchmark directory, the repository root, process helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("LLEMMA_PROVER_DATA")
    return Path(env) if env else REPO.parent / "shared" / "benchmarks" / "minif2f"


@pytest.fixture(scope="session")
def minif2f_dir() -> Path:
    d = data_dir()
    if not (d / "coq" / "test.jsonl").is_file():
        pytest.fail(f"miniF2F data not found at {d}; set LLEMMA_PROVER_DATA")
    return d


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
