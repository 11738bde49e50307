"""Which Coq automation is installed here: libraries under ``coqc -where`` and external solvers.

Recorded in a run's ``config.json["automation"]`` (through the bank generator's ``describe()``), so a
result says which of the bank's tactic families could work at all: ``psatz`` needs ``csdp``
(Debian ``coinor-csdp``), ``sauto``/``hauto`` need the ``Hammer`` library (``libcoq-hammer``), and
``hammer`` itself also an external prover (``eprover``, ``z3``, ``cvc4``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["COQ_LIBRARIES", "SOLVERS", "coq_automation", "hammer_tactics_installed"]

#: Coq libraries (user-contrib folder -> Debian package)
COQ_LIBRARIES: dict[str, str] = {
    "Hammer": "libcoq-hammer",
    "Coquelicot": "libcoq-coquelicot",
    "Interval": "libcoq-interval",
    "Coqprime": "libcoq-coqprime",
}
#: external programs the tactics call (executable -> Debian package)
SOLVERS: dict[str, str] = {"csdp": "coinor-csdp", "eprover": "eprover", "z3": "z3", "cvc4": "cvc4"}


def coq_automation(coqc: str = "coqc", timeout: float = 30.0) -> dict[str, bool]:
    """``{name: installed}`` for every library of ``COQ_LIBRARIES`` and solver of ``SOLVERS``."""
    where: Path | None = None
    exe = shutil.which(coqc)
    if exe is not None:
        try:
            out = subprocess.run([exe, "-where"], capture_output=True, text=True, timeout=timeout, check=True)
            where = Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            where = None
    found = {lib: where is not None and (where / "user-contrib" / lib).is_dir() for lib in COQ_LIBRARIES}
    found.update({prog: shutil.which(prog) is not None for prog in SOLVERS})
    return found


def hammer_tactics_installed(coqc: str = "coqc", timeout: float = 30.0) -> bool:
    """Whether CoqHammer's compiled tactics (``Hammer/Tactics/Tactics.vo``: ``sauto``, ``hauto``) are
    installed for this Coq (runs ``coqc -where`` once)."""
    exe = shutil.which(coqc)
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "-where"], capture_output=True, text=True, timeout=timeout, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return (Path(out.stdout.strip()) / "user-contrib" / "Hammer" / "Tactics" / "Tactics.vo").is_file()
