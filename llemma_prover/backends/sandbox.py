"""Sandboxing of prover processes that run untrusted (model-written) input.

Every prover process is started through ``Sandbox.wrap(argv, workdir=..., read_only=...)`` and
``Sandbox.preexec``:

* resource limits (``setrlimit``): address space, CPU seconds, file size, open files, no core dumps;
* a private temporary working directory and a scrubbed environment (``Sandbox.env``);
* with ``bwrap`` (Debian's bubblewrap, the mechanism chosen where it works): new mount, network, PID,
  IPC, UTS and cgroup namespaces; the whole file system is mounted **read-only**, ``/tmp`` is an
  empty read-only tmpfs (other runs' files are invisible), ``/dev`` is a minimal read-only one, and
  the only writable path is the process's private working directory (plus the read-only binds a
  caller names, e.g. a compiled library to load). A smuggled ``Redirect``, ``Extraction "file"``,
  ``Cd`` or ``.vo`` write anywhere else fails with "Read-only file system"; no network interface but
  ``lo``; ``--die-with-parent`` and the PID namespace take every child down with the sandbox;
* with ``unshare`` (fallback where bubblewrap is missing or refused): a new network namespace only;
  the file system is **not** confined and ``describe()`` says so;
* ``none``: rlimits, environment and private working directory only.

**Hiding** (``Sandbox.hiding(paths)``, library mode): the given files are made unreadable inside the
sandbox (bwrap binds ``/dev/null`` over each, so opening one fails: ``Require`` of a hidden ``.vo``
fails with "Permission denied"). Only bubblewrap can hide; ``wrap`` of a hiding sandbox under any other
mechanism raises ``ConfigError`` instead of running the process with the files visible.

Whatever the mechanism, the **whole process tree** is contained by a cgroup where the machine allows
one (``backends/cgroup.py``: process limit, memory limit of the tree, CPU bound; v1 or v2), probed
by ``detect()`` too and recorded in ``describe()["process_tree"]``; where neither cgroup version is
usable that entry says so and why (``{"mechanism": "none", "reason": ...}``) and only the
per-process rlimits hold.

Detection runs a real probe (``detect()``: the bwrap probe writes in its working directory and must
fail to write outside it) once, explicitly, never at import time. ``describe()`` is what
``config.json["sandbox"]`` records.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.errors import ConfigError
from .cgroup import Cgroups, TreeLimits

if TYPE_CHECKING:
    from ..core.config import ProverConfig

#: environment variables a prover may see (everything else is dropped)
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "COQLIB", "COQPATH", "OCAMLPATH", "LEAN_PATH", "ELAN_HOME",
             "ISABELLE_HOME", "USER_HOME")

#: seconds the detection probe may take
PROBE_TIMEOUT_S = 10.0


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

    #: "bwrap" (namespaces + read-only file system), "unshare" (network namespace only) or "none"
    network: str = "none"
    limits: Limits = field(default_factory=Limits)
    scrub_env: bool = True
    #: files made unreadable inside the sandbox (bwrap only; see ``hiding``)
    hidden: tuple[str, ...] = ()
    #: the cgroups every process tree is put in (``None``: none usable, see ``cgroups_reason``)
    cgroups: Cgroups | None = None
    #: why there are no cgroups (empty when there are, or when none were asked for)
    cgroups_reason: str = "not probed"

    def hiding(self, paths: Sequence[str]) -> Sandbox:
        """This sandbox with ``paths`` (files) unreadable as well: each is replaced by an empty,
        unreadable node inside the sandbox. ``ConfigError`` at once unless the mechanism is bwrap
        (nothing else can hide a file), so a caller never runs a process that could read them."""
        if paths and self.network != "bwrap":
            raise ConfigError(
                f"hiding installed files needs the bubblewrap sandbox (this one is {self.network!r}); "
                "library mode refuses to run without it (install bubblewrap, allow user namespaces)"
            )
        return dataclasses.replace(self, hidden=tuple(dict.fromkeys([*self.hidden, *paths])))

    @classmethod
    def detect(
        cls,
        limits: Limits | None = None,
        *,
        want_network_isolation: bool = True,
        tree: TreeLimits | None = None,
    ) -> Sandbox:
        """Probe what this machine allows (runs a small command under each mechanism once, creates
        and removes one cgroup)."""
        limits = limits or Limits()
        found = Cgroups.detect(tree)
        cgroups, reason = (found, "") if isinstance(found, Cgroups) else (None, found)
        network = "none"
        if want_network_isolation:
            if shutil.which("bwrap") and _probe_bwrap():
                network = "bwrap"
            elif shutil.which("unshare") and _probe(["unshare", "--net", "--", "true"]):
                network = "unshare"
        return cls(network=network, limits=limits, cgroups=cgroups, cgroups_reason=reason)

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled to another process (a Ray worker, perhaps on another machine), the cgroups are
        probed again there: the per-run parent belongs to the process that created it."""
        tree = self.cgroups.limits if self.cgroups is not None else None
        return (_rebuilt, (self.network, self.limits, self.scrub_env, self.hidden, tree, self.cgroups_reason))

    @property
    def wrapper_processes(self) -> int:
        """Processes the wrapper keeps beside the prover: bwrap's monitor and its PID-namespace init
        (``bwrap`` without ``--as-pid-1``); ``unshare`` execs the prover (0)."""
        return 2 if self.network == "bwrap" else 0

    @property
    def confines_files(self) -> bool:
        """Whether writes outside the working directory are impossible (bwrap only)."""
        return self.network == "bwrap"

    def wrap(
        self, argv: Sequence[str], *, workdir: str | None = None, read_only: Sequence[str] = ()
    ) -> list[str]:
        """The command line that runs ``argv`` inside the sandbox.

        ``workdir`` is the only writable path under bwrap; ``read_only`` are extra paths made
        visible read-only (needed only under a bwrap ``/tmp``, which is otherwise empty). A caller
        that names no ``workdir`` (the Lean REPL, which runs in its project) gets the host's ``/tmp``
        writable instead of a private directory, everything else read-only. Both arguments are
        ignored by the other mechanisms.
        """
        if self.hidden and self.network != "bwrap":  # never run with the files visible
            raise ConfigError(f"cannot hide {len(self.hidden)} files without bubblewrap: not run")
        if self.network == "bwrap":
            return [*_bwrap_prefix(workdir, read_only, self.hidden), *argv]
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
        """What protection is active, for ``config.json`` (measured by ``detect()``, not assumed)."""
        files = {
            "bwrap": "read-only view of / (bubblewrap); writable: the process's private directory only, "
            "/tmp an empty read-only tmpfs (Coq: coqtop, coqc, coqchk); /tmp writable for a process "
            "started without a private directory (the Lean REPL in its project)",
            "unshare": "not confined (unshare --net gives a network namespace only)",
            "none": "not confined",
        }[self.network if self.network in ("bwrap", "unshare") else "none"]
        return {
            "mechanism": self.network,
            "network_isolation": self.network,
            "filesystem": files,
            "filesystem_confined": self.confines_files,
            "namespaces": ["mount", "net", "pid", "ipc", "uts", "cgroup"] if self.network == "bwrap"
            else (["net"] if self.network == "unshare" else []),
            "rlimits": {
                "address_space_mb": self.limits.address_space_mb,
                "cpu_seconds": self.limits.cpu_seconds,
                "file_size_mb": self.limits.file_size_mb,
                "open_files": self.limits.open_files,
                "core_dumps": False,
            },
            "scrubbed_env": self.scrub_env,
            "private_tmpdir": True,
            "hidden_files": len(self.hidden),
            "process_tree": self.cgroups.describe()
            if self.cgroups is not None
            else {"mechanism": "none", "reason": self.cgroups_reason,
                  "note": "per-process rlimits only: a process a prover forks is not bounded with it"},
        }


def _rebuilt(
    network: str,
    limits: Limits,
    scrub_env: bool,
    hidden: tuple[str, ...],
    tree: TreeLimits | None,
    reason: str,
) -> Sandbox:
    """``Sandbox.__reduce__``: the same sandbox, with cgroups detected in this process."""
    cgroups: Cgroups | None = None
    if tree is not None:
        found = Cgroups.detect(tree)
        cgroups, reason = (found, "") if isinstance(found, Cgroups) else (None, found)
    return Sandbox(network=network, limits=limits, scrub_env=scrub_env, hidden=hidden, cgroups=cgroups,
                   cgroups_reason=reason)


def _bwrap_prefix(workdir: str | None, read_only: Sequence[str], hidden: Sequence[str] = ()) -> list[str]:
    base = [
        "bwrap", "--unshare-all", "--die-with-parent",
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
    ]
    # /dev/null over each hidden file, after every other bind (a later bind of a folder above it
    # would show the file again): the name still exists, but the file cannot be read
    hide: list[str] = []
    for path in hidden:
        hide += ["--ro-bind", "/dev/null", os.path.realpath(path)]
    if workdir is None:
        return [*base, "--bind", "/tmp", "/tmp", *hide, "--remount-ro", "/dev", "--"]
    argv = [*base, "--tmpfs", "/tmp"]
    for path in read_only:
        real = os.path.realpath(path)
        argv += ["--ro-bind", real, real]
    real = os.path.realpath(workdir)
    argv += ["--bind", real, real, *hide, "--chdir", real]
    return [*argv, "--remount-ro", "/tmp", "--remount-ro", "/dev", "--"]


def _probe(argv: Sequence[str], cwd: str | None = None) -> bool:
    try:
        r = subprocess.run(list(argv), capture_output=True, timeout=PROBE_TIMEOUT_S, check=False, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def _probe_bwrap() -> bool:
    """bwrap starts, its working directory is writable, and the directory above it is not."""
    with tempfile.TemporaryDirectory(prefix="llemma-sandbox-probe-") as outer:
        inner = os.path.join(outer, "inner")
        os.mkdir(inner)
        ok = _probe(
            [*_bwrap_prefix(inner, ()), "sh", "-c", "echo x > inside && ! (echo x > ../outside) 2>/dev/null"],
            cwd=inner,
        )
        return ok and os.path.exists(os.path.join(inner, "inside")) and not os.path.exists(
            os.path.join(outer, "outside")
        )


def sandbox_for(config: ProverConfig) -> Sandbox:
    """The sandbox a backend runs its processes in, per ``ProverConfig.sandbox`` (probes the OS)."""
    limits = Limits(address_space_mb=config.memory_limit_mb, cpu_seconds=config.cpu_limit_s)
    tree = TreeLimits(memory_mb=config.memory_limit_mb)
    return Sandbox.detect(limits, want_network_isolation=config.sandbox == "auto", tree=tree)
