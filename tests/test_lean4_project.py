"""lean_project/ pins, and finding the REPL: ``lake env <repl>`` in the Lake project.

A stand-in ``lake`` (``lake env CMD...`` -> exec CMD, which is all ``lake env`` does once LEAN_PATH is
set) and a stand-in ``repl`` binary that execs the replay REPL let the whole discovery + process
chain run here: the real Lean toolchain is the only thing replaced.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
import tomllib
from conftest import data_dir as conftest_data_dir

from llemma_prover.backends.lean4 import Lean4Backend, Lean4Settings
from llemma_prover.backends.lean4.locate import REPL_IN_PROJECT, resolve_repl
from llemma_prover.backends.lean4.pool import PoolPolicy
from llemma_prover.backends.lean4.repl_process import group_alive
from llemma_prover.core.config import ProverConfig
from llemma_prover.core.errors import ProverUnavailable
from llemma_prover.core.types import Advanced, Theorem

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "lean_project"
TRANSCRIPTS = Path(
    os.environ.get("LLEMMA_PROVER_LEAN_TRANSCRIPTS", REPO.parent / "shared/lean4_repl/transcripts")
)
DATA_README = (
    conftest_data_dir() / "README.md"
)


PINNED = "v4.32.0"


def test_project_pins_one_matching_release_of_lean_mathlib_and_the_repl() -> None:
    cfg = tomllib.loads((PROJECT / "lakefile.toml").read_text())
    reqs = {r["name"]: r for r in cfg["require"]}
    assert {k: r["rev"] for k, r in reqs.items()} == {"mathlib": PINNED, "REPL": PINNED}
    assert reqs["mathlib"]["git"] == "https://github.com/leanprover-community/mathlib4"
    assert reqs["REPL"]["git"] == "https://github.com/leanprover-community/repl"
    assert (PROJECT / "lean-toolchain").read_text().strip() == f"leanprover/lean4:{PINNED}"
    # the docs say the same, and say that nothing was built and no manifest exists
    readme = (PROJECT / "README.md").read_text()
    assert f"`{PINNED}`" in readme and "None of this has been built here" in readme
    assert not (PROJECT / "lake-manifest.json").exists() and "lake-manifest.json" in readme
    docs = (REPO / "docs" / "lean4.md").read_text()
    assert f"REPL tag `{PINNED}`" in docs
    if DATA_README.is_file():  # the statements themselves were written for v4.24.0
        text = DATA_README.read_text()
        assert "leanprover/lean4:v4.24.0" in text and "v4.24.0" in readme


def _exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    _exe(bindir / "lake", '#!/bin/sh\n[ "$1" = env ] || exit 64\nshift\nexec "$@"\n')
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir / "lake"


def _project_with_repl(root: Path) -> Path:
    (root / "lakefile.toml").parent.mkdir(parents=True, exist_ok=True)
    (root / "lakefile.toml").write_text('name = "p"\n')
    return _exe(
        root / REPL_IN_PROJECT,
        f'#!/bin/sh\nexec "{sys.executable}" -m llemma_prover.testing.replay_repl '
        f'--transcripts "{TRANSCRIPTS}" --spawn-child\n',
    )


def test_resolve_project_dir_binary_and_errors(tmp_path: Path, fake_lake: Path) -> None:
    proj = tmp_path / "proj"
    binary = _project_with_repl(proj)
    by_dir = resolve_repl(str(proj))
    assert by_dir.argv == (str(fake_lake), "env", str(binary.resolve())) and by_dir.cwd == str(proj.resolve())
    by_bin = resolve_repl(str(binary))
    assert by_bin.argv == by_dir.argv and by_bin.cwd == str(proj.resolve())
    assert resolve_repl(None, default_project=proj).argv == by_dir.argv
    plain = _exe(tmp_path / "elsewhere" / "repl", "#!/bin/sh\n")
    assert resolve_repl(str(plain)).argv == (str(plain.resolve()),)
    with pytest.raises(ProverUnavailable, match="no built REPL"):
        resolve_repl(str(tmp_path / "elsewhere"))
    with pytest.raises(ProverUnavailable, match="lake exe cache get"):
        resolve_repl(str(tmp_path / "missing"))


def test_no_lake_on_path_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = tmp_path / "proj"
    _project_with_repl(proj)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ProverUnavailable, match="'lake' is not on PATH"):
        resolve_repl(str(proj))


@pytest.mark.skipif(not TRANSCRIPTS.is_dir(), reason="no REPL transcripts")
def test_backend_runs_repl_under_lake_env_and_kills_the_group(tmp_path: Path, fake_lake: Path) -> None:
    proj = tmp_path / "proj"
    _project_with_repl(proj)
    settings = Lean4Settings(
        executable=str(proj),
        tactic_timeout=5,
        pool=PoolPolicy(start_timeout=20, recycle_rss_mb=0, warm_spare=False),
    )
    b = Lean4Backend(ProverConfig(), settings)
    with b:
        root = b.start_theorem(
            Theorem(name="f", split="test", system="lean4", header="", statement="def f : Nat :=")
        )
        assert isinstance(b.apply(root.state_id, "apply Int.natAbs"), Advanced)
        assert b._session is not None
        proc = b._session.process
        assert proc.cwd == str(proj.resolve()) and proc.argv[:2] == [str(fake_lake), "env"]
        pgid = proc.pgid
        assert pgid is not None and group_alive(pgid)
    assert not group_alive(pgid)
