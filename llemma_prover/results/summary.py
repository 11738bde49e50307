"""Summary of a run: solved/total = rate, overall and per miniF2F problem family; pass@k.

The one place these are computed: ``prove``/``autoformalize`` summaries and ``report`` tables use it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ..core.records import TheoremRecord
from ..core.types import FAMILIES, Status


@dataclass(frozen=True)
class SummaryRow:
    family: str
    solved: int
    total: int

    @property
    def rate(self) -> float:
        return self.solved / self.total if self.total else 0.0


@dataclass(frozen=True)
class Summary:
    overall: SummaryRow
    families: tuple[SummaryRow, ...]
    #: records per status ("proved", "failed", "error") and per reason
    statuses: dict[str, int]
    reasons: dict[str, int]


def summarize(records: Iterable[TheoremRecord]) -> Summary:
    recs = list(records)
    solved: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for r in recs:
        total[r.family] += 1
        if r.status is Status.PROVED:
            solved[r.family] += 1
    fams = [f for f in FAMILIES] + sorted(f for f in total if f not in FAMILIES)
    rows = tuple(SummaryRow(f, solved[f], total[f]) for f in fams if total[f] or f in FAMILIES)
    overall = SummaryRow("all", sum(solved.values()), len(recs))
    return Summary(
        overall=overall,
        families=rows,
        statuses=dict(Counter(r.status.value for r in recs)),
        reasons=dict(Counter(r.reason.value for r in recs)),
    )


def summary_lines(summary: Summary) -> list[tuple[str, str, str]]:
    """Rows of (family, solved/total, rate) for printing, overall last."""
    out = []
    for row in (*summary.families, summary.overall):
        out.append((row.family, f"{row.solved}/{row.total}", f"{100 * row.rate:.1f}%" if row.total else "-"))
    return out


def summary_markdown(summary: Summary, title: str = "Summary") -> str:
    lines = [f"# {title}", "", "| family | solved/total | rate |", "|---|---:|---:|"]
    for fam, frac, rate in summary_lines(summary):
        name = f"**{fam}**" if fam == "all" else fam
        lines.append(f"| {name} | {frac} | {rate} |")
    lines += ["", "Status: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items())),
              "Reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.reasons.items())), ""]
    return "\n".join(lines)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` successes in ``n`` attempts (Chen et al., 2021):
    1 - C(n-c, k) / C(n, k). ``k`` must be between 1 and ``n``."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)
