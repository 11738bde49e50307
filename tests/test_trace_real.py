"""trace / report / html on a real run: `prove` on Coq (real coqtop, coqc re-check) in a subprocess, then
every inspection command on its run directory. Exported proof paths are compiled with the real coqc."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from test_html_viewer import (
    browser,
    click_theorem,
    console_errors,
    error_edges,
    open_viewer,
    proof_edge_tactics,
    screenshot,
)

from llemma_prover.cli.main import main
from llemma_prover.reports.report import build_report
from llemma_prover.traces.run import load_run

pytestmark = pytest.mark.coq

THEOREMS = ("mathd_algebra_107", "mathd_numbertheory_3", "mathd_algebra_44", "amc12a_2002_p6")
#: the same candidates at every node: composes `intros.` with an automation tactic, fails on amc12a_2002_p6
TACTICS = ("intros.", "lia.", "nia.", "lra.", "nra.", "field.", "ring.")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("coqtop") is None or shutil.which("coqc") is None:
        pytest.fail("coqtop/coqc not installed (apt-get install coq)")
    d = tmp_path_factory.mktemp("real")
    replay = d / "tactics.txt"
    replay.write_text("\n".join(TACTICS) + "\n")
    out = d / "run"
    proc = run_cli(
        "--split",
        "minif2f-test",
        "--theorems",
        ",".join(THEOREMS),
        "--workers",
        "0",
        "--generator",
        "replay",
        "--replay-file",
        str(replay),
        "--max-expansions",
        "4",
        "--time-budget",
        "60",
        "--out",
        str(out),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def coqc_ok(text: str, where: Path, name: str) -> subprocess.CompletedProcess[str]:
    f = where / f"{name}.v"
    f.write_text(text)
    return subprocess.run(["coqc", "-q", f.name], cwd=where, capture_output=True, text=True, timeout=300)


def test_list_matches_the_results(real_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = [json.loads(x) for x in (real_run / "results.jsonl").read_text().splitlines()]
    assert sorted(r["theorem"] for r in recs) == sorted(THEOREMS)
    assert main(["trace", "list", str(real_run), "--json"]) == 0
    listed = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["theorem"]: r["status"] for r in listed} == {r["theorem"]: r["status"] for r in recs}
    statuses = {r["theorem"]: r["status"] for r in recs}
    assert statuses["amc12a_2002_p6"] != "proved"
    assert sum(s == "proved" for s in statuses.values()) >= 2


def test_show_highlights_the_proof_of_the_record(real_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = load_run(real_run)
    proved = [r for r in run.records if r.proved]
    for rec in proved:
        tr = run.trace(rec)
        assert tr is not None and tr.proved
        assert tuple(e.tactic for e in tr.proof_edges()) == rec.proof
        assert main(["trace", "show", str(real_run), rec.theorem, "--errors", "-1"]) == 0
        out = capsys.readouterr().out
        for tac in rec.proof:
            assert f"★ {tac}" in out
    assert main(["trace", "show", str(real_run), "amc12a_2002_p6"]) == 0
    out = capsys.readouterr().out
    assert "not proved" in out and "Error" in out and "★" not in out


def test_exported_paths_compile_with_coqc(
    real_run: Path, tmp_path: Path, minif2f_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = load_run(real_run)
    for rec in run.records:
        assert main(["trace", "path", str(real_run), rec.theorem, "--data-dir", str(minif2f_dir)]) == 0
        text = capsys.readouterr().out
        res = coqc_ok(text, tmp_path, rec.theorem)
        assert res.returncode == 0, (rec.theorem, res.stdout, res.stderr, text)
        if rec.proved:
            assert text.rstrip().endswith("Qed.")
        else:
            assert text.rstrip().endswith("Admitted.") and "remaining goals" in text
    # the path to an intermediate node of a proof: the proof is left open, and still compiles
    rec = next(r for r in run.records if r.proved and r.proof and len(r.proof) >= 2)
    tr = run.trace(rec)
    assert tr is not None
    mid = tr.proof_nodes()[1]
    out = tmp_path / "mid" / f"{rec.theorem}.v"
    assert (
        main(
            [
                "trace",
                "path",
                str(real_run),
                rec.theorem,
                "--node",
                str(mid),
                "--data-dir",
                str(minif2f_dir),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert "partial path" in capsys.readouterr().err
    text = out.read_text()
    # laid out as the proof file lays out a step (``layout.step_sentence``: ``( tactic\n).``)
    first, last = (t.strip().rstrip(".").strip() for t in (rec.proof[0], rec.proof[-1]))
    assert first in text and last not in text.split("Proof.")[1]
    res = subprocess.run(
        ["coqc", "-q", out.name], cwd=out.parent, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr


def test_report_on_the_real_run_against_llemma(real_run: Path, tmp_path: Path) -> None:
    from test_import_llemma import shards

    from llemma_prover.importers.llemma_f2f import import_llemma_f2f

    pytest.importorskip("matplotlib")
    import_llemma_f2f(shards("llemma7b_minif2f_test"), tmp_path / "llemma7b")
    ours, theirs = load_run(real_run), load_run(tmp_path / "llemma7b")
    rep = build_report([ours, theirs], tmp_path / "rep")
    c = rep.comparisons[0]
    assert c.common == len(THEOREMS)  # matched theorem by theorem across Coq and Lean 4 runs
    solved_ours = {r.theorem for r in ours.records if r.proved}
    assert set(c.a_only) | set(c.both) == solved_ours
    assert (tmp_path / "rep" / "solved_vs_time.png").stat().st_size > 5000
    t = [r for r in rep.rates if r.run == ours.name and r.family == "all"][0]
    assert (t.solved, t.total) == (len(solved_ours), len(THEOREMS))


@pytest.mark.browser
def test_html_viewer_on_the_real_run(real_run: Path, tmp_path: Path) -> None:
    page = tmp_path / "real.html"
    assert main(["trace", "html", str(real_run), "-o", str(page)]) == 0
    run = load_run(real_run)
    proved = next(r for r in run.records if r.proved)
    failed = run.record("amc12a_2002_p6")
    tr = run.trace(failed)
    assert tr is not None
    n_errors = sum(1 for e in tr.edges if e.is_error)
    assert n_errors > 4  # folded by default
    with browser() as drv:
        open_viewer(drv, page)
        click_theorem(drv, proved.theorem)
        assert proof_edge_tactics(drv) == list(proved.proof or ())
        screenshot(drv, "html_viewer_real_proved.png")
        click_theorem(drv, failed.theorem)
        assert proof_edge_tactics(drv) == []
        drv.find_element("id", "btn-errors-open").click()
        errs = error_edges(drv)
        assert len(errs) == n_errors
        titles = [e.find_element("css selector", "title").get_attribute("textContent") for e in errs]
        assert all("Error" in t for t in titles)
        screenshot(drv, "html_viewer_real_failed.png")
        assert console_errors(drv) == []
