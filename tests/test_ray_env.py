"""``workers.cluster.ray_env``: the environment a Ray started by ``prove`` gets (no Ray is started here)."""

from __future__ import annotations

import os

import pytest

from llemma_prover.workers.cluster import WORKER_NICENESS_ENV, ray_env


def test_workers_run_at_the_drivers_priority_unless_the_user_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ray's default (nice 15) would let the checker in the driver starve the search's wall-clock timeouts
    monkeypatch.delenv(WORKER_NICENESS_ENV, raising=False)
    ray_env()
    assert os.environ[WORKER_NICENESS_ENV] == "0"
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    monkeypatch.setenv(WORKER_NICENESS_ENV, "15")
    ray_env()
    assert os.environ[WORKER_NICENESS_ENV] == "15"
