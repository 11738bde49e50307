"""trace: run loading (read-only), the trace model, terminal views, path export and the CLI, on run
directories written in the documented format (test_trace_fixtures.make_run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from test_trace_fixtures import failed_trace, make_run, proved_trace

from llemma_prover.cli.main import main
from llemma_prover.core.errors import RunDirError
from llemma_prover.traces.export import export_path
from llemma_prover.traces.model import Trace
from llemma_prover.traces.run import filter_records, load_run, sort_records
from llemma_prover.traces.terminal import TreeOptions, budget_tables, records_table, trace_tree


def _text(renderable: object, width: int = 140) -> str:
    con = Console(record=True, width=width, color_system=None)
    con.print(renderable)
    return con.export_text()


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path, errored=("aime_1983_p1",), truncated_tail=True)


def test_load_run_is_read_only_and_skips_a_cut_short_last_line(run_dir: Path) -> None:
    before = (run_dir / "results.jsonl").read_bytes()
    run = load_run(run_dir)
    assert (run_dir / "results.jsonl").read_bytes() == before  # nothing repaired on disk
    assert run.skipped == 1
    assert sorted(r.theorem for r in run.records) == [
        "aime_1983_p1",
        "amc12a_2002_p6",
        "imo_1959_p1",
        "mathd_algebra_10",
        "mathd_numbertheory_3",
    ]
    assert run.split == "minif2f-test" and run.backend == "coq"


def test_a_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    lines = (run / "results.jsonl").read_text().splitlines()
    lines.insert(1, "{not json")
    (run / "results.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(RunDirError, match=r"results.jsonl:2"):
        load_run(run)


def test_later_record_of_a_theorem_wins(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    rec = json.loads((run / "results.jsonl").read_text().splitlines()[0])
    rec["expansions"] = 99
    with open(run / "results.jsonl", "a") as fh:
        fh.write(json.dumps(rec) + "\n")
    view = load_run(run)
    assert len(view.records) == 4
    assert view.record(rec["theorem"]).expansions == 99


def test_filters_and_sorting(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert {r.theorem for r in filter_records(run.records, status=["proved"])} == {
        "mathd_algebra_10",
        "amc12a_2002_p6",
    }
    assert [r.theorem for r in filter_records(run.records, family=["imo"])] == ["imo_1959_p1"]
    assert {r.theorem for r in filter_records(run.records, name="mathd_*")} == {
        "mathd_algebra_10",
        "mathd_numbertheory_3",
    }
    assert [r.theorem for r in filter_records(run.records, reason=["start_failed"])] == ["aime_1983_p1"]
    assert sort_records(run.records, "time")[0].time.total == 9.0
    with pytest.raises(RunDirError):
        sort_records(run.records, "nope")


def test_unknown_theorem_suggests_close_names(run_dir: Path) -> None:
    with pytest.raises(RunDirError, match="did you mean mathd_algebra_10"):
        load_run(run_dir).record("mathd_algebra_1")
    # case-insensitive match (Lean 4 vs Coq spelling of one miniF2F name)
    assert load_run(run_dir).record("MATHD_ALGEBRA_10").theorem == "mathd_algebra_10"


def test_trace_model_proof_path_and_budget() -> None:
    tr = Trace.from_node_link(proved_trace("t"))
    assert tr.proved and tr.proof_nodes() == [0, 1, 2]
    assert [e.tactic for e in tr.proof_edges()] == ["split.", "lia."]
    b = tr.budget()
    outcomes = {o.outcome: o.count for o in b.by_outcome}
    assert outcomes == {"advanced": 2, "error": 2, "duplicate": 1, "proved": 1}
    assert b.attempts == 6 and b.states == 4  # error leaves are attempts, not states
    branch = {br.tactic: br for br in b.by_branch}
    assert branch["split."].on_proof and branch["split."].expansions == 1 and branch["split."].attempts == 3
    assert not branch["clear H."].on_proof and branch["clear H."].expansions == 0
    # the cycle through the duplicate edge 1 -> 0 is not followed
    assert sorted(tr.subtree(0)) == [0, 1, 2, 5]


def test_trace_model_accepts_networkx_links_key_and_rejects_garbage() -> None:
    data = failed_trace("t")
    data["links"] = data.pop("edges")
    tr = Trace.from_node_link(data)
    assert not tr.proved and tr.proof_nodes() is None and tr.proof_edges() == []
    assert len(tr.out_edges(0)) == 8
    assert tr.best_open_node() == 1
    with pytest.raises(RunDirError):
        Trace.from_node_link({"edges": []})
    with pytest.raises(RunDirError):
        Trace.from_node_link({"nodes": [{"id": "x"}]})


def test_terminal_tree_highlights_the_proof_and_summarises_errors() -> None:
    out = _text(trace_tree(Trace.from_node_link(proved_trace("t"))))
    assert "★ split." in out and "★ lia." in out and "no goals: proof complete" in out
    assert "↪ #0" in out  # the duplicate edge is a reference, not a subtree
    assert "ring failed" in out
    failed = Trace.from_node_link(failed_trace("t"))
    out = _text(trace_tree(failed, TreeOptions(max_errors=2)))
    assert "5 more failed attempts (error 4, timeout 1)" in out
    assert "★" not in out
    out_all = _text(trace_tree(failed, TreeOptions(max_errors=-1)))
    assert "more failed attempts" not in out_all and out_all.count("[error") == 7
    proof_only = _text(trace_tree(Trace.from_node_link(proved_trace("t")), TreeOptions(proof_only=True)))
    assert "clear H." not in proof_only and "★ lia." in proof_only


def test_budget_tables_say_where_the_time_went() -> None:
    out = _text(budget_tables(Trace.from_node_link(failed_trace("t"))))
    assert "not proved (search_exhausted)" in out
    assert "attempts by outcome" in out and "timeout" in out
    assert "lia failed: cannot find witness" in out


def test_records_table_lists_every_record(run_dir: Path) -> None:
    out = _text(records_table(load_run(run_dir).records, proofs=True), width=200)
    for name in ("mathd_algebra_10", "imo_1959_p1", "aime_1983_p1"):
        assert name in out
    assert "split. lia." in out and "statement did not load" in out


def test_export_uses_the_checked_proof_file_of_the_run(run_dir: Path) -> None:
    ex = export_path(load_run(run_dir), "mathd_algebra_10")
    assert ex.source == "run" and ex.complete and ex.ext == "v"
    assert ex.text == (run_dir / "proofs" / "mathd_algebra_10.v").read_text()


def test_export_partial_path_with_the_benchmark_statement(run_dir: Path, minif2f_dir: Path) -> None:
    ex = export_path(
        load_run(run_dir), "imo_1959_p1", data_dir=minif2f_dir
    )  # deepest node of a failed search
    assert not ex.complete and ex.tactics == ("revert H.",)
    assert "Theorem imo_1959_p1" in ex.text and ex.text.rstrip().endswith("Admitted.")
    assert "remaining goals" in ex.text
    with pytest.raises(RunDirError, match="failed attempt"):
        export_path(load_run(run_dir), "imo_1959_p1", node=3, data_dir=minif2f_dir)
    with pytest.raises(RunDirError, match="no node 99"):
        export_path(load_run(run_dir), "imo_1959_p1", node=99, data_dir=minif2f_dir)
    with pytest.raises(RunDirError, match="no trace"):
        export_path(load_run(run_dir), "aime_1983_p1", data_dir=minif2f_dir)


def test_cli_list_show_path(run_dir: Path, capsys: pytest.CaptureFixture[str], minif2f_dir: Path) -> None:
    assert main(["trace", "list", str(run_dir), "--status", "proved"]) == 0
    out = capsys.readouterr().out
    assert "mathd_algebra_10" in out and "amc12a_2002_p6" in out and "imo_1959_p1" not in out
    assert main(["trace", "list", str(run_dir), "--family", "imo", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["theorem"] for x in lines] == ["imo_1959_p1"]
    assert main(["trace", "show", str(run_dir), "mathd_algebra_10"]) == 0
    out = capsys.readouterr().out
    assert "★ lia." in out and "proof path" in out and "by depth" in out
    assert main(["trace", "show", str(run_dir), "aime_1983_p1"]) == 0
    assert "no search trace recorded" in capsys.readouterr().out
    assert main(["trace", "path", str(run_dir), "imo_1959_p1", "--data-dir", str(minif2f_dir)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("Admitted.")
    assert main(["trace", "show", str(run_dir), "no_such_theorem"]) == 2
    assert "no theorem 'no_such_theorem'" in capsys.readouterr().err
    assert main(["trace", "list", str(run_dir / "missing")]) == 2
