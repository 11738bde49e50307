"""``report RUN [RUN...]``: markdown + CSV tables, PNG plots, and a comparison of the runs.

Files written to the output directory:

* ``report.md``: runs, rates per split and family (one column per run), pass@k, comparisons, plots;
* ``rates.csv`` (run, split, family, solved, total, rate), ``pass_at_k.csv``, ``compare.csv``
  (A/B counts per pair), ``theorems.csv`` (status of every theorem in every run), ``tactics.csv``;
* ``*.png`` plots (see ``plots.py``) unless disabled.

The first run is the baseline: every other run is compared against it (solved by A only, by B only,
by both).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.types import FAMILIES
from ..traces.run import RunView
from .stats import (
    Comparison,
    PassAtK,
    RateRow,
    compare,
    pass_at_k_table,
    rate_rows,
    status_matrix,
    tactic_counts,
    time_totals,
)


@dataclass(frozen=True)
class Report:
    out_dir: Path
    markdown: str
    files: tuple[Path, ...]
    rates: tuple[RateRow, ...]
    pass_at_k: tuple[PassAtK, ...]
    comparisons: tuple[Comparison, ...]


def pct(solved: int, total: int) -> str:
    return f"{100.0 * solved / total:.2f}%" if total else "-"


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _md_table(
    header: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()
) -> list[str]:
    def cell(x: object) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|",
    ]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return out


def _names(names: Sequence[str], limit: int = 40) -> str:
    if not names:
        return "-"
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" … (+{len(names) - limit})" if len(names) > limit else "")


def build_report(
    runs: Sequence[RunView], out_dir: str | Path, *, plots: bool = True, top_tactics: int = 15
) -> Report:
    """Compute everything and write the files; returns what was written."""
    if not runs:
        raise ValueError("report needs at least one run")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    def write(name: str, text: str) -> None:
        p = out / name
        p.write_text(text, encoding="utf-8")
        files.append(p)

    rates = [row for run in runs for row in rate_rows(run)]
    passk = pass_at_k_table(runs)
    comps = [compare(runs[0], b) for b in runs[1:]]

    write(
        "rates.csv",
        _csv(
            ["run", "split", "family", "solved", "total", "rate"],
            [[r.run, r.split, r.family, r.solved, r.total, f"{r.rate:.6f}"] for r in rates],
        ),
    )
    write(
        "pass_at_k.csv",
        _csv(
            ["split", "runs", "theorems", "k", "pass_at_k"],
            [[p.split, ";".join(p.runs), p.theorems, p.k, f"{p.value:.6f}"] for p in passk],
        ),
    )
    write(
        "compare.csv",
        _csv(
            ["a", "b", "common", "a_only", "b_only", "both", "neither", "a_only_theorems", "b_only_theorems"],
            [
                [
                    c.a,
                    c.b,
                    c.common,
                    len(c.a_only),
                    len(c.b_only),
                    len(c.both),
                    c.neither,
                    ";".join(c.a_only),
                    ";".join(c.b_only),
                ]
                for c in comps
            ],
        ),
    )
    header, matrix = status_matrix(runs)
    write("theorems.csv", _csv(header, matrix))
    tac_rows = []
    for run in runs:
        for tac, n in tactic_counts(run).most_common():
            tac_rows.append([run.name, tac, n])
    write("tactics.csv", _csv(["run", "tactic", "count"], tac_rows))

    plot_files: list[Path] = []
    if plots:
        from .plots import write_plots

        plot_files = write_plots(runs, out)
        files += plot_files

    md: list[str] = ["# Report", ""]
    # runs
    run_rows = []
    for run in runs:
        solved = sum(r.proved for r in run.records)
        gen = run.config.get("generator")
        gen_name = gen.get("name", "") if isinstance(gen, dict) else (gen or "")
        src = run.config.get("imported_from", "")
        run_rows.append(
            [
                run.name,
                run.split,
                run.backend,
                gen_name or _most(run, "generator"),
                f"{solved}/{len(run.records)}",
                pct(solved, len(run.records)),
                f"imported ({src})" if src else str(run.path),
            ]
        )
    md += ["## Runs", ""]
    md += _md_table(
        ["run", "split", "backend", "generator", "solved/total", "rate", "source"], run_rows, (4, 5)
    )
    md += _flagged_lines(runs)
    excluded = [(run.name, e) for run in runs for e in run.config.get("excluded", []) or []]
    if excluded:
        md += [
            "",
            "Excluded at import (not benchmark problems): "
            + ", ".join(f"`{e.get('theorem')}` ({name}: {e.get('reason')})" for name, e in excluded),
        ]
    # rates per split x family, one column per run
    md += ["", "## Solved per split and family", ""]
    splits = sorted({r.split for r in rates})
    for split in splits:
        fams = [f for f in (*FAMILIES, "other") if any(r.split == split and r.family == f for r in rates)]
        fams.append("all")
        cell = {(r.run, r.family): r for r in rates if r.split == split}
        rows = []
        for f in fams:
            row: list[object] = [f"**{f}**" if f == "all" else f]
            for run in runs:
                r = cell.get((run.name, f))
                row.append(f"{r.solved}/{r.total} ({pct(r.solved, r.total)})" if r else "")
            rows.append(row)
        md += [f"### {split}", ""]
        md += _md_table(["family", *[run.name for run in runs]], rows, tuple(range(1, len(runs) + 1)))
        md.append("")
    # pass@k
    if passk:
        md += ["## pass@k over runs of the same split", ""]
        md += _md_table(
            ["split", "runs", "theorems", "k", "pass@k"],
            [[p.split, ", ".join(p.runs), p.theorems, p.k, f"{100 * p.value:.2f}%"] for p in passk],
            (2, 3, 4),
        )
        md.append("")
    # comparisons
    if comps:
        md += ["## Comparison (A = first run)", ""]
        md += _md_table(
            ["A", "B", "common theorems", "A only", "B only", "both", "neither"],
            [[c.a, c.b, c.common, len(c.a_only), len(c.b_only), len(c.both), c.neither] for c in comps],
            (2, 3, 4, 5, 6),
        )
        md.append("")
        for c in comps:
            md += [f"### {c.a} vs {c.b}", ""]
            md += [
                f"- solved by **{c.a}** only: {_names(c.a_only)}",
                f"- solved by **{c.b}** only: {_names(c.b_only)}",
                f"- solved by both: {len(c.both)}",
            ]
            if c.unmatched:
                md.append(f"- {c.unmatched} theorems were attempted by only one of the two runs")
        md.append("")
    # termination reasons
    reasons = sorted({r.reason.value for run in runs for r in run.records})
    md += ["## Termination reasons", ""]
    md += _md_table(
        ["reason", *[run.name for run in runs]],
        [
            [reason, *[sum(r.reason.value == reason for r in run.records) for run in runs]]
            for reason in reasons
        ],
        tuple(range(1, len(runs) + 1)),
    )
    md.append("")
    # time split
    md += ["## Time split", ""]
    rows = []
    for run in runs:
        t = time_totals(run)
        rows.append([run.name, *(f"{t[k] / 60:.1f}" for k in ("total", "model", "prover", "check", "other"))])
    md += _md_table(
        ["run", "total min", "model min", "prover min", "check min", "other min"], rows, (1, 2, 3, 4, 5)
    )
    md.append("")
    # tactics
    md += ["## Tactics in successful proofs", ""]
    for run in runs:
        top = tactic_counts(run).most_common(top_tactics)
        md.append(f"- **{run.name}**: " + (", ".join(f"`{t}` ×{n}" for t, n in top) if top else "no proofs"))
    md.append("")
    if plot_files:
        md += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plot_files] + [""]
    text = "\n".join(md)
    write("report.md", text)
    return Report(out, text, tuple(files), tuple(rates), tuple(passk), tuple(comps))


def _flagged_lines(runs: Sequence[RunView]) -> list[str]:
    """Solved over all and over the unflagged theorems, for runs whose config.json names a manifest."""
    from ..data.manifest import flagged_summary, shipped_flags_now

    out = []
    for run in runs:
        manifest = run.config.get("manifest")
        if not isinstance(manifest, dict):
            continue
        flagged = manifest.get("flagged") or {}
        solved = [r.theorem for r in run.records if r.proved]
        line = flagged_summary(solved, [r.theorem for r in run.records], flagged)
        digest = str(manifest.get("sha256", ""))[:12]
        out.append(f"- {run.name}: {line} (manifest {digest}: {_flag_list(flagged)})")
        now = shipped_flags_now(run.config)
        if now is not None:  # a later audit changed the shipped manifest: count against it too
            line = flagged_summary(solved, [r.theorem for r in run.records], now[1])
            out.append(f"- {run.name}, against today's shipped manifest: {line} (manifest {now[0][:12]}: "
                       f"{_flag_list(now[1])})")
    return ["", "Solved over all theorems and over those the statement manifest does not flag:", "", *out] \
        if out else []


def _flag_list(flagged: Mapping[str, Sequence[str]]) -> str:
    return ", ".join(f"`{n}` {'/'.join(k)}" for n, k in sorted(flagged.items())) or "none flagged"


def _most(run: RunView, attr: str) -> str:
    from collections import Counter

    c = Counter(str(getattr(r, attr)) for r in run.records)
    return c.most_common(1)[0][0] if c else ""
