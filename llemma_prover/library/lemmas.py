"""Which lemmas a library has, and the sample a run attempts.

Coq decides what a lemma is: each file is walked once in ``coqidetop`` exactly as ``extract`` walks it
(``extract/coq_replay.replay_file``: Coq's parser cuts the sentences, ``Goal``/``Status`` say where a
proof opens, what it is called and how it closes). A *lemma* is a proof closed by ``Qed`` or ``Defined``;
its place is the character span of its statement sentence and of its proof, so a later walk of the
same file reaches it without reading any text itself. The walk also records the steps of every proof
(``goals_before`` and tactic, extract's step records): online learning reads them.

The walk costs what replaying the file costs, so its result is cached on disk, keyed by the file's
content, the arguments coqidetop runs with and Coq's version (``scan_cache_dir``); a second run, a
resumed one or one with another sample reads the cache. A file whose walk stops early (a sentence Coq
rejects) keeps the lemmas completed before that point.

The sample (``select``): every lemma of the chosen files, in file order, filtered by ``--theorems``;
``--sample N --seed S`` draws ``N`` of them with ``random.Random(S)`` before anything runs; ``--limit``
keeps the first ``N``. The ids (``rel:name``; ``rel:name#2`` for a second lemma of that name in the
file) go into ``config.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..backends.sandbox import Sandbox
from ..core.errors import ConfigError
from ..extract.coq_replay import FileJob, replay_file

log = logging.getLogger(__name__)

__all__ = ["FileScan", "Lemma", "scan_cache_dir", "scan_files", "select"]

#: bump when what a scan records changes (old cache entries are then ignored)
SCAN_FORMAT = 1
#: how the proofs the run attempts are closed
KEPT = ("Qed", "Defined")


@dataclass(frozen=True)
class Lemma:
    """One lemma of a library file, located by Coq's walk of the file."""

    library: str
    rel: str
    name: str
    #: ``rel:name`` (``#2``, ``#3`` for later lemmas of the same name in the file): the record's id
    key: str
    line: int
    #: character offsets in the file: the statement sentence is ``[start, stmt_end)``; the original
    #: proof after it ends at ``end``
    start: int
    stmt_end: int
    end: int
    closed_by: str
    #: the statement sentence, as Coq read it (what a generator may see; never the proof)
    statement: str


@dataclass(frozen=True)
class FileScan:
    """What the walk of one file found: its lemmas in order and the steps of each one's proof."""

    job: FileJob
    sha256: str
    lemmas: tuple[Lemma, ...]
    #: extract's step records of every complete proof, keyed by lemma key (online learning)
    steps: dict[str, list[dict[str, Any]]]
    failure: str | None = None
    message: str = ""
    elapsed: float = 0.0


def scan_cache_dir() -> Path:
    """``$LLEMMA_PROVER_CACHE/library-scans``, else ``~/.cache/llemma-prover/library-scans``."""
    base = os.environ.get("LLEMMA_PROVER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "llemma-prover")
    return Path(base) / "library-scans"


def coq_version(coqc: str = "coqc") -> str:
    try:
        out = subprocess.run([coqc, "--version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot run `{coqc} --version` (is Coq installed?): {exc}") from exc
    return " ".join(out.stdout.split())


def _cache_key(job: FileJob, text: bytes, version: str) -> str:
    h = hashlib.sha256()
    for part in (str(SCAN_FORMAT), version, job.library, job.rel, "\0".join(job.args)):
        h.update(part.encode() + b"\n")
    h.update(text)
    return h.hexdigest()


Steps = dict[str, list[dict[str, Any]]]


def _lemmas_of(job: FileJob, source: str, proofs_at: Sequence[dict[str, Any]],
               steps: Sequence[dict[str, Any]]) -> tuple[tuple[Lemma, ...], Steps]:
    lemmas: list[Lemma] = []
    by_key: dict[str, list[dict[str, Any]]] = {}
    seen: dict[str, int] = {}
    pos = 0  # steps are in proof order; each proof owns the next ``p["steps"]`` of them
    for p in proofs_at:
        own = list(steps[pos: pos + int(p["steps"])])
        pos += int(p["steps"])
        name = str(p["theorem"])
        seen[name] = seen.get(name, 0) + 1
        key = f"{job.rel}:{name}" + (f"#{seen[name]}" if seen[name] > 1 else "")
        by_key[key] = own
        if p["closed_by"] not in KEPT:
            continue
        start, stmt_end = int(p["start"]), int(p["stmt_end"])
        lemmas.append(Lemma(library=job.library, rel=job.rel, name=name, key=key, line=int(p["line"]),
                            start=start, stmt_end=stmt_end, end=int(p["end"]), closed_by=str(p["closed_by"]),
                            statement=source[start:stmt_end]))
    return tuple(lemmas), by_key


def scan_file(job: FileJob, *, coqidetop: str = "coqidetop.opt", sandbox: Sandbox | None = None,
              memory_limit_mb: int = 4096, timeout: float = 900.0, version: str = "",
              cache: Path | None = None) -> FileScan:
    """The lemmas of ``job``'s file (from the cache when its walk is there)."""
    text = Path(job.path).read_bytes()
    sha = hashlib.sha256(text).hexdigest()
    cached = None
    if cache is not None:
        cached = cache / f"{_cache_key(job, text, version)}.json"
        if cached.exists():
            try:
                data = json.loads(cached.read_text(encoding="utf-8"))
                return _from_cache(job, sha, data)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("%s: unreadable scan cache %s (%s); walking the file again", job.key, cached, exc)
    res = replay_file(job, coqidetop=coqidetop, sandbox=sandbox, memory_limit_mb=memory_limit_mb,
                      file_timeout=timeout)
    source = text.decode("utf-8")
    lemmas, steps = _lemmas_of(job, source, res.proofs_at, res.steps)
    scan = FileScan(job, sha, lemmas, steps, res.failure, res.message, res.elapsed)
    if cached is not None and res.failure in (None, "coq_error"):  # a timeout or crash may not recur
        from ..results.rundir import atomic_write

        cached.parent.mkdir(parents=True, exist_ok=True)
        payload = {"lemmas": [asdict(lem) for lem in lemmas], "steps": steps, "failure": res.failure,
                   "message": res.message, "elapsed": res.elapsed}
        atomic_write(cached, json.dumps(payload, ensure_ascii=False) + "\n")
    return scan


def _from_cache(job: FileJob, sha: str, data: dict[str, Any]) -> FileScan:
    lemmas = tuple(Lemma(**d) for d in data["lemmas"])
    return FileScan(job, sha, lemmas, {k: list(v) for k, v in data["steps"].items()}, data.get("failure"),
                    str(data.get("message", "")), float(data.get("elapsed", 0.0)))


def scan_files(jobs: Sequence[FileJob], *, workers: int = 1,
               on_file: Callable[[FileScan], None] | None = None, **kw: Any) -> list[FileScan]:
    """``scan_file`` for every job (``workers`` coqidetops at a time), in the order of ``jobs``."""
    if workers <= 1:
        out = []
        for job in jobs:
            scan = scan_file(job, **kw)
            if on_file is not None:
                on_file(scan)
            out.append(scan)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(scan_file, job, **kw) for job in jobs]
        out = []
        for fut in futures:
            scan = fut.result()
            if on_file is not None:
                on_file(scan)
            out.append(scan)
        return out


def select(scans: Sequence[FileScan], *, theorems: Sequence[str] = (), sample: int | None = None,
           seed: int = 0, limit: int | None = None) -> list[Lemma]:
    """The lemmas a run attempts, in file order (see the module docstring). ``theorems``: lemma ids
    (``rel:name``) or bare names."""
    every = [lem for scan in scans for lem in scan.lemmas]
    if theorems:
        wanted = set(theorems)
        every = [lem for lem in every if lem.key in wanted or lem.name in wanted]
    if sample is not None and sample < len(every):
        chosen = set(random.Random(seed).sample(range(len(every)), sample))
        every = [lem for i, lem in enumerate(every) if i in chosen]
    if limit is not None:
        every = every[:limit]
    return every
