"""Run directory: creation, resume, truncated-line repair, incompatible runs, summary."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from llemma_prover.core.config import RunConfig
from llemma_prover.core.errors import RunDirError
from llemma_prover.core.records import TheoremRecord
from llemma_prover.core.types import CheckResult, Reason, Status, TimeSplit, family_of
from llemma_prover.results.rundir import FORMAT_VERSION, RESULTS, RunDir, read_results
from llemma_prover.results.summary import summarize, summary_markdown


def _config(**kw: object) -> dict:
    return {**RunConfig(**kw).to_dict(), "data_hash": "abc", "started_at": "t0"}  # type: ignore[arg-type]


def _rec(name: str, proved: bool = False) -> TheoremRecord:
    return TheoremRecord(
        theorem=name, split="minif2f-test", family=family_of(name), backend="coq", generator="bank",
        status=Status.PROVED if proved else Status.FAILED,
        reason=Reason.PROVED if proved else Reason.SEARCH_EXHAUSTED,
        proof=("intros.", "lia.") if proved else None, expansions=3, nodes=4,
        time=TimeSplit(total=1.0, model=0.1, prover=0.8, check=0.1),
        check=CheckResult(ok=True, checker="coqc", elapsed=0.1) if proved else None,
    )


def test_new_run_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    rd = RunDir.open(out, _config())
    assert not rd.resumed and rd.records == {}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format_version"] == FORMAT_VERSION and cfg["data_hash"] == "abc"
    assert (out / "traces").is_dir() and (out / "proofs").is_dir()
    rd.append(_rec("mathd_algebra_171", proved=True))
    rd.append(_rec("imo_1959_p1"))
    rel = rd.write_trace("imo_1959_p1", {"directed": True, "nodes": [], "edges": []})
    assert rel == "traces/imo_1959_p1.json" and (out / rel).is_file()
    rd.write_proof("mathd_algebra_171", "Theorem x : True.\nProof.\nauto.\nQed.\n", "v")
    assert (out / "proofs" / "mathd_algebra_171.v").is_file()

    rd2 = RunDir.open(out, {**_config(), "started_at": "t1"})
    assert rd2.resumed
    assert set(rd2.records) == {"mathd_algebra_171", "imo_1959_p1"}
    assert rd2.done("imo_1959_p1") and not rd2.done("aime_1983_p1")
    assert rd2.records["mathd_algebra_171"].proof == ("intros.", "lia.")
    cfg2 = json.loads((out / "config.json").read_text())
    assert cfg2["started_at"] == "t0" and cfg2["resumed_at"] == ["t1"]


def test_truncated_last_line_is_repaired_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "run"
    rd = RunDir.open(out, _config())
    rd.append(_rec("a_1"))
    rd.append(_rec("b_2"))
    path = out / RESULTS
    good = path.read_bytes()
    half = _rec("c_3").to_json()[:40]
    path.write_bytes(good + half.encode())  # a crash in the middle of the third write
    with caplog.at_level(logging.WARNING):
        rd2 = RunDir.open(out, _config())
    assert set(rd2.records) == {"a_1", "b_2"} and rd2.repaired == 1
    assert "truncated record" in caplog.text and ":3" in caplog.text
    assert path.read_bytes() == good  # the broken tail is gone: appending yields valid JSONL again
    rd2.append(_rec("c_3"))
    recs, dropped = read_results(path)
    assert set(recs) == {"a_1", "b_2", "c_3"} and dropped == 0


def test_unparseable_last_line_with_newline_is_dropped(tmp_path: Path) -> None:
    out = tmp_path / "run"
    rd = RunDir.open(out, _config())
    rd.append(_rec("a_1"))
    with open(out / RESULTS, "a") as fh:
        fh.write('{"theorem": "b_2", "status": \n')
    rd2 = RunDir.open(out, _config())
    assert set(rd2.records) == {"a_1"} and rd2.repaired == 1


def test_corrupt_line_in_the_middle_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    rd = RunDir.open(out, _config())
    rd.append(_rec("a_1"))
    with open(out / RESULTS, "a") as fh:
        fh.write("garbage\n")
    rd.append(_rec("b_2"))
    with pytest.raises(RunDirError, match=r"results.jsonl:2: corrupt record"):
        RunDir.open(out, _config())


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"split": "minif2f-valid"}, "split: 'minif2f-test' there vs 'minif2f-valid' now"),
        ({"backend": "isabelle"}, "backend: 'coq' there vs 'isabelle' now"),
    ],
)
def test_incompatible_run_dir_is_refused(tmp_path: Path, kw: dict, fragment: str) -> None:
    out = tmp_path / "run"
    RunDir.open(out, _config())
    with pytest.raises(RunDirError) as ei:
        RunDir.open(out, _config(**kw))
    assert fragment in str(ei.value) and "\n" not in str(ei.value)


def test_other_generator_data_and_format_version_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = _config()
    RunDir.open(out, cfg)
    with pytest.raises(RunDirError, match="data_hash: 'abc' there vs 'def' now"):
        RunDir.open(out, {**cfg, "data_hash": "def"})
    other = json.loads(json.dumps(cfg))
    other["generator"]["name"] = "replay"
    with pytest.raises(RunDirError, match="generator.name"):
        RunDir.open(out, other)
    data = json.loads((out / "config.json").read_text())
    data["format_version"] = 999
    (out / "config.json").write_text(json.dumps(data))
    with pytest.raises(RunDirError, match="format 999"):
        RunDir.open(out, cfg)


def test_unwritable_and_inconsistent_dirs(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(RunDirError, match="cannot create run directory"):
        RunDir.open(blocker / "run", _config())
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    (orphan / RESULTS).write_text("")
    with pytest.raises(RunDirError, match="no config.json"):
        RunDir.open(orphan, _config())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(RunDirError, match="unreadable"):
        RunDir.open(bad, _config())


def test_summary_per_family(tmp_path: Path) -> None:
    recs = [_rec("mathd_algebra_1", True), _rec("mathd_algebra_2"), _rec("amc12a_2019_p21", True),
            _rec("imo_1959_p1"), _rec("induction_12dvd4expnp1p20", True), _rec("weird_thing")]
    s = summarize(recs)
    assert (s.overall.solved, s.overall.total) == (3, 6)
    rows = {r.family: (r.solved, r.total) for r in s.families}
    assert rows["mathd_algebra"] == (1, 2) and rows["amc12"] == (1, 1) and rows["imo"] == (0, 1)
    assert rows["aime"] == (0, 0) and rows["other"] == (0, 1)
    md = summary_markdown(s)
    assert "| mathd_algebra | 1/2 | 50.0% |" in md and "| **all** | 3/6 | 50.0% |" in md
    rd = RunDir.open(tmp_path / "run", _config())
    for r in recs:
        rd.append(r)
    text = rd.write_summary(["mathd_algebra_1", "imo_1959_p1"])
    assert "| **all** | 1/2 | 50.0% |" in text and (tmp_path / "run" / "summary.md").read_text() == text
