"""CLI errors are one line on stderr with a non-zero exit, never a traceback (console script, subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_command, cli_env, run_cli


def _one_line_error(res: subprocess.CompletedProcess[str], fragment: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("llemma-prover prove: error:")]
    assert len(errors) == 1, res.stderr
    assert fragment in errors[0], errors[0]
    return errors[0]


def test_help_lists_the_prove_command_and_flags() -> None:
    res = subprocess.run(cli_command("--help"), capture_output=True, text=True, timeout=60, env=cli_env())
    assert res.returncode == 0
    for flag in ("--split", "--backend", "--generator", "--model", "--replay-file", "--data-dir",
                 "--theorems", "--limit", "--out", "--workers", "--ray-address", "--candidates",
                 "--max-expansions", "--time-budget", "--tactic-timeout"):
        assert flag in res.stdout, flag
    top = subprocess.run([sys.executable, "-m", "llemma_prover.cli.main", "--help"], capture_output=True,
                         text=True, timeout=60, env=cli_env())
    assert top.returncode == 0 and "prove" in top.stdout
    script = Path(sys.executable).parent / "llemma-prover"
    if script.exists():  # the console script of an installed checkout
        res = subprocess.run([str(script), "prove", "--help"], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and "--replay-file" in res.stdout


def test_unknown_theorem_lists_close_matches(tmp_path: Path) -> None:
    res = run_cli("--theorems", "mathd_algebra_171,mathd_algbra_176", "--out", str(tmp_path / "r"))
    line = _one_line_error(res, "unknown theorem(s): 'mathd_algbra_176'")
    assert "did you mean" in line and "mathd_algebra_176" in line
    assert not (tmp_path / "r").exists()  # nothing was created before the data were validated


def test_malformed_data_names_file_and_line(tmp_path: Path) -> None:
    d = tmp_path / "data" / "coq"
    d.mkdir(parents=True)
    good = {"name": "t1", "split": "test", "header": "", "statement": "Theorem t1 : True."}
    (d / "test.jsonl").write_text(json.dumps(good) + "\n" + '{"name": "t2", "statement"\n')
    res = run_cli("--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "r"))
    _one_line_error(res, f"{d / 'test.jsonl'}:2: invalid JSON")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--data-dir", "/nonexistent/minif2f"], "--data-dir '/nonexistent/minif2f' is not a directory"),
        (["--limit", "0"], "--limit must be >= 1"),
        (["--candidates", "0"], "--candidates must be >= 1"),
        (["--time-budget", "-1"], "--time-budget must be > 0"),
        (["--tactic-timeout", "0"], "--tactic-timeout must be > 0"),
        (["--workers", "-1"], "--workers must be >= 0"),
        (["--generator", "replay"], "--generator replay needs --replay-file"),
        (["--generator", "replay", "--replay-file", "/nonexistent.jsonl"], "does not exist"),
    ],
)
def test_bad_flags(args: list[str], fragment: str) -> None:
    _one_line_error(run_cli(*args), fragment)


def test_missing_data_env_is_reported() -> None:
    res = run_cli("--limit", "1", env=cli_env(LLEMMA_PROVER_DATA="/nonexistent/data"))
    _one_line_error(res, "$LLEMMA_PROVER_DATA '/nonexistent/data' is not a directory")


def test_unwritable_out_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    replay = tmp_path / "r.txt"
    replay.write_text("auto.\n")
    res = run_cli("--generator", "replay", "--replay-file", str(replay), "--workers", "1",
                  "--limit", "1", "--out", str(blocker / "run"))
    _one_line_error(res, "cannot create run directory")


def test_incompatible_run_dir_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    old = {"format_version": 1, "split": "minif2f-valid", "backend": "coq",
           "generator": {"name": "bank", "replay_file": None}}
    (out / "config.json").write_text(json.dumps(old))
    replay = tmp_path / "r.txt"
    replay.write_text("auto.\n")
    res = run_cli("--generator", "replay", "--replay-file", str(replay), "--workers", "1", "--limit", "1",
                  "--out", str(out))
    line = _one_line_error(res, "holds a run with other settings")
    assert "split: 'minif2f-valid' there vs 'minif2f-test' now" in line


def test_other_format_version_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"format_version": 0}))
    replay = tmp_path / "r.txt"
    replay.write_text("auto.\n")
    res = run_cli("--generator", "replay", "--replay-file", str(replay), "--workers", "1", "--limit", "1",
                  "--out", str(out))
    _one_line_error(res, "run-directory format 0")
