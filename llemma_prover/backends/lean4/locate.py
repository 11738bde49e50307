"""Finding the REPL binary and the Lake project it must run in.

``import Mathlib`` only resolves when the REPL runs with the project's ``LEAN_PATH``; ``lake env``
sets it (and the Lean sysroot) and then executes the command, printing nothing itself. So the
command is ``lake env <repl>`` with the project root as working directory, where the project is
found from what the user gave (``--lean-repl PATH``, i.e. ``ProverConfig.executable``):

1. a directory: a Lake project that requires the REPL (``lean_project/``); the binary is
   ``<dir>/.lake/packages/REPL/.lake/build/bin/repl``;
2. a file inside ``<root>/.lake/...``: the binary itself, run under ``lake env`` in ``<root>``;
3. any other file: run as is (its environment must already provide ``LEAN_PATH``);
4. nothing given: ``lean_project/`` of this checkout if it has been built, else ``repl`` on ``PATH``.

Nothing is looked up at import time; ``resolve_repl`` runs when the backend starts.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import ProverUnavailable

REPL_IN_PROJECT = Path(".lake/packages/REPL/.lake/build/bin/repl")


#: the Lake project shipped with this repository (``<checkout>/lean_project``)
def default_project_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "lean_project"


HOW_TO = (
    "prepare the Lean project once (needs elan: https://github.com/leanprover/elan): "
    "cd lean_project && lake exe cache get && lake build repl; "
    "or pass --lean-repl PATH (a Lake project directory or a repl binary)"
)


@dataclass(frozen=True)
class ReplCommand:
    argv: tuple[str, ...]
    cwd: str | None
    #: how it was found, for logs and config.json
    how: str


def _lake() -> str:
    lake = shutil.which("lake")
    if lake is None:
        raise ProverUnavailable(f"'lake' is not on PATH; {HOW_TO}", backend="lean4")
    return lake


def _from_project(project: Path, how: str) -> ReplCommand:
    binary = project / REPL_IN_PROJECT
    if binary.is_file() and os.access(binary, os.X_OK):
        return ReplCommand((_lake(), "env", str(binary)), str(project), how)
    raise ProverUnavailable(
        f"no built REPL in Lake project {project} (looked for {REPL_IN_PROJECT}); {HOW_TO}", backend="lean4"
    )


def resolve_repl(executable: str | None, default_project: Path | None = None) -> ReplCommand:
    """The command line (and working directory) that starts one REPL process."""
    if executable:
        path = Path(executable).expanduser()
        if path.is_dir():
            return _from_project(path.resolve(), f"--lean-repl project {path}")
        if path.is_file():
            path = path.resolve()
            parts = path.parts
            if ".lake" in parts:
                root = Path(*parts[: parts.index(".lake")])
                return ReplCommand((_lake(), "env", str(path)), str(root), f"--lean-repl binary in {root}")
            return ReplCommand((str(path),), None, f"--lean-repl binary {path}")
        found = shutil.which(executable)
        if found:
            return ReplCommand((found,), None, f"--lean-repl {executable} on PATH")
        raise ProverUnavailable(
            f"--lean-repl {executable}: no such file or directory; {HOW_TO}", backend="lean4"
        )
    project = default_project if default_project is not None else default_project_dir()
    if (project / REPL_IN_PROJECT).is_file():
        return _from_project(project, f"default project {project}")
    found = shutil.which("repl")
    if found:
        return ReplCommand((found,), None, "repl on PATH")
    raise ProverUnavailable(
        f"no Lean REPL found (not built in {project}, no 'repl' on PATH); {HOW_TO}", backend="lean4"
    )
