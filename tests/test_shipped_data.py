"""The miniF2F copy shipped inside the package: complete, licensed, and equal to the source folder."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from llemma_prover.data.minif2f import load_split, resolve_data_dir, sha256_files, shipped_data_dir

SYSTEMS = ("coq", "lean4", "isabelle")
SPLITS = ("test", "valid")
REPO = Path(__file__).resolve().parent.parent
#: where tests/conftest.py unpacks the shipped copy when no plain miniF2F folder exists
UNPACKED = REPO / "test-artifacts" / "minif2f"


def _plain_source(folder: Path) -> bool:
    """Whether ``folder`` is a plain miniF2F folder that is not the shipped copy itself (unpacked)."""
    return (folder / "coq" / "test.jsonl").is_file() and folder.resolve() != UNPACKED.resolve()


def _statement_hashes(path: Path) -> dict[str, str]:
    """name -> sha256 of the whole record (header, statement, informal text, sources)."""
    opener = gzip.open if path.suffix == ".gz" else open
    out = {}
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                out[rec["name"]] = hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()
    return out


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("split", SPLITS)
def test_shipped_copy_loads(system: str, split: str) -> None:
    ds = load_split(shipped_data_dir(), system, split)
    assert len(ds.theorems) == 244
    assert ds.files[0].endswith(f"{system}/{split}.jsonl.gz")
    assert ds.sha256 == sha256_files([Path(ds.files[0])])
    assert all(t.statement.strip() and t.informal_statement for t in ds.theorems)


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("split", SPLITS)
def test_shipped_copy_equals_source_per_statement(minif2f_dir: Path, system: str, split: str) -> None:
    source = minif2f_dir / system / f"{split}.jsonl"
    if not _plain_source(minif2f_dir):
        pytest.skip("no plain miniF2F folder to compare with (only the shipped copy)")
    shipped = _statement_hashes(shipped_data_dir() / system / f"{split}.jsonl.gz")
    upstream = _statement_hashes(source)
    assert shipped.keys() == upstream.keys()
    differ = [n for n in upstream if shipped[n] != upstream[n]]
    assert not differ, f"{len(differ)} statements differ, e.g. {differ[:3]}"
    # and byte for byte: the loader's data hash is the same for both, so runs resume across them
    ours, theirs = load_split(shipped_data_dir(), system, split), load_split(minif2f_dir, system, split)
    assert ours.sha256 == theirs.sha256


def test_build_script_reproduces_the_shipped_copy(minif2f_dir: Path) -> None:
    if not _plain_source(minif2f_dir) or not (minif2f_dir / "README.md").is_file():
        pytest.skip("no plain miniF2F folder to build from (only the shipped copy)")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "build_minif2f_data.py"), "--check",
                           "--source", str(minif2f_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_licences_and_provenance_ship_beside_the_data() -> None:
    d = shipped_data_dir()
    prov = (d / "PROVENANCE.md").read_text(encoding="utf-8")
    for repo, commit in (("LLM4Rocq/miniF2F-rocq", "b60affae5d9b81eb097424e3143c40165ccbe97b"),
                         ("yangky11/miniF2F-lean4", "5746b7d6c47855ce1294bed87329618ff7f1bc31"),
                         ("facebookresearch/miniF2F", "e4f113090ad82d64f8ce064d2f55b613a9b6bded")):
        assert repo in prov and commit in prov
    assert "MIT License" in (d / "LICENSE-miniF2F-rocq").read_text()
    assert "LLM4Rocq" in (d / "LICENSE-miniF2F-rocq").read_text()
    assert "Apache License" in (d / "LICENSE-miniF2F-isabelle").read_text()


def test_shipped_copy_is_the_default_without_env_or_flag(tmp_path: Path) -> None:
    # a checkout with nothing beside it still finds data
    assert resolve_data_dir(None, None, repo_root=tmp_path) == shipped_data_dir()


def test_shipped_copy_is_package_data() -> None:
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = cfg["tool"]["setuptools"]["package-data"]["llemma_prover"]
    shipped = [p.relative_to(REPO / "llemma_prover") for p in shipped_data_dir().rglob("*") if p.is_file()]
    assert len(shipped) >= 11
    for rel in shipped:
        assert any(len(rel.parts) == len(Path(p).parts) and rel.match(p) for p in patterns), rel
