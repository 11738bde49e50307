"""PNG plots of runs with matplotlib (the ``report`` extra). Imported lazily; Agg backend, no display.

Every function takes the runs and an output path, draws on its own ``Figure`` (never pyplot's global
state) and returns the path written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..traces.run import RunView
from .stats import tactic_counts, time_totals


def _figure(width: float = 7.0, height: float = 4.5) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise UserError(
            "plots need matplotlib: pip install 'llemma-prover[report]' (or pass --no-plots)"
        ) from exc
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _cumulative(values: list[float]) -> tuple[list[float], list[int]]:
    xs = sorted(values)
    return xs, list(range(1, len(xs) + 1))


def solved_vs_expansions(runs: Sequence[RunView], path: Path) -> Path:
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for run in runs:
        exp = [float(r.expansions) for r in run.records if r.proved]
        xs, ys = _cumulative(exp)
        total = len(run.records)
        # carry the curve on to the run's budget (or its largest expansion count)
        budget = (run.config.get("search") or {}).get("max_expansions") or 0
        end = max([float(budget), *(float(r.expansions) for r in run.records)])
        ax.step([0.0, *xs, end], [0, *ys, len(xs)], where="post", label=f"{run.name} ({len(exp)}/{total})")
    ax.set_xlabel("expansions used (proof found within)")
    ax.set_ylabel("theorems solved")
    ax.set_title("Theorems solved vs expansions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def solved_vs_time(runs: Sequence[RunView], path: Path) -> Path:
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    positive = False
    for run in runs:
        ts = [max(r.time.total, 1e-3) for r in run.records if r.proved]
        xs, ys = _cumulative(ts)
        positive = positive or bool(xs)
        ax.step([xs[0] if xs else 1e-3, *xs], [0, *ys], where="post", label=f"{run.name} ({len(ts)})")
    if positive:
        ax.set_xscale("log")
    ax.set_xlabel("wall-clock seconds per theorem (proof found within)")
    ax.set_ylabel("theorems solved")
    ax.set_title("Theorems solved vs wall-clock")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def time_split(runs: Sequence[RunView], path: Path) -> Path:
    fig = _figure(7.0, 1.2 + 0.6 * len(runs))
    ax = fig.add_subplot(1, 1, 1)
    parts = ("model", "prover", "check", "other")
    colors = {"model": "#4c72b0", "prover": "#dd8452", "check": "#55a868", "other": "#bbbbbb"}
    names = [run.name for run in runs]
    totals = [time_totals(run) for run in runs]
    left = [0.0] * len(runs)
    for part in parts:
        vals = [t[part] / 60.0 for t in totals]
        ax.barh(names, vals, left=left, label=part, color=colors[part])
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlabel("minutes, summed over theorems")
    ax.set_title("Where the time went: model vs prover")
    ax.legend(fontsize=8, ncol=4, loc="lower right")
    ax.invert_yaxis()
    return _save(fig, path)


def tactic_frequency(runs: Sequence[RunView], path: Path, top: int = 15) -> Path:
    n = max(1, len(runs))
    fig = _figure(7.0, 0.5 + n * (0.28 * top + 0.6))
    for i, run in enumerate(runs, 1):
        ax = fig.add_subplot(n, 1, i)
        counts = tactic_counts(run).most_common(top)
        labels = [t if len(t) <= 40 else t[:39] + "…" for t, _ in counts]
        ax.barh(labels, [c for _, c in counts], color="#4c72b0")
        ax.invert_yaxis()
        ax.set_title(f"{run.name}: tactics in successful proofs", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        if not counts:
            ax.text(0.5, 0.5, "no proofs", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


PLOTS = {
    "solved_vs_expansions.png": solved_vs_expansions,
    "solved_vs_time.png": solved_vs_time,
    "time_split.png": time_split,
    "tactic_frequency.png": tactic_frequency,
}


def write_plots(runs: Sequence[RunView], out_dir: Path) -> list[Path]:
    return [fn(runs, out_dir / name) for name, fn in PLOTS.items()]
