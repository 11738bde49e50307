"""The files of a ``prove --library`` run: the source, its compiled copy, the split, the automation each
file may load, and the jobs (a file with a few of its sampled lemmas).

Sources, logical names, compile order and the by-file split are ``extract``'s (``extract/sources.py``).
A library that is not installed is compiled once into a cache folder keyed by its files' content.

**Automation.** The bank's closers need ``Require Import``s (``AUTOMATION``). Loading one in a file it
depends on would hand the search the installed copy of the very lemma being proved, so a module is
loaded only where ``backends/coq/library_deps.py`` (the ``coqdep`` graph over the stdlib, CoqHammer
and the library) shows that its transitive closure does not contain the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..backends.coq.library_session import LibraryFile
from ..core.config import LibraryConfig
from ..core.errors import ConfigError, DataError
from ..extract.coq_replay import FileJob
from ..extract.sources import Source, compile_library, coq_stdlib, jobs_for, library_source
from .lemmas import Lemma, scan_cache_dir

log = logging.getLogger(__name__)

__all__ = ["AUTOMATION", "FileChunk", "automation_for", "build_root", "chunks", "file_jobs", "resolve_source"]

#: the automation modules the bank's tactics need (``backends/coq/header.py``'s automation header)
AUTOMATION: tuple[str, ...] = (
    "Coq.micromega.Lia", "Coq.micromega.Lra", "Coq.micromega.Psatz", "Coq.setoid_ring.Ring",
    "Coq.setoid_ring.Field", "Coq.omega.PreOmega", "Coq.micromega.ZifyNat", "Coq.micromega.ZifyN",
    "Hammer.Tactics.Tactics",
)


def resolve_source(cfg: LibraryConfig) -> Source:
    """``coq-stdlib`` or the folder of ``cfg.library``."""
    if cfg.library == "coq-stdlib":
        return coq_stdlib()
    return library_source(cfg.library, cfg.logical)


def build_root(source: Source, *, memory_limit_mb: int = 4096) -> str:
    """Where the library's ``.vo`` files are: its own folder when installed, else a compiled copy in the
    cache (compiled once per content)."""
    if source.installed:
        return source.root
    h = hashlib.sha256(source.logical.encode())
    for p in sorted(Path(source.root).rglob("*.v")):
        h.update(str(p.relative_to(source.root)).encode() + b"\0" + p.read_bytes())
    folder = scan_cache_dir().parent / "library-builds" / h.hexdigest()[:24]
    marker = folder.parent / f"{folder.name}.json"
    if marker.exists() and folder.is_dir():
        return str(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    errors = compile_library(source, str(folder), memory_limit_mb=memory_limit_mb)
    for rel, msg in errors.items():
        log.warning("%s/%s does not compile: %s", source.library, rel, msg[:300])
    marker.write_text(json.dumps({"root": source.root, "errors": errors}, indent=1) + "\n", encoding="utf-8")
    return str(folder)


def file_jobs(source: Source, root: str, cfg: LibraryConfig) -> list[FileJob]:
    """The files of the run: ``cfg.files`` when given, else every file of ``cfg.split``."""
    jobs = jobs_for(source, None if source.installed else root)
    if cfg.files:
        by_rel = {j.rel: j for j in jobs}
        missing = [f for f in cfg.files if f not in by_rel]
        if missing:
            raise ConfigError(f"--files: {', '.join(missing[:5])} not in {source.library} ({source.root})")
        return [by_rel[f] for f in cfg.files]
    picked = [j for j in jobs if j.split == cfg.split]
    if not picked:
        raise DataError(f"{source.library} has no file in its {cfg.split} split")
    return picked


def automation_for(source: Source, rel: str, candidates: Sequence[str]) -> tuple[str, ...]:
    """The automation modules of ``candidates`` that may be loaded in file ``rel`` (module docstring)."""
    from ..backends.coq.library_deps import LibraryDeps

    return LibraryDeps.build(source).automation_for(rel, candidates)


def installed_automation() -> tuple[str, ...]:
    """``AUTOMATION`` without CoqHammer's tactics where they are not installed."""
    from ..backends.coq.automation import hammer_tactics_installed

    return tuple(m for m in AUTOMATION if not m.startswith("Hammer.") or hammer_tactics_installed())


@dataclass(frozen=True)
class FileChunk:
    """One job: a file and the sampled lemmas of it that this job attempts (file order)."""

    file: LibraryFile
    #: every lemma of the file up to the job's last one: earlier ones are replayed (online learning
    #: learns from their proofs), ``attempt`` says which are searched
    lemmas: tuple[Lemma, ...]
    attempt: tuple[str, ...]
    index: int

    @property
    def key(self) -> str:
        return f"{self.file.key}#{self.index}"


def library_file(source: Source, job: FileJob, automation: tuple[str, ...],
                 hidden: tuple[str, ...] = ()) -> LibraryFile:
    root = job.args[job.args.index("-R") + 1] if "-R" in job.args else source.root
    return LibraryFile(library=source.library, logical=source.logical, root=root, rel=job.rel,
                       path=job.path, args=job.args, automation=automation, hidden=hidden)


def hidden_paths(source: Source, root: str, rel: str) -> tuple[str, ...]:
    """The installed compiled files of ``rel`` and its dependants (``LibraryDeps.hidden_paths``)."""
    from ..backends.coq.library_deps import LibraryDeps

    return LibraryDeps.build(source).hidden_paths(rel, build_root=None if source.installed else root)


def chunks(file: LibraryFile, lemmas: Sequence[Lemma], todo: Sequence[Lemma],
           per_job: int) -> list[FileChunk]:
    """``todo`` (lemmas of ``file`` still to attempt) cut into jobs of at most ``per_job`` lemmas."""
    out = []
    order = {lem.key: i for i, lem in enumerate(lemmas)}
    todo = sorted(todo, key=lambda lem: order[lem.key])
    for n, i in enumerate(range(0, len(todo), per_job)):
        part = todo[i:i + per_job]
        last = order[part[-1].key]
        out.append(FileChunk(file, tuple(lemmas[: last + 1]), tuple(lem.key for lem in part), n))
    return out
