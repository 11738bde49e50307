"""Doctor checks for ``--backend leandojo``: the ``lean_dojo`` package and what it needs to run.

LeanDojo traces a repository before proving (hours, network): the doctor checks what can be checked
in seconds -- the package imports without side effects it would not have anyway (``find_spec``, the
installed version), and the tools it shells out to (``git``, a Lean toolchain through elan).
"""

from __future__ import annotations

import importlib.util
import shutil
from typing import TYPE_CHECKING

from ..backends.leandojo import INSTALL_HINT, MIN_LEAN_DOJO, lean_dojo_version
from .checks import Checklist, Verdict
from .probe import run_probe

if TYPE_CHECKING:
    from .runner import DoctorOptions

__all__ = ["check_backend", "run_leandojo_checks"]


def run_leandojo_checks(cl: Checklist) -> None:
    def package() -> Verdict:
        version = lean_dojo_version()
        if version is None or importlib.util.find_spec("lean_dojo") is None:
            return Verdict(False, "lean_dojo is not installed")
        found = ".".join(map(str, version))
        if version < MIN_LEAN_DOJO:
            return Verdict(False, f"lean-dojo {found} is older than {'.'.join(map(str, MIN_LEAN_DOJO))}")
        return Verdict(True, f"lean-dojo {found}")

    cl.run(
        "lean_dojo package",
        f"lean-dojo >= {'.'.join(map(str, MIN_LEAN_DOJO))} is installed and `import lean_dojo` resolves",
        INSTALL_HINT,
        package,
    )

    def tool(name: str, args: list[str]) -> Verdict:
        path = shutil.which(name)
        if path is None:
            return Verdict(False, f"{name}: not found on PATH")
        status, output = run_probe([path, *args], timeout=60)
        return Verdict(status == 0, f"{output.strip().splitlines()[:1]} at {path}")

    cl.run(
        "git",
        "git on PATH (LeanDojo clones the traced repository)",
        "install git",
        lambda: tool("git", ["--version"]),
    )
    cl.run(
        "elan",
        "elan on PATH (LeanDojo installs the repository's Lean toolchain with it)",
        "install elan: https://github.com/leanprover/elan",
        lambda: tool("elan", ["--version"]),
    )


def check_backend(cl: Checklist, opts: DoctorOptions) -> None:
    """``LeanDojoBackend.doctor_checks``."""
    run_leandojo_checks(cl)
