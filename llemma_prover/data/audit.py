"""The vacuity audit's verdicts: from the probe searches' records to manifest flags and a report.

Pure functions; ``cli/audit_cmd.py`` runs the searches (``backends/*/audit.py`` says what a probe is).
A ``vacuous``/``inconsistent`` flag needs a record that is ``proved`` (the independent check passed)
and whose proof starts with the probe's root tactic; ``ill-typed`` needs the original statement to
fail to load in the prover.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..core.records import TheoremRecord
from ..core.types import Status, Theorem
from .manifest import Flag, Manifest


@dataclass(frozen=True)
class Verdict:
    name: str
    #: probe -> the checked proof that raised it (only probes that fired)
    fired: Mapping[str, tuple[str, ...]]
    #: probe -> "proved" / "not proved (<reason>)" / "error: ..." for the report
    outcomes: Mapping[str, str]
    #: None when it type-checks, else the prover's message
    ill_typed: str | None


def probe_name(theorem: str, probe: str) -> str:
    return f"{theorem}__{probe}"


def verdicts(theorems: Sequence[Theorem], probes: Sequence[str], root_tactic: str,
             records: Mapping[str, TheoremRecord], ill_typed: Mapping[str, str]) -> list[Verdict]:
    out = []
    for t in theorems:
        fired: dict[str, tuple[str, ...]] = {}
        outcomes: dict[str, str] = {}
        for p in probes:
            rec = records.get(probe_name(t.name, p))
            if rec is None:
                outcomes[p] = "not run"
            elif rec.status is Status.PROVED and rec.proof and rec.proof[0].strip() == root_tactic.strip():
                fired[p] = tuple(rec.proof)
                outcomes[p] = "proved"
            elif rec.status is Status.ERROR:
                outcomes[p] = f"error ({rec.reason.value})"
            else:
                outcomes[p] = f"not proved ({rec.reason.value})"
        out.append(Verdict(t.name, fired, outcomes, ill_typed.get(t.name)))
    return out


def audit_flags(found: Sequence[Verdict], source: str) -> dict[str, list[Flag]]:
    flags: dict[str, list[Flag]] = {}
    for v in found:
        for probe, proof in v.fired.items():
            flags.setdefault(v.name, []).append(Flag(probe, source, proof))
        if v.ill_typed is not None:
            flags.setdefault(v.name, []).append(Flag("ill-typed", source, None, v.ill_typed[:500]))
    return flags


def audit_markdown(manifest: Manifest, found: Sequence[Verdict], proofs_elsewhere: Mapping[str, list[str]]
                   ) -> str:
    """The audit's report: every flagged statement, its flags, the justifying proof, and whether a
    proof of it exists in the runs given (``proofs_elsewhere``: name -> run folders)."""
    by_name = {v.name: v for v in found}
    flagged = [e for e in manifest.entries if e.flags]
    lines = [f"# Statement audit: {manifest.system} {manifest.split}", "",
             f"{len(found)} statements audited; {len(flagged)} flagged "
             f"({', '.join(f'{k} {n}' for k, n in _counts(flagged).items()) or 'none'}).", ""]
    if flagged:
        lines += ["| theorem | flags | justifying proof | proved in |", "|---|---|---|---|"]
        for e in flagged:
            kinds = ", ".join(f.kind for f in e.flags)
            proof = "; ".join(" ".join(_sentence(t) for t in f.proof) for f in e.flags if f.proof) or "-"
            where = ", ".join(proofs_elsewhere.get(e.name, [])) or "no run given has a proof"
            lines.append(f"| `{e.name}` | {kinds} | `{proof}` | {where} |")
    quiet = [v for v in found if v.name in by_name and not v.fired and v.ill_typed is None]
    lines += ["", f"No probe fired on {len(quiet)} of the {len(found)} statements audited.", ""]
    return "\n".join(lines)


def _sentence(tactic: str) -> str:
    t = tactic.strip()
    return t if t.endswith(".") else t + "."


def _counts(entries: Sequence[object]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in entries:
        for f in getattr(e, "flags", ()):
            counts[f.kind] = counts.get(f.kind, 0) + 1
    return counts
