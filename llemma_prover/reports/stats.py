"""Numbers behind ``report``: rates per split and family, pass@k across runs, run comparison.

Theorems are matched across runs by lower-cased name: the miniF2F names are unique that way, and
the Lean 4 sources spell one name differently from the Coq/Isabelle ones
(``numbertheory_notEquiv2i2jasqbsqdiv8``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.records import TheoremRecord
from ..results.summary import pass_at_k, summarize
from ..traces.run import RunView

__all__ = ["Comparison", "PassAtK", "RateRow", "compare", "key", "pass_at_k", "pass_at_k_table", "rate_rows"]


def key(name: str) -> str:
    return name.lower()


@dataclass(frozen=True)
class RateRow:
    run: str
    split: str
    family: str
    solved: int
    total: int

    @property
    def rate(self) -> float:
        return self.solved / self.total if self.total else 0.0


def rate_rows(run: RunView) -> list[RateRow]:
    """Solved/total per split and family of one run (``results.summary.summarize``, families with
    records only); the family ``all`` row closes each split."""
    by_split: dict[str, list[TheoremRecord]] = defaultdict(list)
    for r in run.records:
        by_split[r.split or run.split].append(r)
    rows = []
    for split in sorted(by_split):
        summary = summarize(by_split[split])
        rows += [RateRow(run.name, split, f.family, f.solved, f.total) for f in summary.families if f.total]
        rows.append(RateRow(run.name, split, "all", summary.overall.solved, summary.overall.total))
    return rows


@dataclass(frozen=True)
class PassAtK:
    split: str
    runs: tuple[str, ...]
    theorems: int
    k: int
    value: float


def pass_at_k_table(runs: Sequence[RunView]) -> list[PassAtK]:
    """pass@k for k = 1..n over each group of n >= 2 runs of the same split (and backend), on the
    theorems that every run of the group attempted."""
    groups: dict[tuple[str, str], list[RunView]] = defaultdict(list)
    for run in runs:
        groups[(run.split, run.backend)].append(run)
    out = []
    for (split, _backend), grp in sorted(groups.items()):
        if len(grp) < 2:
            continue
        maps = [{key(r.theorem): r for r in run.records} for run in grp]
        common = set.intersection(*(set(m) for m in maps))
        if not common:
            continue
        n = len(grp)
        counts = [sum(m[t].proved for m in maps) for t in sorted(common)]
        for k in range(1, n + 1):
            val = sum(pass_at_k(n, c, k) for c in counts) / len(counts)
            out.append(PassAtK(split, tuple(r.name for r in grp), len(common), k, val))
    return out


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    common: int
    a_only: tuple[str, ...]
    b_only: tuple[str, ...]
    both: tuple[str, ...]
    neither: int
    #: theorems attempted by only one of the runs
    unmatched: int


def compare(a: RunView, b: RunView) -> Comparison:
    ma = {key(r.theorem): r for r in a.records}
    mb = {key(r.theorem): r for r in b.records}
    common = sorted(set(ma) & set(mb))
    a_only = tuple(ma[t].theorem for t in common if ma[t].proved and not mb[t].proved)
    b_only = tuple(mb[t].theorem for t in common if mb[t].proved and not ma[t].proved)
    both = tuple(ma[t].theorem for t in common if ma[t].proved and mb[t].proved)
    neither = sum(1 for t in common if not ma[t].proved and not mb[t].proved)
    return Comparison(a.name, b.name, len(common), a_only, b_only, both, neither, len(set(ma) ^ set(mb)))


def status_matrix(runs: Sequence[RunView]) -> tuple[list[str], list[list[str]]]:
    """Header and rows ``theorem, family, <status per run>`` over the union of theorems."""
    maps = [{key(r.theorem): r for r in run.records} for run in runs]
    names: dict[str, tuple[str, str]] = {}
    for m in maps:
        for k, r in m.items():
            names.setdefault(k, (r.theorem, r.family))
    header = ["theorem", "family", *[run.name for run in runs]]
    rows = []
    for k in sorted(names):
        name, fam = names[k]
        rows.append([name, fam, *[(m[k].status.value if k in m else "") for m in maps]])
    return header, rows


def tactic_counts(run: RunView) -> Counter[str]:
    """How often each tactic occurs in the run's proofs (proved theorems only)."""
    c: Counter[str] = Counter()
    for r in run.records:
        if r.proved and r.proof:
            c.update(" ".join(t.split()) for t in r.proof)
    return c


def time_totals(run: RunView) -> dict[str, float]:
    """Seconds summed over the run's theorems: model, prover, check and the rest of the wall-clock."""
    model = sum(r.time.model for r in run.records)
    prover = sum(r.time.prover for r in run.records)
    check = sum(r.time.check for r in run.records)
    total = sum(r.time.total for r in run.records)
    return {
        "model": model,
        "prover": prover,
        "check": check,
        "other": max(0.0, total - model - prover - check),
        "total": total,
    }
