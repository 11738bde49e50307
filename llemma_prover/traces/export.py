"""``trace path``: a search path as a file the backend's checker accepts.

For a proved theorem this is the checked proof file ``prove`` wrote (``proofs/<theorem>.<ext>``), or
the backend's own ``proof_text`` when the run has none. For any other node (``--node N``, or the
deepest node of a failed search) the path is written with the proof left open (Coq ``Admitted.``,
Lean ``sorry``, Isabelle ``sorry``) and the remaining goals in a comment, so it still compiles and
can be continued by hand.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.config import DATA_SYSTEM, SPLITS
from ..core.errors import DataError, LlemmaProverError, RunDirError
from ..core.records import TheoremRecord
from ..core.types import Theorem
from .run import RunView

if TYPE_CHECKING:
    from ..backends.parts import ProofDialect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportedPath:
    text: str
    ext: str
    #: True when the file closes the proof; False when it ends with Admitted/sorry
    complete: bool
    #: where the text came from: "run" (proofs/ of the run), "backend", "builder"
    source: str
    tactics: tuple[str, ...]


def _backend(backend: str) -> ProofDialect | None:
    """The proof files of the backend registered as ``backend``; None for a backend this installation
    does not know."""
    from ..backends.base import proof_dialect
    from ..core.errors import ConfigError

    try:
        return proof_dialect(backend)
    except (ConfigError, ImportError):
        return None


def find_theorem(
    record: TheoremRecord, backend: str, split: str, data_dir: str | os.PathLike[str] | None,
    dataset: str | None = None,
) -> Theorem | None:
    """The theorem of ``record``: an imported record's own statement (what that run proved) first,
    else the statement from the run's ``--dataset`` file (``dataset``), else from the data dir."""
    system = DATA_SYSTEM.get(backend, backend)
    stmt = record.extra.get("statement")
    if isinstance(stmt, str) and stmt:
        header = record.extra.get("header")
        text = None if header is None else str(header)
        kind = _backend(backend)
        if kind is None:  # a backend this installation does not know: the statement as it is
            return Theorem(name=record.theorem, split=split, system=system, header=text or "", statement=stmt)
        return kind.imported_theorem(record.theorem, split, stmt, text)
    if dataset:
        from ..data.minif2f import load_dataset_file

        try:
            found = {t.name: t for t in load_dataset_file(dataset, system).theorems}
        except DataError as exc:
            log.warning("cannot read the run's dataset file: %s", exc)
        else:
            return found.get(record.theorem)
    if data_dir is not None:
        from ..data.minif2f import load_split

        try:
            ds = load_split(data_dir, system, SPLITS.get(split, split.removeprefix("minif2f-")))
        except DataError as exc:
            log.warning("cannot read the benchmark statement: %s", exc)
        else:
            by_lower = {t.name.lower(): t for t in ds.theorems}
            return by_lower.get(record.theorem.lower())
    return None


def build_text(
    theorem: Theorem, backend: str, tactics: Sequence[str], complete: bool, remaining: str = ""
) -> str:
    """A proof file following the data README's conventions per system (``ProofDialect.export_text``)."""
    kind = _backend(backend)
    try:
        if kind is None:
            raise NotImplementedError
        return kind.export_text(theorem, tactics, complete, remaining)
    except NotImplementedError:
        raise RunDirError(f"no proof-file format for backend {backend!r}") from None


def _proof_ext(backend: str) -> str:
    """The backend's file extension; "txt" for a backend this installation does not know."""
    kind = _backend(backend)
    return "txt" if kind is None else kind.proof_ext


def export_path(
    run: RunView, theorem: str, *, node: int | None = None, data_dir: str | os.PathLike[str] | None = None
) -> ExportedPath:
    """The file for ``theorem``'s proof (default) or for the path to trace node ``node``."""
    rec = run.record(theorem)
    backend = rec.backend or run.backend
    ext = _proof_ext(backend)
    if node is None and rec.proved and rec.proof is not None:
        pf = run.proof_file(rec)
        if pf is not None:
            return ExportedPath(pf.read_text(encoding="utf-8"), pf.suffix.lstrip("."), True, "run", rec.proof)
        thm = find_theorem(rec, backend, rec.split or run.split, data_dir, run.config.get("dataset"))
        if thm is None:
            raise RunDirError(
                f"{rec.theorem}: the run has no proof file and the statement was not found; pass --data-dir"
            )
        try:
            kind = _backend(backend)
            if kind is None:
                raise NotImplementedError("not installed")
            return ExportedPath(kind.proof_text(thm, rec.proof), ext, True, "backend", rec.proof)
        except (LlemmaProverError, NotImplementedError) as exc:
            log.info("backend %s cannot format the proof (%s); using the generic builder", backend, exc)
        return ExportedPath(build_text(thm, backend, rec.proof, True), ext, True, "builder", rec.proof)

    trace = run.trace(rec)
    if trace is None:
        raise RunDirError(f"{rec.theorem}: the run has no trace for it, so there is no path to export")
    target = node if node is not None else trace.best_open_node()
    if target not in trace.nodes:
        raise RunDirError(f"{rec.theorem}: trace has no node {target} (nodes 0..{max(trace.nodes)})")
    if trace.nodes[target].is_error:
        raise RunDirError(f"{rec.theorem}: node {target} is a failed attempt, not a state; pick its parent")
    edges = trace.path_to(target)
    tactics = tuple(e.tactic for e in edges)
    complete = trace.nodes[target].terminal
    thm = find_theorem(rec, backend, rec.split or run.split, data_dir, run.config.get("dataset"))
    if thm is None:
        raise RunDirError(f"{rec.theorem}: statement not found; pass --data-dir (the benchmark folder)")
    text = build_text(thm, backend, tactics, complete, remaining=trace.nodes[target].goals)
    return ExportedPath(text, ext, complete, "builder", tactics)


def write_export(exported: ExportedPath, out: str | os.PathLike[str]) -> Path:
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(exported.text, encoding="utf-8")
    return p
