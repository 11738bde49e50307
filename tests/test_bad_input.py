"""Bad input everywhere (issue 6 item 5): each case is one clear error line on stderr, a non-zero exit, no
traceback, and no half-written run: a run directory that did not exist is not created, one that existed
is left byte for byte as it was.

tests/test_cli_errors.py already covers: invalid JSON in a data file, --data-dir / $LLEMMA_PROVER_DATA
missing, bad numeric flags, a missing --replay-file, an unknown theorem, --out under a file, a run
directory with other settings and one with an older format version. These are the rest.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run_cli

GOOD = {"name": "t1", "split": "test", "header": "", "statement": "Theorem t1 : True."}


def _one_line_error(res: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout[-2000:], res.stderr[-2000:])
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr[-3000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("llemma-prover prove: error:")]
    assert len(errors) == 1, res.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def _snapshot(path: Path) -> dict[str, bytes | None]:
    """Every file (content) and folder (None) under ``path``."""
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in path.rglob("*")}


def _replay(tmp_path: Path) -> Path:
    f = tmp_path / "replay.txt"
    f.write_text("intros.\n")
    return f


# ---------------------------------------------------------------------------------------------
# unknown split / backend
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flag", "value", "choices"),
    [("--split", "minif2f-tset", "'minif2f-test', 'minif2f-valid'"), ("--backend", "hol4", "'coq'")],
)
def test_unknown_split_or_backend(tmp_path: Path, flag: str, value: str, choices: str) -> None:
    out = tmp_path / "run"
    res = run_cli(flag, value, "--out", str(out))
    _one_line_error(res, f"argument {flag}: invalid choice: '{value}'", choices)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# malformed data files: refused before anything runs, naming the file (and line)
# ---------------------------------------------------------------------------------------------
_G = json.dumps(GOOD)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (f"{_G}\n[1, 2]\n", "test.jsonl:2: expected a JSON object, got list"),
        (f'{_G}\n{{"name": "t2", "statement": "Theorem t2 : True."}}\n', "test.jsonl:2: field 'header'"),
        (f"{_G}\n{_G}\n", "test.jsonl:2: duplicate theorem 't1' (first on line 1)"),
        (json.dumps({**GOOD, "name": 5}) + "\n", "test.jsonl:1: field 'name'"),
        ("", "test.jsonl: no records"),
        (_G + "\n\udcff", "test.jsonl: not UTF-8 text"),
    ],
    ids=["array", "missing-field", "duplicate", "wrong-type", "empty", "not-utf8"],
)
def test_malformed_data_file(tmp_path: Path, content: str, fragment: str) -> None:
    d = tmp_path / "data" / "coq"
    d.mkdir(parents=True)
    (d / "test.jsonl").write_bytes(content.encode("utf-8", "surrogateescape"))
    out = tmp_path / "run"
    res = run_cli("--data-dir", str(tmp_path / "data"), "--workers", "0", "--out", str(out))
    _one_line_error(res, str(d / "test.jsonl"), fragment.split("test.jsonl", 1)[1])
    assert not out.exists()


def test_bad_record_far_from_the_selected_theorem_is_refused_up_front(tmp_path: Path) -> None:
    """A run never crashes half-way on bad data: the whole file is validated before any theorem runs,
    even when --theorems selects only good records."""
    d = tmp_path / "data" / "coq"
    d.mkdir(parents=True)
    lines = [json.dumps({**GOOD, "name": f"t{i}", "statement": f"Theorem t{i} : True."}) for i in range(50)]
    lines[40] = '{"name": "t40", "header": "", "statement": '  # cut mid-record
    (d / "test.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    res = run_cli("--data-dir", str(tmp_path / "data"), "--theorems", "t1", "--workers", "0",
                  "--out", str(out))
    _one_line_error(res, f"{d / 'test.jsonl'}:41: invalid JSON")
    assert not out.exists()


@pytest.mark.parametrize("layout", ["no-coq-folder", "folder-instead-of-file"])
def test_data_file_missing(tmp_path: Path, layout: str) -> None:
    data = tmp_path / "data"
    (data / "lean4").mkdir(parents=True)
    if layout == "folder-instead-of-file":
        (data / "coq" / "test.jsonl").mkdir(parents=True)
    out = tmp_path / "run"
    res = run_cli("--data-dir", str(data), "--workers", "0", "--out", str(out))
    _one_line_error(res, "data file not found", "coq/test.jsonl")
    assert not out.exists()


def test_malformed_replay_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"theorem": "mathd_algebra_171", "tactics": [1, 2]}\n')
    out = tmp_path / "run"
    res = run_cli("--generator", "replay", "--replay-file", str(bad), "--limit", "1", "--workers", "0",
                  "--out", str(out))
    _one_line_error(res, f"{bad}:1:", "tactics")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# a model path that does not exist / is not a model
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["missing", "empty-folder", "a-file"])
def test_model_path_that_is_not_a_model(tmp_path: Path, kind: str) -> None:
    model = tmp_path / "model"
    if kind == "empty-folder":
        model.mkdir()
    elif kind == "a-file":
        model.write_text("not a model\n")
    out = tmp_path / "run"
    res = run_cli("--generator", "llemma", "--model", str(model), "--limit", "1", "--workers", "0",
                  "--out", str(out))
    line = _one_line_error(res, f"cannot load model '{model}'")
    assert "--generator bank" in line  # says what to do
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# output directory that cannot be used
# ---------------------------------------------------------------------------------------------
def test_out_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.write_text("precious\n")
    res = run_cli("--generator", "replay", "--replay-file", str(_replay(tmp_path)), "--limit", "1",
                  "--workers", "0", "--out", str(out))
    _one_line_error(res, f"run directory {out} exists and is not a directory")
    assert out.read_text() == "precious\n"


def test_out_where_no_folder_can_be_made() -> None:
    # /proc refuses new folders even to root (a chmod-ed folder would not stop root)
    res = run_cli("--generator", "bank", "--limit", "1", "--workers", "0", "--out", "/proc/llemma-run/x")
    _one_line_error(res, "cannot create run directory /proc/llemma-run/x")


# ---------------------------------------------------------------------------------------------
# a run directory from an incompatible version / a broken one: refused and left as it was
# ---------------------------------------------------------------------------------------------
def _newer_version(out: Path) -> None:
    (out / "config.json").write_text(json.dumps({"format_version": 2, "split": "minif2f-test"}))
    (out / "results.jsonl").write_text(json.dumps({"theorem": "x", "v2_field": True}) + "\n")


def _garbage_config(out: Path) -> None:
    (out / "config.json").write_text("{garbage")


def _config_not_object(out: Path) -> None:
    (out / "config.json").write_text("[1, 2]\n")


def _results_without_config(out: Path) -> None:
    (out / "results.jsonl").write_text("{}\n")


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (_newer_version, ("run-directory format 2", "this version writes 1", "use another --out")),
        (_garbage_config, ("config.json is unreadable", "use another --out")),
        (_config_not_object, ("config.json is not a JSON object",)),
        (_results_without_config, ("has results.jsonl but no config.json",)),
    ],
    ids=["newer-format", "garbage-config", "config-not-object", "results-without-config"],
)
def test_unusable_run_dir_is_refused_and_untouched(tmp_path: Path, make, fragments: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    out.mkdir()
    make(out)
    before = _snapshot(out)
    res = run_cli("--generator", "replay", "--replay-file", str(_replay(tmp_path)), "--limit", "1",
                  "--workers", "0", "--out", str(out))
    _one_line_error(res, *fragments)
    assert _snapshot(out) == before  # no traces/, proofs/, run.log or rewritten config


@pytest.mark.coq
def test_corrupt_record_in_the_middle_of_results_is_refused(tmp_path: Path) -> None:
    """A first run leaves a valid run directory; a record broken in the middle (not a cut last line) is
    refused, naming file and line, and nothing is changed."""
    replay = _replay(tmp_path)
    out = tmp_path / "run"
    args = ("--generator", "replay", "--replay-file", str(replay), "--theorems",
            "mathd_algebra_171,mathd_algebra_176", "--workers", "0", "--out", str(out),
            "--max-expansions", "1")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    results = out / "results.jsonl"
    lines = results.read_text().splitlines()
    assert len(lines) == 2
    results.write_text(lines[0][:20] + "\n" + lines[1] + "\n")
    before = _snapshot(out)
    res = run_cli(*args)
    _one_line_error(res, f"{results}:1: corrupt record", "fix or remove the line")
    assert _snapshot(out) == before


# ---------------------------------------------------------------------------------------------
# provers and Ray that cannot be reached: errors before any theorem ran leave no run directory
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["lean4", "isabelle"])
def test_prover_not_installed(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "run"
    res = run_cli("--backend", backend, "--generator", "bank", "--limit", "1", "--workers", "0",
                  "--out", str(out), env=None)
    _one_line_error(res, backend)
    assert not out.exists()


@pytest.mark.ray
def test_ray_address_where_nothing_listens(tmp_path: Path) -> None:
    out = tmp_path / "run"
    t0 = time.monotonic()
    res = run_cli("--ray-address", "127.0.0.1:9", "--workers", "1", "--generator", "bank", "--limit", "1",
                  "--out", str(out), timeout=120)
    _one_line_error(res, "cannot join the Ray cluster at 127.0.0.1:9", "nothing answers there")
    assert time.monotonic() - t0 < 60  # not Ray's minutes of GCS reconnect attempts
    assert not out.exists(), sorted(p.name for p in out.iterdir())  # the new run directory was removed


@pytest.mark.ray
def test_ray_failure_keeps_an_existing_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    res = run_cli("--ray-address", "127.0.0.1:9", "--workers", "1", "--generator", "bank", "--limit", "1",
                  "--out", str(out), timeout=120)
    _one_line_error(res, "cannot join the Ray cluster")
    assert out.is_dir() and list(out.iterdir()) == []  # the user's folder stays, empty as it was
