"""The miniF2F loader: real data, malformed records, selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llemma_prover.core.errors import DataError
from llemma_prover.data.minif2f import load_split, resolve_data_dir, select, sha256_files, shipped_data_dir


def _write(tmp_path: Path, lines: list[str], system: str = "coq", split: str = "test") -> Path:
    d = tmp_path / "data"
    (d / system).mkdir(parents=True)
    (d / system / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    return d


def _rec(name: str, **kw: object) -> str:
    rec = {"name": name, "split": "test", "header": "Require Import Arith.\n",
           "statement": f"Theorem {name} : 1 + 1 = 2.", **kw}
    return json.dumps(rec)


@pytest.mark.parametrize("system", ["coq", "lean4", "isabelle"])
@pytest.mark.parametrize("split", ["test", "valid"])
def test_real_data_loads(minif2f_dir: Path, system: str, split: str) -> None:
    ds = load_split(minif2f_dir, system, split)
    assert len(ds.theorems) == 244
    assert all(t.split == split and t.system == system for t in ds.theorems)
    assert ds.sha256 == sha256_files([minif2f_dir / system / f"{split}.jsonl"])
    fams = {t.family for t in ds.theorems}
    assert {"mathd_algebra", "mathd_numbertheory", "amc12", "aime", "imo"} <= fams


def test_coq_statement_convention(minif2f_dir: Path) -> None:
    ds = load_split(minif2f_dir, "coq", "test")
    t = next(t for t in ds.theorems if t.name == "mathd_algebra_107")
    assert t.statement.startswith("Theorem mathd_algebra_107") and t.statement.rstrip().endswith(".")
    assert t.informal_statement


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    d = _write(tmp_path, [_rec("a"), _rec("b"), '{"name": "c", "header": '])
    with pytest.raises(DataError) as ei:
        load_split(d, "coq", "test")
    msg = str(ei.value)
    assert msg.startswith(f"{d / 'coq' / 'test.jsonl'}:3: invalid JSON"), msg
    assert ei.value.line == 3


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (json.dumps({"name": "x", "header": ""}), "'statement' missing"),
        (json.dumps({"name": 3, "header": "", "statement": "T."}), "'name' missing or not a string"),
        (json.dumps(["not", "an", "object"]), "expected a JSON object"),
        (json.dumps({"name": "x", "header": "", "statement": "   "}), "empty"),
        (_rec("x", split="valid"), "split 'valid'"),
        (_rec("x", informal_statement=5), "'informal_statement' is not a string"),
        (_rec("a"), "duplicate theorem 'a' (first on line 1)"),
    ],
)
def test_bad_record_is_a_data_error(tmp_path: Path, bad: str, fragment: str) -> None:
    d = _write(tmp_path, [_rec("a"), "", bad])
    with pytest.raises(DataError, match=":3: ") as ei:
        load_split(d, "coq", "test")
    assert fragment in str(ei.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file not found"):
        load_split(tmp_path, "coq", "test")
    d = _write(tmp_path, [""])
    with pytest.raises(DataError, match="no records"):
        load_split(d, "coq", "test")


def test_select_names_limit_and_unknown(minif2f_dir: Path) -> None:
    ths = load_split(minif2f_dir, "coq", "test").theorems
    picked = select(ths, ["mathd_algebra_171", "aime_1983_p1"])
    # data order, not argument order
    assert [t.name for t in picked] == ["aime_1983_p1", "mathd_algebra_171"]
    assert [t.name for t in select(ths, (), 3)] == [t.name for t in ths[:3]]
    assert len(select(ths, ["mathd_algebra_171", "aime_1983_p1"], 1)) == 1
    with pytest.raises(DataError) as ei:
        select(ths, ["mathd_algebra_171", "mathd_algbra_107"])
    msg = str(ei.value)
    assert "'mathd_algbra_107'" in msg and "did you mean" in msg and "mathd_algebra_107" in msg
    assert "mathd_algebra_171" not in msg  # only the unknown names are reported


def test_resolve_data_dir_precedence(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert resolve_data_dir(str(a), str(b)) == a
    assert resolve_data_dir(None, str(b)) == b
    with pytest.raises(DataError, match="--data-dir"):
        resolve_data_dir(str(tmp_path / "nope"), str(b))
    with pytest.raises(DataError, match="LLEMMA_PROVER_DATA"):
        resolve_data_dir(None, str(tmp_path / "nope"))
    # the default: the copy shipped inside the package, wherever the checkout lies
    root = tmp_path / "checkout"
    root.mkdir()
    assert resolve_data_dir(None, None, repo_root=root) == shipped_data_dir()
    assert resolve_data_dir(None, None) == shipped_data_dir()
