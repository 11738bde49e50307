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

from ...core.errors import ConfigError

__all__ = ["COQ_LIBRARIES", "SOLVERS", "coq_automation", "coq_where", "hammer_tactics_installed"]

#: Coq libraries (user-contrib folder -> Debian package)
COQ_LIBRARIES: dict[str, str] = {
    "Hammer": "libcoq-hammer",
    "Coquelicot": "libcoq-coquelicot",
    "Interval": "libcoq-interval",
    "Coqprime": "libcoq-coqprime",
}
#: external programs the tactics call (executable -> Debian package)
SOLVERS: dict[str, str] = {"csdp": "coinor-csdp", "eprover": "eprover", "z3": "z3", "cvc4": "cvc4"}


def coq_where(coqc: str = "coqc", timeout: float = 30.0) -> Path:
    """Coq's library folder (``coqc -where``): the one place that asks Coq for it. Raises
    ``ConfigError`` when ``coqc`` cannot be run."""
    try:
        out = subprocess.run([coqc, "-where"], capture_output=True, text=True, timeout=timeout, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot run `{coqc} -where` (is Coq installed?): {exc}") from exc
    return Path(out.stdout.strip())


def _installed_where(coqc: str, timeout: float) -> Path | None:
    """``coq_where`` for a probe of what is installed: None when Coq is not there."""
    exe = shutil.which(coqc)
    if exe is None:
        return None
    try:
        return coq_where(exe, timeout)
    except ConfigError:
        return None


def coq_automation(coqc: str = "coqc", timeout: float = 30.0) -> dict[str, bool]:
    """``{name: installed}`` for every library of ``COQ_LIBRARIES`` and solver of ``SOLVERS``."""
    where = _installed_where(coqc, timeout)
    found = {lib: where is not None and (where / "user-contrib" / lib).is_dir() for lib in COQ_LIBRARIES}
    found.update({prog: shutil.which(prog) is not None for prog in SOLVERS})
    return found


def hammer_tactics_installed(coqc: str = "coqc", timeout: float = 30.0) -> bool:
    """Whether CoqHammer's compiled tactics (``Hammer/Tactics/Tactics.vo``: ``sauto``, ``hauto``) are
    installed for this Coq (runs ``coqc -where`` once)."""
    where = _installed_where(coqc, timeout)
    return where is not None and (where / "user-contrib" / "Hammer" / "Tactics" / "Tactics.vo").is_file()
