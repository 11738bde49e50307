"""Expert iteration: ``extract --from-run`` turns a run's re-checked proofs into proof-step data.

A real ``prove`` run on two minif2f-valid theorems (real Coq) is the source; the data must hold exactly
the proofs' steps with Coq's goals, say in its card which problems it holds, refuse test runs and
proofs that failed the re-check, and drive the retrieval generator and ``bank+retrieval``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env, run_cli

from llemma_prover.core.errors import ConfigError, DataError
from llemma_prover.core.types import Candidate
from llemma_prover.generators.mixture import mix
from llemma_prover.generators.retrieval import RetrievalGenerator
from llemma_prover.train.data import _contamination_gate

pytestmark = [pytest.mark.coq,
              pytest.mark.skipif(shutil.which("coqtop") is None, reason="coqtop not installed")]

#: valid theorems the bank proves in well under a second: one in two steps, one in one
VALID = ("mathd_numbertheory_48", "mathd_algebra_123")


def extract_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llemma_prover.cli.main", "extract", *args],
                          capture_output=True, text=True, timeout=300, env=cli_env())


@pytest.fixture(scope="module")
def valid_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ei") / "valid-run"
    res = run_cli("--split", "minif2f-valid", "--theorems", ",".join(VALID), "--workers", "0",
                  "--out", str(out), env=cli_env(CUDA_VISIBLE_DEVICES=""))
    assert res.returncode == 0, res.stderr
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["theorem"] for r in recs if r["status"] == "proved") == sorted(VALID), recs
    return out


@pytest.fixture(scope="module")
def data(valid_run: Path) -> Path:
    out = valid_run.parent / "data"
    res = extract_cli("--from-run", str(valid_run), "--out", str(out))
    assert res.returncode == 0, res.stderr
    return out


def _records(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / "steps.jsonl").read_text().splitlines()]


def test_steps_are_the_proof_paths_with_coqs_goals(valid_run: Path, data: Path) -> None:
    steps = _records(data)
    results = {json.loads(line)["theorem"]: json.loads(line)
               for line in (valid_run / "results.jsonl").read_text().splitlines()}
    for name in VALID:
        mine = [s for s in steps if s["theorem"] == name]
        assert [s["tactic"] for s in mine] == results[name]["proof"]
        assert [s["step"] for s in mine] == list(range(len(mine)))
        assert all(s["split"] == "train" and s["source_split"] == "minif2f-valid" for s in mine)
        trace = json.loads((valid_run / results[name]["trace"]).read_text())
        root = next(n for n in trace["nodes"] if n["id"] == 0)["goals"]
        # the goals are Coq's, split by the backend: the first step's goal renders back to the root's text
        from llemma_prover.backends.base import backend_class

        assert backend_class("coq").data.step_goal_text(mine[0]) == root
        assert mine[-1]["goals_after"] == []
        assert name in str(mine[0]["statement"])
    two_step = [s for s in steps if s["theorem"] == "mathd_numbertheory_48"]
    assert len(two_step) == 2 and two_step[1]["goals_before"][0]["hyps"], two_step


def test_card_records_provenance_and_expected_overlap(valid_run: Path, data: Path) -> None:
    card = json.loads((data / "card.json").read_text())
    assert card["from_runs"][0]["run"] == str(valid_run.resolve())
    assert card["from_runs"][0]["proofs"] == 2 and card["counts"]["steps"] == len(_records(data))
    c = card["contamination"]
    assert c["checked"] and c["expected"] == sorted(VALID)
    assert c["unexpected"] == []  # the overlap found is with the run's own problems only
    import hashlib

    assert card["steps_sha256"] == hashlib.sha256((data / "steps.jsonl").read_bytes()).hexdigest()
    # the trainer accepts it (its overlap is expected), and refuses a card that overlaps a test problem
    _contamination_gate(card, allow_unchecked=False, allow_contaminated=False)
    bad = json.loads(json.dumps(card))
    bad["contamination"]["unexpected"] = [{"problem": "mathd_algebra_160", "split": "test"}]
    with pytest.raises(ConfigError, match="overlaps miniF2F"):
        _contamination_gate(bad, allow_unchecked=False, allow_contaminated=False)


def test_retrieval_proposes_the_valid_proofs_tactic(data: Path) -> None:
    step = next(s for s in _records(data) if s["theorem"] == "mathd_numbertheory_48" and s["step"] == 1)
    from llemma_prover.backends.base import backend_class

    gen = RetrievalGenerator(data)
    cands = gen.generate(backend_class("coq").data.step_goal_text(step), 4)
    assert cands[0].tactic == step["tactic"], cands
    assert all(c.score <= 0 for c in cands)


def test_retrieval_refuses_data_that_overlaps_test(data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    card = json.loads((bad / "card.json").read_text())
    card["contamination"]["unexpected"] = [{"problem": "mathd_algebra_160", "split": "test"}]
    (bad / "card.json").write_text(json.dumps(card))
    with pytest.raises(DataError, match="overlaps minif2f-test"):
        RetrievalGenerator(bad).start()


def test_a_test_run_and_unchecked_proofs_are_refused(valid_run: Path, tmp_path: Path) -> None:
    test_run = tmp_path / "as-test"
    shutil.copytree(valid_run, test_run)
    cfg = json.loads((test_run / "config.json").read_text())
    cfg["split"] = "minif2f-test"
    (test_run / "config.json").write_text(json.dumps(cfg))
    res = extract_cli("--from-run", str(test_run), "--out", str(tmp_path / "d1"))
    assert res.returncode == 2 and "never become training or retrieval data" in res.stderr, res.stderr
    assert not (tmp_path / "d1" / "steps.jsonl").exists()

    unchecked = tmp_path / "unchecked"
    shutil.copytree(valid_run, unchecked)
    lines = []
    for line in (unchecked / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["theorem"] == VALID[0]:
            r["check"]["ok"] = False
        lines.append(json.dumps(r))
    (unchecked / "results.jsonl").write_text("\n".join(lines) + "\n")
    res = extract_cli("--from-run", str(unchecked), "--out", str(tmp_path / "d2"))
    assert res.returncode == 0, res.stderr
    assert {s["theorem"] for s in _records(tmp_path / "d2")} == {VALID[1]}
    card = json.loads((tmp_path / "d2" / "card.json").read_text())
    assert card["from_runs"][0]["skipped"] == {VALID[0]: "the proof did not pass the independent re-check"}


def test_bank_plus_retrieval_from_valid_proofs_proves_a_test_theorem(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = run_cli("--theorems", "mathd_algebra_160", "--workers", "0", "--out", str(out),
                  "--generator", "bank+retrieval", "--retrieval-data", str(data),
                  env=cli_env(CUDA_VISIBLE_DEVICES=""))
    assert res.returncode == 0, res.stderr
    rec = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert rec["status"] == "proved" and rec["check"]["ok"], rec
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["generator"]["describe"]["parts"][1]["steps"] == len(_records(data))


def test_mixing_keeps_the_banks_cost_stages() -> None:
    bank = [Candidate("intros; lia", math.log(0.5), stage=0), Candidate("psatz R 3", math.log(0.1), stage=2),
            Candidate("sauto", math.log(0.1), stage=3)]
    retrieval = [Candidate("psatz R 3", math.log(0.6)), Candidate("nra", math.log(0.4))]
    stages = {c.tactic: c.stage for c in mix([bank, retrieval], [0.5, 0.5], 10)}
    # only the bank proposes sauto: the bank's stage; retrieval proposes psatz now: stage 0
    assert stages == {"intros; lia": 0, "psatz R 3": 0, "sauto": 3, "nra": 0}


def test_match_keeps_a_fold_and_scans_only_its_proofs(valid_run: Path, tmp_path: Path) -> None:
    res = extract_cli("--from-run", str(valid_run), "--match", f"/{VALID[1]}$", "--out", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr
    assert {s["theorem"] for s in _records(tmp_path / "d")} == {VALID[1]}
    card = json.loads((tmp_path / "d" / "card.json").read_text())
    assert card["from_runs"][0]["skipped"] == {VALID[0]: "not matched"}
    c = card["contamination"]
    # the left-out theorem's proof file is not scanned: no overlap with a problem the data does not hold
    assert c["expected"] == [VALID[1]] and c["unexpected"] == []
    assert c["corpus"] == [str(valid_run / "proofs" / f"{VALID[1]}.v")]


def test_mixing_merges_a_models_final_period_on_coq(tmp_path: Path) -> None:
    """A trained model writes Coq sentences with their period (``lia.``), the bank without: one tactic."""
    from llemma_prover.backends.base import backend_class

    key = backend_class("coq").data.tactic_key
    bank = [Candidate("timeout 2 (intros; lia)", math.log(0.5))]
    model = [Candidate("timeout 2 (intros;  lia).", math.log(0.5)), Candidate("auto...", math.log(0.2))]
    out = mix([bank, model], [0.5, 0.5], 10, key)
    assert [c.tactic for c in out] == ["timeout 2 (intros; lia)", "auto..."]
    assert math.isclose(out[0].score, math.log(0.5))
    assert key("auto...") == "auto..." and key("lia .") == "lia"
    # the registry builds mixtures with the backend's key
    from llemma_prover.core.config import GeneratorConfig
    from llemma_prover.generators.registry import make_generator

    data = tmp_path / "d"
    data.mkdir()
    (data / "steps.jsonl").write_text(json.dumps({
        "library": "h", "file": "h.v", "theorem": "t", "statement": "", "step": 0, "split": "train",
        "goals_before": [{"hyps": [], "concl": "x = x"}], "tactic": "reflexivity", "goals_after": []}) + "\n")
    gen, _ = make_generator(GeneratorConfig(name="bank+retrieval", retrieval_data=str(data)), "coq")
    try:
        assert gen.key("lia.") == "lia"
    finally:
        gen.close()


def test_goal_records_invert_the_goal_text_of_several_goals() -> None:
    from llemma_prover.backends.base import backend_class
    from llemma_prover.extract.from_runs import goal_records

    kind = backend_class("coq").data
    text = "x, y : R\nH : x < y\n============================\nx <= y\n\ny <= y + 1\n\n0 <= 1"
    goals = goal_records(kind, text)
    assert goals[0] == {"hyps": ["x, y : R", "H : x < y"], "concl": "x <= y"}
    assert [g["concl"] for g in goals[1:]] == ["y <= y + 1", "0 <= 1"]
    assert kind.step_goal_text({"goals_before": goals}) == text
    assert goal_records(kind, "  ") == []
