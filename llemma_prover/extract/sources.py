"""Which Coq files to replay, under which logical names, and in what order (``coqdep``).

A *source* is a folder of ``.v`` files. The installed standard library (``--coq-stdlib``:
``$(coqc -where)/theories``, logical name ``Coq``) and installed packages under ``user-contrib`` have
their ``.vo`` next to them, so each file can be replayed on its own: loaded as its own module
(``-topfile``), it ``Require``s the installed ``.vo`` of its dependencies. Any other folder is copied to a
build folder and compiled with ``coqc`` in the dependency order ``coqdep`` gives (``-R copy LIB``),
so that every file's dependencies exist as ``.vo`` before it is replayed; a file that does not compile
is reported (its dependants then fail to load and say so).

Splits are by file: ``sha256("library/relative path")`` decides train (90 %), valid (5 %), test (5 %),
the same on every machine and run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..backends.coq.automation import coq_where
from ..backends.process import ManagedProcess, ProcessError
from ..backends.sandbox import Sandbox
from ..core.errors import ConfigError, DataError
from .coq_replay import FileJob

__all__ = ["Source", "coq_stdlib", "compile_library", "file_split", "jobs_for", "library_source"]

#: per mille of files in each split (the rest is train)
VALID_PER_MILLE = 50
TEST_PER_MILLE = 50
#: seconds allowed to compile one file of a non-installed library
COMPILE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Source:
    """A folder of ``.v`` files and the logical name its files are known by."""

    library: str
    root: str
    logical: str
    #: the ``.vo`` files are installed beside the sources (nothing to compile)
    installed: bool

    def describe(self) -> dict[str, object]:
        return {"library": self.library, "root": self.root, "logical": self.logical,
                "installed": self.installed}


def file_split(library: str, rel: str) -> str:
    """train / valid / test for one file, from the hash of ``library/rel`` (stable everywhere)."""
    h = int.from_bytes(hashlib.sha256(f"{library}/{rel}".encode()).digest()[:4], "big") % 1000
    if h < TEST_PER_MILLE:
        return "test"
    if h < TEST_PER_MILLE + VALID_PER_MILLE:
        return "valid"
    return "train"


def coq_stdlib(coqc: str = "coqc") -> Source:
    """The installed standard library (``theories``, logical name ``Coq``)."""
    root = coq_where(coqc) / "theories"
    if not root.is_dir():
        raise ConfigError(f"the Coq standard library sources are not at {root}")
    return Source("coq-stdlib", str(root), "Coq", installed=True)


def library_source(folder: str | Path, logical: str | None = None, coqc: str = "coqc") -> Source:
    """A source folder given on the command line. A folder inside ``user-contrib`` is installed (its
    logical name is its path there); any other is compiled, under ``logical`` (default: the folder's
    name)."""
    p = Path(folder).resolve()
    if not p.is_dir():
        raise ConfigError(f"source {str(folder)!r} is not a folder of .v files")
    contrib = (coq_where(coqc) / "user-contrib").resolve()
    if contrib in p.parents:
        rel = p.relative_to(contrib)
        name = logical or ".".join(rel.parts)
        return Source(name, str(p), name, installed=True)
    name = logical or p.name
    if not re.fullmatch(r"[A-Za-z_][\w']*(?:\.[A-Za-z_][\w']*)*", name):
        raise ConfigError(f"{name!r} is not a Coq logical name; pass --logical-name NAME")
    return Source(name, str(p), name, installed=False)


def v_files(root: str | Path) -> list[str]:
    """``.v`` files under ``root`` (relative paths, sorted)."""
    base = Path(root)
    out = [str(p.relative_to(base)) for p in base.rglob("*.v") if p.is_file()]
    return sorted(out)


def _module_args(source: Source, root: str, rel: str) -> tuple[str, ...]:
    args: list[str] = []
    if source.library == "coq-stdlib" and rel.startswith("Init/"):
        args.append("-noinit")  # the Init files are compiled without the prelude they make up
    if source.library != "coq-stdlib":
        # -R, as the library's own build binds it: its files Require each other by short names
        # (Coquelicot's ``Require Import Rbar.``), which -Q does not resolve
        args += ["-R", root, source.logical]
    return tuple(args)


def jobs_for(source: Source, build_root: str | None = None) -> list[FileJob]:
    """One ``FileJob`` per ``.v`` file of ``source`` (``build_root``: the compiled copy of a
    non-installed library, whose files are the ones replayed)."""
    root = build_root or source.root
    jobs = []
    for rel in v_files(source.root):
        jobs.append(FileJob(library=source.library, rel=rel, path=str(Path(root) / rel),
                            args=_module_args(source, root, rel), split=file_split(source.library, rel)))
    return jobs


def dependency_order(source_root: str, logical: str, files: Sequence[str],
                     coqdep: str = "coqdep") -> list[str]:
    """``files`` (relative) ordered so that each comes after the files it depends on (``coqdep``)."""
    try:
        out = subprocess.run([coqdep, "-R", ".", logical, *files], capture_output=True, text=True,
                             timeout=300, cwd=source_root, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot run coqdep: {exc}") from exc
    deps: dict[str, set[str]] = {f: set() for f in files}
    known = set(files)
    for line in out.stdout.splitlines():
        if ":" not in line:
            continue
        targets, _, prereqs = line.partition(":")
        vo = [t for t in targets.split() if t.endswith(".vo")]
        if not vo:
            continue
        src = vo[0][: -len(".vo")] + ".v"
        src = os.path.normpath(src)
        if src not in known:
            continue
        for p in prereqs.split():
            if p.endswith(".vo"):
                dep = os.path.normpath(p[: -len(".vo")] + ".v")
                if dep in known and dep != src:
                    deps[src].add(dep)
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(f: str) -> None:
        if state.get(f) == 2:
            return
        if state.get(f) == 1:
            raise DataError(f"coqdep: dependency cycle through {f}")
        state[f] = 1
        for d in sorted(deps[f]):
            visit(d)
        state[f] = 2
        order.append(f)

    for f in sorted(files):
        visit(f)
    return order


def compile_library(source: Source, build_root: str, *, coqc: str = "coqc", sandbox: Sandbox | None = None,
                    memory_limit_mb: int = 4096,
                    on_file: Callable[[str, bool, str], None] | None = None) -> dict[str, str]:
    """Copy ``source`` to ``build_root`` and compile its files in dependency order. Returns
    ``{relative file: error}`` for the files that did not compile (``on_file(rel, ok, message)``
    is called after each)."""
    if source.installed:
        return {}
    if os.path.exists(build_root):
        shutil.rmtree(build_root)
    shutil.copytree(source.root, build_root,
                    ignore=shutil.ignore_patterns("*.vo", "*.vos", "*.vok", "*.glob"))
    files = v_files(build_root)
    errors: dict[str, str] = {}
    for rel in dependency_order(build_root, source.logical, files, coqdep=_sibling(coqc, "coqdep")):
        proc = ManagedProcess([coqc, "-q", "-R", ".", source.logical, rel], memory_limit_mb=memory_limit_mb,
                              private_tmpdir=False, cwd=build_root, sandbox=sandbox)
        try:
            proc.start()
            rc, out = proc.wait(time.monotonic() + COMPILE_TIMEOUT_S)
            msg = "" if rc == 0 else " ".join(out.split())[-500:]
        except ProcessError as exc:
            rc, msg = -1, f"coqc: {exc}"
        finally:
            proc.close()
        if rc != 0:
            errors[rel] = msg or f"coqc exited with {rc}"
        if on_file is not None:
            on_file(rel, rc == 0, errors.get(rel, ""))
    return errors


def _sibling(coqc: str, name: str) -> str:
    return coqc[: -len("coqc")] + name if coqc.endswith("coqc") else name
