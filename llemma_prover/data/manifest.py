"""Statement manifests: what each benchmark statement is (hash, source) and what is known against it.

One manifest per system and split (``<system>-<split>.json``; the shipped miniF2F ones live in
``data/benchmarks/minif2f/manifest/``). Each entry: the theorem ``name``, ``sha256`` of
``header + "\\n" + statement`` (so a flag applies only to the exact statement it was found on),
``source`` (``owner/repo/path@commit``) and ``flags``: ``vacuous`` / ``inconsistent`` (with the
checked proof that justified it, from ``llemma-prover audit``), ``ill-typed`` (the statement does
not type-check here) and ``disputed`` (with its outside source). A run records the manifest's
sha256 (``manifest_sha256``: of the file's bytes) in ``config.json``; summaries count solved theorems
over all and over the unflagged ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from ..core.types import Theorem

MANIFEST_FORMAT = 1
FLAG_KINDS = ("vacuous", "inconsistent", "ill-typed", "disputed")

#: the unmerged upstream fix of 13 Coq statements (the folder's README lists them; the pull request's
#: own text is not stored here)
DISPUTED_SOURCE = ("LLM4Rocq/miniF2F-rocq pull request #6, branch fix/audit-theorem-statements "
                   "(2026-03-27, unmerged): rewrites the statement as wrong or vacuous")
DISPUTED: dict[tuple[str, str], tuple[str, ...]] = {
    ("coq", "test"): ("algebra_ineq_nto1onlt2m1on", "amc12a_2021_p12", "amc12b_2002_p4", "imo_1962_p2",
                      "imo_2001_p6", "mathd_numbertheory_293", "mathd_numbertheory_296",
                      "numbertheory_2pownm1prime_nprime"),
    ("coq", "valid"): ("amc12a_2002_p21", "amc12a_2016_p3", "imo_1962_p4", "imo_1987_p6",
                       "mathd_numbertheory_22"),
}


@dataclass(frozen=True)
class Flag:
    kind: str
    #: where the flag comes from: the audit command and date, or an outside source
    source: str
    #: the checked proof that justified a vacuous/inconsistent flag (tactics, in order)
    proof: tuple[str, ...] | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "source": self.source}
        if self.proof is not None:
            out["proof"] = list(self.proof)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Entry:
    name: str
    sha256: str
    source: str
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class Manifest:
    system: str
    split: str
    entries: tuple[Entry, ...]
    #: how the audit flags were obtained (command, budget, date), or None (no audit yet)
    audit: Mapping[str, Any] | None = None
    by_name: dict[str, Entry] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({e.name: e for e in self.entries})

    def flagged(self, theorems: Iterable[Theorem]) -> dict[str, tuple[str, ...]]:
        """name -> flag kinds, for each of ``theorems`` flagged here *on the same statement*."""
        out = {}
        for t in theorems:
            e = self.by_name.get(t.name)
            if e is not None and e.flags and e.sha256 == statement_sha256(t):
                out[t.name] = tuple(f.kind for f in e.flags)
        return out

    def to_json(self) -> str:
        doc = {
            "format": MANIFEST_FORMAT,
            "system": self.system,
            "split": self.split,
            "audit": dict(self.audit) if self.audit is not None else None,
            "theorems": [{"name": e.name, "sha256": e.sha256, "source": e.source,
                          "flags": [f.to_dict() for f in e.flags]} for e in self.entries],
        }
        return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def merge_manifest(old: Manifest | None, new: Manifest, theorems: Sequence[Theorem]) -> Manifest:
    """``old`` with the entries ``new`` audited replaced (a partial audit updates only its statements);
    the result lists ``theorems`` in data order. An old entry whose statement changed loses its flags.
    ``audit`` keeps one record per audit run (``runs``), newest last."""
    fresh = {e.name: e for e in new.entries}
    kept = old.by_name if old is not None else {}
    flags: dict[str, list[Flag]] = {}
    for t in theorems:
        e = fresh.get(t.name) or kept.get(t.name)
        if e is not None and e.sha256 == statement_sha256(t):
            flags[t.name] = [f for f in e.flags if f.kind != "disputed"]
    runs = list((old.audit or {}).get("runs", [])) if old is not None else []
    if new.audit is not None:
        runs.append(dict(new.audit))
    return build_manifest(new.system, new.split, theorems, flags, {"runs": runs} if runs else None)


def statement_sha256(theorem: Theorem) -> str:
    return hashlib.sha256((theorem.header + "\n" + theorem.statement).encode("utf-8")).hexdigest()


def build_manifest(system: str, split: str, theorems: Sequence[Theorem],
                   flags: Mapping[str, Sequence[Flag]], audit: Mapping[str, Any] | None) -> Manifest:
    """A manifest of ``theorems`` in data order with ``flags`` (by name) and the disputed list."""
    disputed = set(DISPUTED.get((system, split), ()))
    entries = []
    for t in theorems:
        fl = list(flags.get(t.name, ()))
        if t.name in disputed and not any(f.kind == "disputed" for f in fl):
            fl.append(Flag("disputed", DISPUTED_SOURCE))
        fl.sort(key=lambda f: FLAG_KINDS.index(f.kind))
        entries.append(Entry(t.name, statement_sha256(t), t.source, tuple(fl)))
    return Manifest(system, split, tuple(entries), audit)


def manifest_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_manifest(path: Path) -> Manifest:
    """Read a manifest file; ``DataError`` when it is not one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != MANIFEST_FORMAT:
            raise DataError(f"manifest format {doc.get('format')!r}, expected {MANIFEST_FORMAT}", str(path))
        entries = tuple(
            Entry(e["name"], e["sha256"], e.get("source", ""), tuple(_flag(f) for f in e.get("flags", ())))
            for e in doc["theorems"]
        )
        return Manifest(doc["system"], doc["split"], entries, doc.get("audit"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"not a readable manifest ({exc})", str(path)) from None


def _flag(f: Mapping[str, Any]) -> Flag:
    proof = f.get("proof")
    return Flag(f["kind"], f["source"], tuple(proof) if proof is not None else None, f.get("note", ""))


def shipped_manifest_path(system: str, split: str) -> Path:
    from .minif2f import shipped_data_dir

    return shipped_data_dir() / "manifest" / f"{system}-{split}.json"


def flagged_summary(solved: Iterable[str], total: Sequence[str], flagged: Mapping[str, Sequence[str]]) -> str:
    """``"92/244; 92/236 excluding 8 flagged"`` (solved over all, then over the unflagged ones)."""
    names = list(total)
    done = set(solved) & set(names)
    bad = {n for n in names if n in flagged}
    clean = [n for n in names if n not in bad]
    return (f"{len(done)}/{len(names)}; {len(done - bad)}/{len(clean)} excluding {len(bad)} flagged")


def run_manifest(manifest_file: str | None, system: str, split: str,
                 theorems: Sequence[Theorem]) -> dict[str, Any] | None:
    """What a run records under ``config.json``'s ``manifest``: the manifest file, its sha256 and the
    flags (name -> kinds) of ``theorems`` flagged on the same statement. ``manifest_file`` (``--manifest``)
    beats the shipped manifest of ``system``/``split``; None when neither exists."""
    path = Path(manifest_file) if manifest_file else shipped_manifest_path(system, split)
    if not path.is_file():
        if manifest_file:
            raise DataError("--manifest file not found", str(path))
        return None
    manifest = load_manifest(path)
    return {"file": str(path.resolve()), "sha256": manifest_sha256(path),
            "flagged": {n: list(k) for n, k in manifest.flagged(theorems).items()}}


def shipped_flags_now(config: Mapping[str, Any]) -> tuple[str, dict[str, list[str]]] | None:
    """For a recorded miniF2F run (its ``config.json``): the shipped manifest's sha256 today and its flags
    on the run's theorems -- ``None`` unless the run read the shipped statements (same ``data_hash``) and
    the shipped manifest has changed since the run recorded it (a later audit)."""
    from ..core.config import DATA_SYSTEM, SPLITS
    from .minif2f import load_split, shipped_data_dir

    recorded = config.get("manifest")
    split = SPLITS.get(str(config.get("split", "")))
    system = DATA_SYSTEM.get(str(config.get("backend", "")))
    if not isinstance(recorded, Mapping) or split is None or system is None:
        return None
    path = shipped_manifest_path(system, split)
    if not path.is_file() or manifest_sha256(path) == recorded.get("sha256"):
        return None
    try:
        data = load_split(shipped_data_dir(), system, split)
    except DataError:
        return None
    if data.sha256 != config.get("data_hash"):
        return None
    return manifest_sha256(path), {n: list(k) for n, k in load_manifest(path).flagged(data.theorems).items()}
