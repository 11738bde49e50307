"""report: rate tables, pass@k, comparison, CSV/markdown and PNG plots, on documented-format runs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from test_trace_fixtures import make_run

from llemma_prover.cli.main import main
from llemma_prover.reports.report import build_report
from llemma_prover.reports.stats import (
    compare,
    pass_at_k,
    pass_at_k_table,
    rate_rows,
    tactic_counts,
    time_totals,
)
from llemma_prover.traces.run import load_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    a = make_run(
        tmp_path,
        "A",
        solved=("mathd_algebra_10", "amc12a_2002_p6"),
        failed=("mathd_numbertheory_3", "imo_1959_p1"),
    )
    b = make_run(
        tmp_path,
        "B",
        solved=("mathd_algebra_10", "imo_1959_p1"),
        failed=("mathd_numbertheory_3", "amc12a_2002_p6"),
    )
    c = make_run(tmp_path, "C", solved=("mathd_numbertheory_3",), failed=(), split="minif2f-valid")
    return a, b, c


def test_pass_at_k_estimator() -> None:
    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(4, 2))
    assert pass_at_k(2, 1, 2) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_rates_passk_and_comparison(runs: tuple[Path, Path, Path]) -> None:
    a, b, c = (load_run(p) for p in runs)
    rows = {(r.family): (r.solved, r.total) for r in rate_rows(a)}
    assert rows["all"] == (2, 4) and rows["mathd_algebra"] == (1, 1) and rows["imo"] == (0, 1)
    pk = pass_at_k_table([a, b, c])  # C is another split: not grouped with A and B
    assert [(p.split, p.k, p.theorems) for p in pk] == [("minif2f-test", 1, 4), ("minif2f-test", 2, 4)]
    # per theorem successes over (A, B): algebra 2, amc 1, imo 1, numbertheory 0
    assert pk[0].value == pytest.approx((1 + 0.5 + 0.5 + 0) / 4)
    assert pk[1].value == pytest.approx(3 / 4)
    cmp_ = compare(a, b)
    assert cmp_.a_only == ("amc12a_2002_p6",) and cmp_.b_only == ("imo_1959_p1",)
    assert cmp_.both == ("mathd_algebra_10",) and cmp_.neither == 1 and cmp_.common == 4
    assert tactic_counts(a) == {"split.": 2, "lia.": 2}
    t = time_totals(a)
    assert t["model"] == pytest.approx(0.2 * 2 + 1.0 * 2) and t["prover"] == pytest.approx(1.1 * 2 + 7.5 * 2)
    assert t["total"] == pytest.approx(1.5 + 2.5 + 18.0)
    assert t["other"] == pytest.approx(t["total"] - t["model"] - t["prover"] - t["check"])


def test_report_files(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rep = build_report([load_run(p) for p in runs], tmp_path / "rep")
    names = {p.name for p in rep.files}
    assert {
        "report.md",
        "rates.csv",
        "pass_at_k.csv",
        "compare.csv",
        "theorems.csv",
        "tactics.csv",
        "solved_vs_expansions.png",
        "solved_vs_time.png",
        "time_split.png",
        "tactic_frequency.png",
    } <= names
    for p in rep.files:
        if p.suffix == ".png":
            data = p.read_bytes()
            assert data.startswith(PNG_MAGIC) and len(data) > 5000
    with open(tmp_path / "rep" / "rates.csv") as fh:
        rows = list(csv.DictReader(fh))
    all_a = [r for r in rows if r["run"] == "A" and r["family"] == "all"][0]
    assert (all_a["solved"], all_a["total"], all_a["rate"]) == ("2", "4", "0.500000")
    assert any(r["run"] == "C" and r["split"] == "minif2f-valid" for r in rows)
    with open(tmp_path / "rep" / "theorems.csv") as fh:
        matrix = {r["theorem"]: r for r in csv.DictReader(fh)}
    assert matrix["imo_1959_p1"]["A"] == "failed" and matrix["imo_1959_p1"]["B"] == "proved"
    md = rep.markdown
    assert "### minif2f-test" in md and "### minif2f-valid" in md
    assert "| A | B | 4 | 1 | 1 | 1 | 1 |" in md
    assert "solved by **A** only: `amc12a_2002_p6`" in md
    assert "![solved_vs_time](solved_vs_time.png)" in md
    assert "| search_exhausted | 2 | 2 | 0 |" in md and "| proved | 2 | 2 | 1 |" in md


def test_cli_report_default_out_and_duplicate_names(
    runs: tuple[Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b, _ = runs
    assert main(["report", str(a), "--no-plots"]) == 0
    assert (a / "report" / "report.md").exists()
    assert "| **all** | 2/4 (50.00%) |" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(a), str(a), "--no-plots"]) == 0  # same run twice: labelled apart
    out = capsys.readouterr().out
    assert "A#1" in out and "A#2" in out
    assert (tmp_path / "report" / "report.md").exists()
