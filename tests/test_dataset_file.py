"""``--dataset FILE.jsonl``: a theorem set of one's own, end to end on the real Coq, and malformed files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import run_cli

from llemma_prover.core.errors import DataError
from llemma_prover.data.minif2f import DATASET_SPLIT, load_dataset_file, load_theorems

REALS = "Require Import Reals.\nOpen Scope R_scope.\n"
#: three theorems: two the bank proves (lia, nra), one false (never proved)
THREE = [
    {"name": "my_add_zero", "header": "Require Import Arith.\n",
     "statement": "Theorem my_add_zero : forall n : nat, n + 0 = n.",
     "informal_statement": "Adding zero changes nothing."},
    {"name": "my_square_nonneg", "header": REALS,
     "statement": "Theorem my_square_nonneg : forall x : R, 0 <= x * x."},
    {"name": "my_false", "header": "Require Import Arith.\n", "statement": "Theorem my_false : 2 + 2 = 5."},
]


def write(path: Path, records: list[dict] | None = None, extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in (records or THREE)) + extra, encoding="utf-8")
    return path


def test_dataset_file_loads_with_its_hash(tmp_path: Path) -> None:
    f = write(tmp_path / "mine.jsonl")
    ds = load_dataset_file(f, "coq")
    assert [t.name for t in ds.theorems] == ["my_add_zero", "my_square_nonneg", "my_false"]
    assert all(t.split == DATASET_SPLIT and t.system == "coq" for t in ds.theorems)
    assert ds.files == (str(f.resolve()),) and ds.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert ds.theorems[0].informal_statement == "Adding zero changes nothing."
    with pytest.raises(DataError, match="exclude each other"):
        load_theorems(str(f), "somewhere", None, "coq", "test")


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"name": "x", "statement": "Theorem x : True."}), "'header' missing"),
        (json.dumps({**THREE[0], "footer": 3}), "'footer' is not a string"),
        (json.dumps(THREE[1]), "duplicate theorem 'my_square_nonneg' (first on line 2)"),
    ],
)
def test_malformed_line_is_one_error_with_its_line(tmp_path: Path, line: str, fragment: str) -> None:
    f = write(tmp_path / "bad.jsonl", extra=line + "\n")
    with pytest.raises(DataError) as ei:
        load_dataset_file(f, "coq")
    assert str(ei.value).startswith(f"{f.resolve()}:4: ") and fragment in str(ei.value)


def test_cli_malformed_dataset_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    f = write(tmp_path / "bad.jsonl", extra='{"name": "x", "header": ""}\n')
    out = tmp_path / "run"
    proc = run_cli("--dataset", str(f), "--generator", "bank", "--workers", "0", "--out", str(out),
                   timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and ":4: field 'statement' missing" in errors[0], proc.stderr
    assert not out.exists()


@pytest.mark.coq
def test_prove_three_theorem_dataset_end_to_end(tmp_path: Path) -> None:
    f = write(tmp_path / "mine.jsonl")
    out = tmp_path / "run"
    proc = run_cli("--dataset", str(f), "--generator", "bank", "--workers", "0", "--out", str(out),
                   "--time-budget", "60", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = {r["theorem"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(recs) == {"my_add_zero", "my_square_nonneg", "my_false"}
    for name in ("my_add_zero", "my_square_nonneg"):
        assert recs[name]["status"] == "proved" and recs[name]["check"]["ok"] is True, recs[name]
        assert recs[name]["split"] == DATASET_SPLIT
        assert f"Theorem {name}" in (out / "proofs" / f"{name}.v").read_text()
    assert recs["my_false"]["status"] == "failed"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["split"] == DATASET_SPLIT and cfg["dataset"] == str(f.resolve())
    assert cfg["data_files"] == [str(f.resolve())]
    assert cfg["data_hash"] == hashlib.sha256(f.read_bytes()).hexdigest() and cfg["data_dir"] == ""
    assert "2/3" in proc.stdout
    # the statement of a failed theorem is found again in the dataset file (trace path to its root)
    import subprocess
    import sys

    from conftest import cli_env

    path = subprocess.run([sys.executable, "-m", "llemma_prover.cli.main", "trace", "path", str(out),
                           "my_false", "--node", "0"],
                          capture_output=True, text=True, timeout=120, env=cli_env())
    assert path.returncode == 0 and "Theorem my_false : 2 + 2 = 5." in path.stdout, path.stderr


#: a theorem inside a Section (as PutnamBench's Coq files write some): the header opens the section, the
#: footer closes it; the proof uses a section hypothesis the statement does not mention
SECTION = {"name": "sec_double", "header": "Require Import Arith Lia.\nSection S.\nVariable n : nat.\n"
           "Hypothesis h : n = 2.\n", "statement": "Theorem sec_double : n + n = 4.", "footer": "End S."}


@pytest.mark.coq
def test_section_theorem_with_footer_is_proved_and_checked(tmp_path: Path) -> None:
    f = write(tmp_path / "sec.jsonl", [SECTION])
    out = tmp_path / "run"
    proc = run_cli("--dataset", str(f), "--generator", "bank", "--workers", "0", "--out", str(out),
                   "--time-budget", "60", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = map(json.loads, (out / "results.jsonl").read_text().splitlines())
    assert rec["status"] == "proved" and rec["check"]["ok"] is True, rec
    text = (out / "proofs" / "sec_double.v").read_text()
    assert text.rstrip().endswith("Qed.\nEnd S.") and 'Set Default Proof Using "All".' in text


@pytest.mark.coq
def test_check_honours_the_footer(tmp_path: Path) -> None:
    """The check compiles header + statement + proof + footer, the reference and the header library
    closed by the footer; the same proof without the footer cannot compile (the section stays open),
    and a proof cannot close the section itself."""
    from llemma_prover.backends.base import backend_class, make_backend
    from llemma_prover.core.types import Theorem

    thm = Theorem(name="sec_double", split="dataset", system="coq", header=SECTION["header"],
                  statement=SECTION["statement"], footer="End S.")
    with make_backend("coq", backend_class("coq").setup.default_config()) as backend:
        assert backend.check(thm, ["lia."]).ok
        assert not backend.check(Theorem(**{**thm.__dict__, "footer": ""}), ["lia."]).ok
        assert not backend.check(thm, ["lia. End S."]).ok
        assert not backend.check(thm, ["reflexivity."]).ok


@pytest.mark.coq
def test_autoformalize_on_a_dataset_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import cli_env

    f = write(tmp_path / "mine.jsonl", [THREE[0], THREE[2]])
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "llemma_prover.cli.main", "autoformalize",
                           "--dataset", str(f), "--generator", "none", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=cli_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = {r["theorem"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert recs["my_add_zero"]["status"] == "proved" and recs["my_false"]["status"] == "failed"
    assert recs["my_add_zero"]["split"] == DATASET_SPLIT
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["dataset"] == str(f.resolve())
    assert cfg["data_hash"] == hashlib.sha256(f.read_bytes()).hexdigest()


def test_footer_on_a_backend_that_would_drop_it_is_refused(tmp_path: Path) -> None:
    rec = {"name": "s", "header": "import Mathlib\nsection S\n", "statement": "theorem s : 1 = 1 :=",
           "footer": "end S"}
    f = write(tmp_path / "lean.jsonl", [rec])
    out = tmp_path / "run"
    proc = run_cli("--backend", "lean4", "--dataset", str(f), "--generator", "bank", "--workers", "0",
                   "--out", str(out), timeout=120)
    assert proc.returncode == 2 and "does not support the 'footer' field" in proc.stderr, proc.stderr
    assert not out.exists()
