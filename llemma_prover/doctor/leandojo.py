"""Doctor checks for ``--backend leandojo``: the ``lean_dojo`` package and what it needs to run.

LeanDojo traces a repository before proving (hours, network): the doctor checks what can be checked
in seconds -- the package imports without side effects it would not have anyway (``find_spec``, the
installed version), and the tools it shells out to (``git``, a Lean toolchain through elan).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
from typing import TYPE_CHECKING

from .checks import Checklist, Verdict

if TYPE_CHECKING:
    from .runner import DoctorOptions

__all__ = ["check_backend", "run_leandojo_checks"]


def run_leandojo_checks(cl: Checklist) -> None:
    def package() -> Verdict:
        if importlib.util.find_spec("lean_dojo") is None:
            return Verdict(False, "lean_dojo is not installed")
        try:
            version = importlib.metadata.version("lean-dojo")
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        return Verdict(True, f"lean-dojo {version}")

    cl.run(
        "lean_dojo package",
        "`import lean_dojo` resolves",
        "pip install lean-dojo (see its docs for "
        "tracing a repository; the Llemma evaluation traced miniF2F this way)",
        package,
    )

    def tool(name: str, args: list[str]) -> Verdict:
        path = shutil.which(name)
        if path is None:
            return Verdict(False, f"{name}: not found on PATH")
        out = subprocess.run([path, *args], capture_output=True, text=True, timeout=60, check=False)
        return Verdict(out.returncode == 0, f"{(out.stdout + out.stderr).strip().splitlines()[:1]} at {path}")

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
