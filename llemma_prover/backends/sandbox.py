"""Sandboxing of prover processes that run untrusted (model-written) input.

Every prover process is started through ``Sandbox.wrap(argv)`` and ``Sandbox.preexec``:

* resource limits (``setrlimit``): address space, CPU seconds, file size, open files, no core dumps;
* a private temporary working directory and a scrubbed environment (``Sandbox.env``);
* no network, where the OS allows it: ``bwrap --unshare-net`` (bubblewrap, if installed) or
  ``unshare --net`` (needs root or unprivileged user namespaces); otherwise none, and ``describe()``
  says so, so that ``config.json`` records which protection was active.

Detection runs a real probe (``detect()``) once, explicitly, never at import time.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.config import ProverConfig

#: environment variables a prover may see (everything else is dropped)
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "COQLIB", "COQPATH", "OCAMLPATH", "LEAN_PATH", "ELAN_HOME",
             "ISABELLE_HOME", "USER_HOME")


@dataclass(frozen=True)
class Limits:
    """rlimits applied in the child before exec (0 = leave unlimited)."""

    address_space_mb: int = 4096
    cpu_seconds: int = 0
    file_size_mb: int = 64
    open_files: int = 256


@dataclass(frozen=True)
class Sandbox:
    """How prover processes are confined. Build with ``Sandbox.detect()``; ``Sandbox()`` = rlimits only."""

    #: "bwrap", "unshare" or "none"
    network: str = "none"
    limits: Limits = field(default_factory=Limits)
    scrub_env: bool = True

    @classmethod
    def detect(cls, limits: Limits | None = None, *, want_network_isolation: bool = True) -> Sandbox:
        """Probe what this machine allows (runs ``true`` under each mechanism once)."""
        limits = limits or Limits()
        if want_network_isolation:
            for mech, argv in (
                ("bwrap", _bwrap_prefix()),
                ("unshare", ["unshare", "--net", "--"]),
            ):
                if shutil.which(argv[0]) and _probe(argv):
                    return cls(network=mech, limits=limits)
        return cls(network="none", limits=limits)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside the sandbox."""
        if self.network == "bwrap":
            return [*_bwrap_prefix(), *argv]
        if self.network == "unshare":
            return ["unshare", "--net", "--", *argv]
        return list(argv)

    def env(
        self, base: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """A scrubbed environment for the child."""
        base = os.environ if base is None else base
        env = {k: v for k, v in base.items() if k in _KEEP_ENV} if self.scrub_env else dict(base)
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update(extra or {})
        return env

    def preexec(self) -> Callable[[], None]:
        """A function to run in the child between fork and exec: applies the rlimits."""
        lim = self.limits

        def apply() -> None:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if lim.address_space_mb:
                b = lim.address_space_mb * 1024 * 1024
                resource.setrlimit(resource.RLIMIT_AS, (b, b))
            if lim.cpu_seconds:
                resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_seconds, lim.cpu_seconds + 5))
            if lim.file_size_mb:
                b = lim.file_size_mb * 1024 * 1024
                resource.setrlimit(resource.RLIMIT_FSIZE, (b, b))
            if lim.open_files:
                resource.setrlimit(resource.RLIMIT_NOFILE, (lim.open_files, lim.open_files))

        return apply

    def describe(self) -> dict[str, object]:
        """What protection is active, for ``config.json``."""
        return {
            "network_isolation": self.network,
            "rlimits": {
                "address_space_mb": self.limits.address_space_mb,
                "cpu_seconds": self.limits.cpu_seconds,
                "file_size_mb": self.limits.file_size_mb,
                "open_files": self.limits.open_files,
                "core_dumps": False,
            },
            "scrubbed_env": self.scrub_env,
            "private_tmpdir": True,
        }


def _bwrap_prefix() -> list[str]:
    return [
        "bwrap", "--unshare-net", "--die-with-parent", "--ro-bind", "/", "/",
        "--dev", "/dev", "--proc", "/proc", "--bind", "/tmp", "/tmp", "--",
    ]


def _probe(prefix: Sequence[str]) -> bool:
    try:
        r = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def sandbox_for(config: ProverConfig) -> Sandbox:
    """The sandbox a backend runs its processes in, per ``ProverConfig.sandbox`` (probes the OS)."""
    limits = Limits(address_space_mb=config.memory_limit_mb, cpu_seconds=config.cpu_limit_s)
    return Sandbox.detect(limits, want_network_isolation=config.sandbox == "auto")
