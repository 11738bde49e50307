"""Quiet by default: other libraries' notices (Ray's token-authentication notice, Python warnings from
torch/transformers) stay off the terminal unless ``-v``; the run's ``run.log`` keeps them.

The first tests run in a fresh interpreter: the CLI's logging set-up, then the real ``import ray`` (which
attaches Ray's own stderr handler to its logger) and Ray's own function that logs the notice at
``ray.init`` when a token exists. The last one runs ``prove`` on real Coq and a real Ray with a token in
a private home, where ``ray.init`` itself emits the notice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import cli_env, run_cli

NOTICE = "Token authentication is enabled for this Ray cluster"

SCRIPT = textwrap.dedent("""
    import logging, sys, warnings
    from rich.console import Console
    from llemma_prover.cli.main import configure_logging
    from llemma_prover.cli.prove import _attach_run_log

    configure_logging(int(sys.argv[1]), False, Console(stderr=True))
    run_log = _attach_run_log(__import__("pathlib").Path(sys.argv[2]))
    import ray  # Ray attaches its own stderr handler to the "ray" logger here
    from ray._private.authentication import authentication_token_setup as ts
    ts._warn_token_auth_enabled()                        # what ray.init logs when a token exists
    warnings.warn("a library's deprecation notice", UserWarning)
    logging.getLogger("ray.some.module").error("a Ray error")
    logging.getLogger("llemma_prover.cli.prove").warning("our own warning")
    run_log.flush()
""")


def _run(tmp_path: Path, verbose: int) -> tuple[str, str]:
    log = tmp_path / f"run{verbose}.log"
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(verbose), str(log)], capture_output=True, text=True,
                       timeout=300, env=cli_env())
    assert r.returncode == 0, r.stderr
    return r.stderr, log.read_text()


@pytest.mark.ray
def test_other_libraries_notices_stay_off_the_terminal_but_in_the_run_log(tmp_path):
    stderr, log = _run(tmp_path, 0)
    assert NOTICE not in stderr and "deprecation notice" not in stderr
    assert "our own warning" in stderr and "a Ray error" in stderr  # ours, and errors, still show
    for text in (NOTICE, "a library's deprecation notice", "a Ray error", "our own warning"):
        assert text in log


@pytest.mark.ray
def test_verbose_shows_them_on_the_terminal(tmp_path):
    stderr, log = _run(tmp_path, 1)
    assert NOTICE in stderr and "deprecation notice" in stderr and "our own warning" in stderr
    assert stderr.count(NOTICE) == 1  # once: through our handler, not also through Ray's own
    assert NOTICE in log


@pytest.mark.coq
@pytest.mark.ray
def test_prove_with_ray_and_a_token_is_quiet(tmp_path):
    """A real ``prove`` on Ray with a token in ``~/.ray``: Ray logs its notice at ``ray.init``; the
    terminal shows only our lines, ``run.log`` has the notice."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("a" * 64 + "\n")
    out = tmp_path / "run"
    env = cli_env(HOME=str(home))
    env.pop("RAY_AUTH_MODE", None)
    r = run_cli("--split", "minif2f-valid", "--theorems", "mathd_algebra_11", "--generator", "bank",
                "--workers", "1", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert NOTICE not in r.stderr
    assert "generator: bank" in r.stderr  # the run's own lines are still there
    assert NOTICE in (out / "run.log").read_text()
