"""The ``coqdep`` graph of a Coq library: which files depend on which, by logical module name.

Used by library mode (``prove --library``) so that **no lemma is proved from itself**: the installed
``.vo`` of the file being attempted, and of every file that depends on it, must not be loadable, and an
automation import (``Coq.micromega.Lia``, ``Hammer.Tactics.Tactics``, ...) is loaded only where its
transitive closure does not contain that file.

The graph spans the installed standard library (``$(coqc -where)/theories`` as ``Coq``), the
``user-contrib`` packages asked for (``packages=("Hammer",)``) and the library itself. Edges come from
``coqdep`` (run on trusted library sources, outside any sandbox); every standard-library file outside
``Init/`` and every file of another library also depends on ``Coq.Init.Prelude``, which Coq loads
implicitly and ``coqdep`` does not list. The graph is cached as JSON under the user cache directory
(``$XDG_CACHE_HOME/llemma-prover/library-deps``), keyed by the Coq version, the library, its folder
and the names, sizes and modification times of its ``.v`` files; building it takes about a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ...core.errors import ConfigError
from .automation import coq_where

__all__ = ["HIDDEN_SUFFIXES", "LibraryDeps", "PRELUDE"]

#: the module Coq loads implicitly into every file compiled without ``-noinit``
PRELUDE = "Coq.Init.Prelude"
#: the compiled forms of a module that hiding covers (``.vo`` and its variants, the glob file)
HIDDEN_SUFFIXES = (".vo", ".vos", ".vok", ".glob")
#: bump when the cached JSON changes shape
_CACHE_FORMAT = 2
_COQDEP_TIMEOUT_S = 300.0


class Source(Protocol):
    """What the graph needs of a library (``extract.sources.Source`` has it)."""

    @property
    def library(self) -> str: ...
    @property
    def root(self) -> str: ...
    @property
    def logical(self) -> str: ...


@dataclass(frozen=True)
class _Lib:
    """One library in the graph: its logical name and the folder its ``.v`` (and ``.vo``) files are in."""

    logical: str
    root: str
    #: the stdlib's own files (``Init/`` is compiled without the prelude)
    stdlib: bool


@dataclass(frozen=True)
class LibraryDeps:
    """The dependency graph of ``library`` (build with ``LibraryDeps.build``).

    Files of the library are named by their path relative to its root (``"ZArith/BinInt.v"``),
    modules by logical name (``"Coq.ZArith.BinInt"``).
    """

    library: str
    logical: str
    root: str
    coq_version: str
    #: relative file of the library -> its logical module name
    modules: dict[str, str]
    #: logical module -> the modules it ``Require``s directly (every library in the graph)
    requires: dict[str, tuple[str, ...]]
    #: logical module -> its compiled file without suffix (``.../theories/ZArith/BinInt``)
    paths: dict[str, str]

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        source: Source,
        *,
        packages: Sequence[str] = ("Hammer",),
        coqc: str = "coqc",
        cache_dir: str | None = None,
        use_cache: bool = True,
    ) -> LibraryDeps:
        """The graph of ``source`` plus the stdlib and the installed ``packages`` (``user-contrib``
        folders; one that is not installed is left out). Read from the cache when it is there."""
        where = coq_where(coqc)
        version = _coq_version(coqc)
        libs = [_Lib("Coq", str(where / "theories"), stdlib=True)]
        for pkg in packages:
            folder = where / "user-contrib" / pkg.replace(".", "/")
            if folder.is_dir():
                libs.append(_Lib(pkg, str(folder), stdlib=False))
        if not any(lib.logical == source.logical and lib.root == source.root for lib in libs):
            libs.append(_Lib(source.logical, source.root, stdlib=False))
        key = _cache_key(version, source, libs)
        folder = Path(cache_dir) if cache_dir else _user_cache() / "library-deps"
        cached = folder / f"{key}.json"
        if use_cache and cached.is_file():
            try:
                return cls._from_json(json.loads(cached.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError):
                pass  # a damaged cache file is rebuilt below
        deps = cls._compute(source, libs, version, coqc)
        if use_cache:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(json.dumps(deps._to_json()), encoding="utf-8")
                os.replace(tmp, cached)
            except OSError:
                pass  # a cache folder that cannot be written: the graph is rebuilt next time
        return deps

    @classmethod
    def _compute(cls, source: Source, libs: Sequence[_Lib], version: str, coqc: str) -> LibraryDeps:
        coqdep = coqc[: -len("coqc")] + "coqdep" if coqc.endswith("coqc") else "coqdep"
        args: list[str] = []
        files: list[str] = []
        module_of: dict[str, str] = {}  # absolute path without suffix -> module
        lib_of: dict[str, _Lib] = {}
        for lib in libs:
            args += ["-R", lib.root, lib.logical]  # -R: short names resolve too (more edges, never fewer)
            for rel in v_files(lib.root):
                path = os.path.join(lib.root, rel)
                files.append(path)
                mod = _logical(lib.logical, rel)
                module_of[os.path.normpath(path[: -len(".v")])] = mod
                lib_of[mod] = lib
        try:
            out = subprocess.run(
                [coqdep, *args, *files],
                capture_output=True,
                text=True,
                timeout=_COQDEP_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfigError(f"cannot run coqdep: {exc}") from exc
        requires: dict[str, set[str]] = {m: set() for m in lib_of}
        for line in out.stdout.splitlines():
            targets, sep, prereqs = line.partition(":")
            vo = [t for t in targets.split() if t.endswith(".vo")]
            if not sep or not vo:
                continue
            target = module_of.get(os.path.normpath(vo[0][: -len(".vo")]))
            if target is None:
                continue
            for p in prereqs.split():
                if p.endswith(".vo"):
                    dep = module_of.get(os.path.normpath(p[: -len(".vo")]))
                    if dep is not None and dep != target:
                        requires[target].add(dep)
        for mod, lib in lib_of.items():
            implicit = not (lib.stdlib and mod.startswith("Coq.Init."))
            if implicit and PRELUDE in requires and mod != PRELUDE:
                requires[mod].add(PRELUDE)
        src_lib = next(lib for lib in libs if lib.logical == source.logical and lib.root == source.root)
        return cls(
            library=source.library,
            logical=source.logical,
            root=source.root,
            coq_version=version,
            modules={rel: _logical(src_lib.logical, rel) for rel in v_files(src_lib.root)},
            requires={m: tuple(sorted(d)) for m, d in requires.items()},
            paths={m: p for p, m in module_of.items()},
        )

    def _to_json(self) -> dict[str, object]:
        return {
            "format": _CACHE_FORMAT,
            "library": self.library,
            "logical": self.logical,
            "root": self.root,
            "coq_version": self.coq_version,
            "modules": self.modules,
            "requires": {m: list(d) for m, d in self.requires.items()},
            "paths": self.paths,
        }

    @classmethod
    def _from_json(cls, data: dict[str, object]) -> LibraryDeps:
        if data.get("format") != _CACHE_FORMAT:
            raise ValueError("cache format")
        requires = data["requires"]
        assert isinstance(requires, dict)
        return cls(
            library=str(data["library"]),
            logical=str(data["logical"]),
            root=str(data["root"]),
            coq_version=str(data["coq_version"]),
            modules=dict(data["modules"]),  # type: ignore[call-overload]
            requires={str(m): tuple(d) for m, d in requires.items()},
            paths=dict(data["paths"]),  # type: ignore[call-overload]
        )

    # -- queries ---------------------------------------------------------------------------------
    def module(self, rel: str) -> str:
        """The logical name of the library's file ``rel`` (``ConfigError`` if it has no such file)."""
        try:
            return self.modules[os.path.normpath(rel)]
        except KeyError:
            raise ConfigError(f"{rel!r} is not a .v file of the library {self.library}") from None

    def closure(self, module: str) -> frozenset[str]:
        """``module`` and every module it loads, transitively (``ConfigError`` for an unknown one)."""
        if module not in self.requires:
            raise ConfigError(
                f"the module {module!r} is not in the dependency graph of {self.library} "
                "(not installed, or its package was not asked for)"
            )
        seen = {module}
        todo = [module]
        while todo:
            for dep in self.requires[todo.pop()]:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return frozenset(seen)

    def dependant_modules(self, rel: str) -> frozenset[str]:
        """Logical names of every module (any library in the graph) that loads ``rel``, and its own."""
        target = self.module(rel)
        users: dict[str, list[str]] = {}
        for mod, deps in self.requires.items():
            for dep in deps:
                users.setdefault(dep, []).append(mod)
        seen = {target}
        todo = [target]
        while todo:
            for user in users.get(todo.pop(), ()):
                if user not in seen:
                    seen.add(user)
                    todo.append(user)
        return frozenset(seen)

    def dependants(self, rel: str) -> frozenset[str]:
        """The library's files that transitively depend on ``rel``, ``rel`` included (relative paths)."""
        mods = self.dependant_modules(rel)
        return frozenset(r for r, m in self.modules.items() if m in mods)

    def automation_for(self, rel: str, candidates: Sequence[str]) -> tuple[str, ...]:
        """The ``candidates`` (logical module names) whose transitive closure does not load ``rel``,
        in the order given. ``ConfigError`` for a candidate the graph does not know."""
        target = self.module(rel)
        return tuple(c for c in candidates if target not in self.closure(c))

    def hidden_paths(self, rel: str, build_root: str | None = None) -> tuple[str, ...]:
        """The compiled files (``HIDDEN_SUFFIXES``) of ``rel`` and of every module that depends on it,
        as they exist on disk. ``build_root``: where a compiled copy of a non-installed library lives
        (its ``.vo`` files are there, not beside the sources)."""
        out: list[str] = []
        for mod in sorted(self.dependant_modules(rel)):
            base = self.paths[mod]
            if build_root is not None and _under(base, self.root):
                base = os.path.join(build_root, os.path.relpath(base, self.root))
            out += [base + s for s in HIDDEN_SUFFIXES if os.path.exists(base + s)]
            out += _native_files(base)
        return tuple(out)


def _logical(prefix: str, rel: str) -> str:
    parts = Path(rel[: -len(".v")] if rel.endswith(".v") else rel).parts
    return ".".join([prefix, *parts]) if prefix else ".".join(parts)


def _under(path: str, root: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) == os.path.abspath(root)


def _native_files(base: str) -> list[str]:
    """Native-compiler objects of a module (``.coq-native/N<path>.*``), when Coq built any."""
    folder = os.path.join(os.path.dirname(base), ".coq-native")
    if not os.path.isdir(folder):
        return []
    stem = os.path.basename(base)
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.startswith("N") and f.split(".")[0].endswith("_" + stem)
    )


def v_files(root: str | Path) -> list[str]:
    """``.v`` files under ``root`` (relative paths, sorted), as ``extract.sources.v_files``."""
    base = Path(root)
    return sorted(str(p.relative_to(base)) for p in base.rglob("*.v") if p.is_file())


def _coq_version(coqc: str) -> str:
    try:
        out = subprocess.run(
            [coqc, "--print-version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot run `{coqc} --print-version`: {exc}") from exc
    return out.stdout.split()[0] if out.stdout.split() else "unknown"


def _cache_key(version: str, source: Source, libs: Iterable[_Lib]) -> str:
    h = hashlib.sha256(f"{_CACHE_FORMAT}\0{version}\0{source.library}\0{source.logical}".encode())
    for lib in libs:
        h.update(f"\0{lib.logical}\0{lib.root}".encode())
        for rel in v_files(lib.root):
            st = os.stat(os.path.join(lib.root, rel))
            h.update(f"\0{rel}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in source.library)[:40]
    return f"{safe}-{h.hexdigest()[:16]}"


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llemma-prover"
