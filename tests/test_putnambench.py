"""``scripts/build_putnambench.py``: PutnamBench's Coq files into a ``--dataset`` file.

On a small fixture written for this test in PutnamBench's shape (``tests/fixtures/putnambench``: a
plain file, a ``Section`` file, a multi-line statement with periods in a comment and a string), split
by Coq's lexical rule and each record compiled by the real ``coqc``. The real benchmark is checked
only when ``PUTNAMBENCH_DIR`` names a checkout of trishullab/PutnamBench: that test is then defined,
otherwise it is not collected at all (an opt-in, not a skip).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from llemma_prover.core.errors import DataError
from llemma_prover.data.minif2f import load_dataset_file

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "putnambench"
COMMIT = "0" * 40


def _script():  # type: ignore[no-untyped-def]
    path = REPO / "scripts" / "build_putnambench.py"
    spec = importlib.util.spec_from_file_location("build_putnambench", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["build_putnambench"] = mod
    spec.loader.exec_module(mod)
    return mod


bp = _script()


def _records(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def test_fixture_builds_three_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.jsonl"
    assert bp.main(["--source", str(FIXTURE), "--commit", COMMIT, "--out", str(out)]) == 0
    assert "3/3 files split" in capsys.readouterr().out
    recs = {r["name"]: r for r in _records(out)}
    assert list(recs) == ["fixture_2001_a1", "fixture_2002_b2", "fixture_2003_a3"]  # file-name order

    plain = recs["fixture_2001_a1"]
    assert plain["statement"] == "Theorem fixture_2001_a1 : fixture_2001_a1_solution + 1 = 5."
    assert plain["header"].startswith("Require Import Arith Lia.\n")
    assert plain["header"].endswith("Definition fixture_2001_a1_solution : nat := 4.\n")
    assert "footer" not in plain and plain["split"] == "putnambench"
    assert plain["source"] == f"trishullab/PutnamBench/coq/src/fixture_2001_a1.v@{COMMIT}"
    assert plain["informal_statement"] == ("Find the number that, increased by one, gives five. "
                                           "Show that the solution is $4$.")

    section = recs["fixture_2002_b2"]
    assert section["header"].startswith("Section fixture_2002_b2.\n")
    assert "Hypothesis hf" in section["header"]
    assert section["statement"] == "Theorem fixture_2002_b2 : forall y : Z, exists x : Z, f x = y."
    assert section["footer"] == "End fixture_2002_b2."
    assert section["informal_statement"].endswith("Show that $f$ is onto.")  # "None." solution not added

    multi = recs["fixture_2003_a3"]
    assert multi["statement"].startswith("Theorem fixture_2003_a3\n    (a b : R)\n")
    assert multi["statement"].endswith(": a * a < b * b /\\ Rabs (a - b) = b - a.")
    assert '(* "x. y" *)' in multi["statement"] and "(* a. b. are positive. *)" in multi["statement"]
    # the comment before the theorem stays in the header
    assert multi["header"].rstrip().endswith("(neither ends it). *)")
    assert "informal_statement" not in multi  # no entry in informal/putnam.json

    # the file is a valid --dataset file, and the footer reaches the Theorem record
    ds = load_dataset_file(out, "coq")
    assert [t.footer for t in ds.theorems] == ["", "End fixture_2002_b2.", ""]
    assert {t.split for t in ds.theorems} == {"putnambench"}


def test_output_is_deterministic(tmp_path: Path) -> None:
    for name in ("a.jsonl.gz", "b.jsonl.gz", "c.jsonl"):
        assert bp.main(["--source", str(FIXTURE), "--commit", COMMIT, "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()) == (tmp_path / "c.jsonl").read_bytes()


def test_each_record_compiles_with_coqc(tmp_path: Path) -> None:
    """header + statement + Proof. Admitted. + footer is the original file, as far as coqc can tell."""
    records, rejected = bp.build(FIXTURE, COMMIT)
    assert rejected == {}
    for rec in records:
        got = bp.compile_record(rec, tmp_path, 120)
        assert got["status"] == "ok", got
    broken = dict(records[0], statement=records[0]["statement"].replace("+ 1", "+ true"))
    assert bp.compile_record(broken, tmp_path, 120)["status"] == "error"
    missing = dict(records[0], header="From NoSuchLibraryHere Require Import Foo.\n" + records[0]["header"])
    got = bp.compile_record(missing, tmp_path, 120)
    assert got["status"] == "missing-library" and got["library"] == "NoSuchLibraryHere.Foo", got
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_files_that_cannot_be_split_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = {
        "two_theorems": "Theorem a : True.\nProof. Admitted.\nTheorem b : True.\nProof. Admitted.\n",
        "no_theorem": "Definition x := 1.\n",
        "extra_after": "Theorem extra_after : True.\nProof. Admitted.\nDefinition y := 2.\n",
        "proof_given": "Theorem proof_given : True.\nProof. exact I. Qed.\n",
        "open_comment": "Theorem open_comment : True.\nProof. Admitted.\n(* never closed\n",
        "section_not_closed": "Section S.\nTheorem section_not_closed : True.\nProof. Admitted.\n",
        "wrong_end": "Section S.\nTheorem wrong_end : True.\nProof. Admitted.\nEnd T.\n",
        "tail": "Theorem tail : True.\nProof. Admitted.\nEnd",
    }
    for name, text in bad.items():
        with pytest.raises(bp.NotSplit):
            bp.split_file(text, name)
    src = tmp_path / "src"
    (src / "coq" / "src").mkdir(parents=True)
    (src / "coq" / "src" / "good.v").write_text("Theorem good : True.\nProof. Admitted.\n", encoding="utf-8")
    (src / "coq" / "src" / "extra_after.v").write_text(bad["extra_after"], encoding="utf-8")
    out = tmp_path / "o.jsonl"
    assert bp.main(["--source", str(src), "--commit", COMMIT, "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "1/2 files split" in captured.out
    assert "not split: extra_after.v: after the theorem" in captured.err
    assert [r["name"] for r in _records(out)] == ["good"]


def test_misnamed_theorem_takes_the_file_name() -> None:
    """An upstream file whose one theorem has another name: the record keeps the file's name and only
    the identifier after the keyword changes."""
    got = bp.split_file("Require Import Arith.\nTheorem other_name\n  (n : nat) : n = n.\nProof. Admitted.\n",
                        "file_name")
    assert got.statement == "Theorem file_name\n  (n : nat) : n = n."
    assert got.upstream_name == "other_name"
    same = bp.split_file("Lemma file_name : True.\nProof. Admitted.\n", "file_name")
    assert same.upstream_name == "" and same.statement == "Lemma file_name : True."


def test_a_bad_source_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bp.main(["--source", str(tmp_path), "--commit", COMMIT, "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "no coq/src folder" in capsys.readouterr().err
    # the fixture lies inside this repository's checkout: its commit is not PutnamBench's
    assert bp.source_commit(FIXTURE) is None
    assert bp.main(["--source", str(FIXTURE), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "give --commit" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(DataError):  # nothing written means nothing to load
        load_dataset_file(tmp_path / "x.jsonl", "coq")


if os.environ.get("PUTNAMBENCH_DIR"):  # opt-in: not collected (so never a skip) without a checkout

    def test_real_putnambench(tmp_path: Path) -> None:
        source = Path(os.environ["PUTNAMBENCH_DIR"])
        records, rejected = bp.build(source, COMMIT)
        files = sorted(p.stem for p in (source / "coq" / "src").glob("*.v"))
        assert rejected == {}
        assert [r["name"] for r in records] == files and len(files) >= 412
        for r in records:  # the record reassembles its file, blanks aside
            text = (source / "coq" / "src" / f"{r['name']}.v").read_text(encoding="utf-8")
            statement = r["statement"]
            if "upstream_name" in r:
                statement = statement.replace(r["name"], r["upstream_name"], 1)
            joined = r["header"] + statement + "\nProof. Admitted.\n" + r.get("footer", "")
            words = joined.split()  # a comment after the proof (a note) stays out of the record
            assert text.split()[:len(words)] == words, r["name"]
            assert text.split()[len(words):len(words) + 1] in ([], ["(*"]), r["name"]
        by_name = {r["name"]: r for r in records}
        assert by_name["putnam_1969_b5"]["footer"] == "End putnam_1969_b5."
        assert sum("footer" in r for r in records) == 1
        assert sum("informal_statement" in r for r in records) >= 400
        out = tmp_path / "putnam.jsonl.gz"
        out.write_bytes(bp.encode(records, True))
        assert len(load_dataset_file(out, "coq").theorems) == len(files)
