"""import llemma-f2f on the real published result files (read in place, never copied into the repo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO
from rich.console import Console

from llemma_prover.cli.main import main
from llemma_prover.core.errors import DataError, RunDirError
from llemma_prover.core.types import Reason, Status
from llemma_prover.importers.llemma_f2f import import_llemma_f2f, read_benchmark_names
from llemma_prover.reports.report import build_report
from llemma_prover.traces.run import load_run
from llemma_prover.traces.terminal import trace_tree

PUBLISHED = REPO.parent / "shared" / "published_runs" / "llemma_formal2formal"


def shards(setting: str) -> list[str]:
    files = sorted(str(p) for p in (PUBLISHED / setting).glob("results__*.json"))
    if not files:
        pytest.skip(f"published results not found in {PUBLISHED}")
    return files


@pytest.fixture(scope="module")
def lean_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    from conftest import data_dir

    return read_benchmark_names(data_dir() / "lean4" / "test.jsonl")


@pytest.fixture(scope="module")
def llemma7b(tmp_path_factory: pytest.TempPathFactory, lean_names: set[str]) -> Path:
    out = tmp_path_factory.mktemp("imp") / "llemma7b"
    res = import_llemma_f2f(shards("llemma7b_minif2f_test"), out, benchmark_names=lean_names)
    assert res.model == "llemma7b"
    return out


def test_llemma7b_reproduces_the_paper(llemma7b: Path, tmp_path: Path) -> None:
    run = load_run(llemma7b)
    assert len(run.records) == 244
    rep = build_report([run], tmp_path / "rep", plots=False)
    overall = [r for r in rep.rates if r.family == "all"]
    assert [(r.split, r.solved, r.total) for r in overall] == [("minif2f-test", 64, 244)]
    assert "64/244 (26.23%)" in rep.markdown  # the paper's Llemma-7B miniF2F test number


@pytest.mark.parametrize(
    ("setting", "solved", "rate"),
    [
        ("llemma34b_minif2f_test", 63, "25.82%"),
        ("codellama7b_minif2f_test", 50, "20.49%"),
        ("codellama34b_minif2f_test", 54, "22.13%"),
    ],
)
def test_other_published_models(
    setting: str, solved: int, rate: str, tmp_path: Path, lean_names: set[str]
) -> None:
    import_llemma_f2f(shards(setting), tmp_path / "run", benchmark_names=lean_names)
    rep = build_report([load_run(tmp_path / "run")], tmp_path / "rep", plots=False)
    assert f"{solved}/244 ({rate})" in rep.markdown


def test_helper_lemma_is_excluded_and_recorded(llemma7b: Path) -> None:
    cfg = json.loads((llemma7b / "config.json").read_text())
    assert [e["theorem"] for e in cfg["excluded"]] == ["sum_pairs"]
    assert "MiniF2F/Test.lean" in cfg["excluded"][0]["reason"]
    assert "sum_pairs" not in {r.theorem for r in load_run(llemma7b).records}
    # without the benchmark list it would count: 64/245 is not the paper's number
    assert cfg["imported_from"] == "llemma-f2f" and len(cfg["files"]) == 4
    assert all(len(f["sha256"]) == 64 for f in cfg["files"])


def test_keep_all_keeps_the_helper(tmp_path: Path) -> None:
    res = import_llemma_f2f(shards("llemma7b_minif2f_test"), tmp_path / "all", benchmark_names=None)
    assert res.records == 245 and res.proved == 64 and not res.excluded


def test_records_map_the_published_fields(llemma7b: Path) -> None:
    run = load_run(llemma7b)
    rec = run.record("mathd_algebra_478")
    assert rec.status is Status.PROVED and rec.proof == ("rw [h₁, h₂, h₃]", "linarith")
    att = rec.extra["attempt_results"][0]
    assert rec.time.total == pytest.approx(-att["elapsed"]) and rec.time.total > 0  # elapsed is negated
    assert rec.expansions == att["iteration"] + 1
    assert rec.extra["example"]["full_name"] == "mathd_algebra_478" and rec.extra["rechecked"] is False
    reasons = {r.reason for r in run.records if not r.proved}
    assert Reason.TIME_BUDGET in reasons and Reason.SEARCH_EXHAUSTED in reasons
    crash = [r for r in run.records if r.reason is Reason.PROVER_CRASH]
    assert all(r.status is Status.ERROR and r.error == "DojoCrashError" for r in crash)
    # the Lean 4 spelling differs from the Coq one; matching is case-insensitive
    assert (
        run.record("numbertheory_notequiv2i2jasqbsqdiv8").theorem.lower()
        == "numbertheory_notequiv2i2jasqbsqdiv8"
    )


def test_imported_proof_trace_is_a_path_graph(llemma7b: Path) -> None:
    run = load_run(llemma7b)
    tr = run.trace("mathd_algebra_478")
    assert tr is not None and tr.proved
    assert [e.tactic for e in tr.proof_edges()] == ["rw [h₁, h₂, h₃]", "linarith"]
    assert tr.nodes[0].goals.startswith("b h v : ℝ")
    assert tr.edges[0].score is None  # per-step scores were not published
    con = Console(record=True, width=140, color_system=None)
    con.print(trace_tree(tr))
    out = con.export_text()
    assert "★ linarith" in out and "score ?" in out
    assert run.trace(run.record("numbertheory_4x3m7y3neq2003")) is None


def test_cli_import_then_report_and_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "l7"
    assert main(["import", "llemma-f2f", *shards("llemma7b_minif2f_test"), "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "imported 244 theorems of llemma7b (64 proved, 26.23%)" in cap.out
    assert "excluded sum_pairs" in cap.err
    assert main(["report", str(out), "--no-plots"]) == 0
    assert "| **all** | 64/244 (26.23%) |" in capsys.readouterr().out
    assert (out / "report" / "rates.csv").exists()
    assert main(["trace", "list", str(out), "--status", "proved", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 64
    assert main(["trace", "path", str(out), "mathd_algebra_478"]) == 0
    text = capsys.readouterr().out
    assert "theorem mathd_algebra_478" in text and "  linarith" in text and "import Mathlib" in text
    # importing into an existing run is refused
    assert main(["import", "llemma-f2f", *shards("llemma7b_minif2f_test"), "--out", str(out)]) == 2


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "results__m__0.json"
    bad.write_text('{"nope": 1}')
    with pytest.raises(DataError, match="results"):
        import_llemma_f2f([bad], tmp_path / "o")
    bad.write_text("{trunc")
    with pytest.raises(DataError, match="not a readable JSON"):
        import_llemma_f2f([bad], tmp_path / "o")
    with pytest.raises(DataError, match="several models"):
        import_llemma_f2f(
            [*shards("llemma7b_minif2f_test")[:1], *shards("codellama7b_minif2f_test")[:1]], tmp_path / "o2"
        )
    good = tmp_path / "ok"
    import_llemma_f2f(shards("llemma7b_minif2f_test")[:1], good)
    with pytest.raises(RunDirError, match="already holds a run"):
        import_llemma_f2f(shards("llemma7b_minif2f_test")[:1], good)


def test_published_files_are_not_in_the_repository() -> None:
    tracked = {p.name for p in REPO.rglob("results__*.json") if ".venv" not in p.parts}
    assert tracked == set()


def test_html_viewer_payload_of_an_imported_run(llemma7b: Path) -> None:
    from llemma_prover.traces.html import build_payload

    p = build_payload(load_run(llemma7b))
    assert len(p["theorems"]) == 244 and len(p["traces"]) == 64
    assert p["run"]["imported_from"] == "llemma-f2f"
    thm = next(t for t in p["theorems"] if t["name"] == "mathd_algebra_478")
    tr = p["traces"][thm["trace"]]
    assert [p["strings"][e[2]] for e in tr["edges"]] == ["rw [h₁, h₂, h₃]", "linarith"]
    assert "only the proof path" in tr["partial"]
