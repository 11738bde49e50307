"""``prove --library``: lemmas of a real (tiny) library proved in their own context, on real coqidetop.

The library is written here: two files, a Section with a Variable and a Hypothesis, a Hint, a lemma
that needs an earlier lemma, an ``Admitted`` one (not a lemma to attempt) and a ``Defined``
definition whose original body a later lemma depends on.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli

from llemma_prover.backends.coq.library_session import LibraryLemma, LibrarySession
from llemma_prover.core.config import LibraryConfig, ProverConfig, RunConfig, SearchConfig
from llemma_prover.core.types import Advanced, Candidate, ProofFinished, TacticTimeout, Theorem
from llemma_prover.generators.base import TacticGenerator
from llemma_prover.library.lemmas import Lemma
from llemma_prover.library.plan import FileChunk, library_file
from llemma_prover.workers.library_driver import LibraryPlan, plan_library
from llemma_prover.workers.library_job import LibraryContext, LibraryJob

pytestmark = [
    pytest.mark.coq,
    pytest.mark.skipif(shutil.which("coqidetop.opt") is None, reason="coqidetop not installed"),
]

FILE_A = """(* a tiny library: file A *)
Definition double (n : nat) := n + n.

Lemma double_0 : double 0 = 0.
Proof. reflexivity. Qed.

Section S.
  Variable k : nat.
  Hypothesis Hk : k = 3.

  Lemma k_is_3 : k = 3.
  Proof. exact Hk. Qed.

  Lemma k_plus : k + 0 = 3.
  Proof. rewrite <- plus_n_O. apply k_is_3. Qed.
End S.

Definition two : nat.
Proof. exact (S (S O)). Defined.

Lemma two_is_2 : two = 2.
Proof. reflexivity. Qed.

#[export] Hint Resolve double_0 : core.

Lemma by_hint : double 0 = 0 /\\ True.
Proof. split; [auto | exact I]. Qed.

Lemma admitted_one : 1 = 1.
Admitted.
"""

FILE_B = """Require Import Tiny.A.

Lemma double_2 : double 2 = 4.
Proof. reflexivity. Qed.
"""

#: pieces of the original proofs that no generator may ever see
SECRETS = ("exact Hk", "apply k_is_3", "exact (S (S O))", "[auto | exact I]")


class Spy(TacticGenerator):
    """Proposes fixed tactics for goals containing a key; records everything it is given."""

    name = "spy"

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = dict(table)
        self.seen: list[str] = []
        self.learned: list[Mapping[str, Any]] = []
        #: theorem -> how many steps had been learned when its search began
        self.learned_at: dict[str, int] = {}

    def start_theorem(self, theorem: Theorem) -> None:
        self.learned_at[theorem.name] = len(self.learned)
        self.seen += [theorem.name, theorem.header, theorem.statement, theorem.informal_statement,
                      theorem.informal_proof, theorem.source]

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        self.seen.append(goal_text)
        out = []
        for key, tactics in self.table.items():
            if key in goal_text:
                out += [Candidate(t, -float(i)) for i, t in enumerate(tactics)]
        return out[:k]

    def learn_steps(self, steps: Sequence[Mapping[str, Any]]) -> None:
        self.learned += list(steps)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lib")
    lib = root / "Tiny"
    lib.mkdir()
    (lib / "A.v").write_text(FILE_A)
    (lib / "B.v").write_text(FILE_B)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLEMMA_PROVER_CACHE", str(root / "cache"))
        yield lib


def _plan(lib: Path, **kw: Any) -> LibraryPlan:
    cfg = LibraryConfig(library=str(lib), files=("A.v", "B.v"), **kw)
    return plan_library(cfg, ProverConfig(tactic_timeout=2))


def test_scan_finds_the_lemmas_in_order_and_caches_them(tiny: Path) -> None:
    plan = _plan(tiny)
    keys = [lem.key for lem in plan.selected]
    assert keys == ["A.v:double_0", "A.v:k_is_3", "A.v:k_plus", "A.v:two", "A.v:two_is_2", "A.v:by_hint",
                    "B.v:double_2"]  # Admitted is not a lemma to attempt
    a = plan.scans[0]
    text = (tiny / "A.v").read_text()
    two = next(lem for lem in a.lemmas if lem.name == "two")
    assert two.closed_by == "Defined" and text[two.start:two.stmt_end] == "Definition two : nat."
    assert text[two.stmt_end:two.end].strip() == "Proof. exact (S (S O)). Defined."
    assert [s["tactic"] for s in a.steps["A.v:k_plus"]] == ["rewrite <- plus_n_O", "apply k_is_3"]
    # a compiled folder library: the automation is loaded (nothing installed depends on it)
    assert "Coq.micromega.Lia" in plan.automation["A.v"]
    # the second plan reads the cache: same lemmas, no walk
    again = _plan(tiny)
    assert [lem.key for lem in again.selected] == keys
    assert again.scans[0].elapsed == a.elapsed
    # a fixed sample: the same for the same seed
    s1 = [lem.key for lem in _plan(tiny, sample=3, seed=7).selected]
    assert len(s1) == 3 and s1 == [lem.key for lem in _plan(tiny, sample=3, seed=7).selected]


def _run_job(lib: Path, spy: Spy, attempt: Sequence[str], *, online: bool = False,
             tactic_timeout: float = 2.0) -> list[Any]:
    plan = _plan(lib)
    scan = plan.scans[0]
    file = library_file(plan.source, scan.job, ())
    lemmas = tuple(scan.lemmas)
    chunk = FileChunk(file, lemmas, tuple(attempt), 0)
    cfg = RunConfig(split="Tiny-test", backend="coq", workers=0,
                    search=SearchConfig(candidates=8, max_expansions=6, time_budget=60.0),
                    prover=ProverConfig(tactic_timeout=tactic_timeout),
                    library=LibraryConfig(library=str(lib), online_learning=online))
    steps = {lem.key: scan.steps.get(lem.key, []) for lem in lemmas} if online else {}
    return list(LibraryJob(chunk, cfg, steps).run(LibraryContext(spy), 1).results)


def _proof_found(res: Any) -> bool:
    """A proof found by the search and accepted by the in-context check (``library_check``)."""
    rec = res.record
    return rec.proof is not None and rec.status.value == "proved" and rec.check is not None and rec.check.ok


def test_search_starts_in_context_and_never_sees_the_original_proofs(tiny: Path) -> None:
    spy = Spy({"k + 0 = 3": ["rewrite <- plus_n_O", "apply k_is_3"],  # an earlier lemma of the section
               "k = 3": ["apply k_is_3", "assumption"],  # Hk: a section hypothesis
               "nat": ["exact O"], "two = 2": ["reflexivity"],
               "double 0 = 0 /\\ True": ["split; auto"]})  # the Hint of the file
    res = _run_job(tiny, spy, ["A.v:k_is_3", "A.v:k_plus", "A.v:two", "A.v:two_is_2", "A.v:by_hint"])
    by = {r.record.theorem: r for r in res}
    assert set(by) == {"A.v:k_is_3", "A.v:k_plus", "A.v:two", "A.v:two_is_2", "A.v:by_hint"}
    assert all(_proof_found(r) for r in res), [(r.record.theorem, r.record.reason, r.record.check)
                                               for r in res]
    assert by["A.v:k_is_3"].record.proof == ("assumption",)  # k_is_3 is not there before its own proof
    assert by["A.v:k_plus"].record.proof == ("rewrite <- plus_n_O", "apply k_is_3")
    # the search proved ``two`` with ``exact O``; the next lemma sees the ORIGINAL ``two`` (= 2)
    assert by["A.v:two"].record.proof == ("exact O",)
    assert by["A.v:two_is_2"].record.proof == ("reflexivity",)
    rec = by["A.v:k_plus"].record
    assert (rec.library, rec.file, rec.line) == ("Tiny", "A.v", 14)
    seen = "\n".join(spy.seen)
    for secret in SECRETS:
        assert secret not in seen
    assert spy.learned == []  # no online learning asked for


def test_online_learning_hands_over_the_steps_of_earlier_proofs(tiny: Path) -> None:
    spy = Spy({})
    _run_job(tiny, spy, ["A.v:two_is_2"], online=True)
    tactics = [s["tactic"] for s in spy.learned[: spy.learned_at["A.v:two_is_2"]]]
    # every proof before two_is_2, in file order, and nothing of its own or later proofs
    assert tactics == ["reflexivity", "exact Hk", "rewrite <- plus_n_O", "apply k_is_3", "exact (S (S O))"]


def test_a_killed_or_timed_out_coqidetop_is_replaced_and_the_file_replayed(tiny: Path) -> None:
    plan = _plan(tiny)
    scan = plan.scans[0]
    file = library_file(plan.source, scan.job, ())
    lemmas = {lem.key: lem for lem in scan.lemmas}

    def located(lem: Lemma) -> LibraryLemma:
        return LibraryLemma(lem.key, lem.name, lem.start, lem.stmt_end, lem.end)

    with LibrarySession(ProverConfig(tactic_timeout=1), file) as session:
        assert isinstance(session, LibrarySession)
        session.open_lemma(located(lemmas["A.v:k_plus"]))
        th = Theorem("A.v:k_plus", "t", "coq", "", "")
        root = session.start_theorem(th)
        assert "k + 0 = 3" in root.goal_text and "Hk : k = 3" in root.goal_text
        step = session.apply(0, "rewrite <- plus_n_O")
        assert isinstance(step, Advanced)
        top = session._walk.top
        assert top is not None
        os.killpg(top.proc.pid, 9)  # the process dies mid-file
        deadline = time.monotonic() + 30
        while top.ide.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        done = session.apply(step.state_id, "apply k_is_3")  # restored on a fresh process
        assert isinstance(done, ProofFinished)
        assert session.stats()["prefix_replays"] == 1
        hung = session.apply(0, "do 1000000000 idtac")  # never ends: Coq's Timeout, the process is replaced
        assert isinstance(hung, TacticTimeout)
        again = session.apply(0, "rewrite <- plus_n_O")
        assert isinstance(again, Advanced) and session.stats()["prefix_replays"] == 2
        session.finish_lemma()
        session.open_lemma(located(lemmas["A.v:two_is_2"]))  # the walk goes on after the recovery
        session.start_theorem(Theorem("A.v:two_is_2", "t", "coq", "", ""))
        assert isinstance(session.apply(0, "reflexivity"), ProofFinished)
        session.finish_lemma()
        pid = session._walk.top.proc.pid if session._walk.top else None
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _records(out: Path) -> dict[str, dict[str, Any]]:
    return {d["theorem"]: d for d in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


def test_cli_end_to_end_in_process_resume_and_report(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = cli_env(LLEMMA_PROVER_CACHE=os.environ["LLEMMA_PROVER_CACHE"])
    args = ("--library", str(tiny), "--files", "A.v,B.v", "--generator", "bank", "--workers", "0",
            "--time-budget", "10", "--out", str(out))
    got = run_cli(*args, env=env, timeout=300)
    assert got.returncode == 0, got.stderr[-2000:]
    recs = _records(out)
    assert len(recs) == 7
    assert recs["B.v:double_2"]["file"] == "B.v" and recs["B.v:double_2"]["library"] == "Tiny"
    assert recs["A.v:k_is_3"]["proof"]  # the bank closes it with the section hypothesis in context
    assert recs["A.v:k_is_3"]["status"] == "proved" and recs["A.v:k_is_3"]["check"]["ok"]
    proof_file = (out / "proofs" / "A.v_k_is_3.v").read_text()
    assert proof_file.startswith("(* Tiny/A.v:11: proved in its file's context")
    assert "Lemma k_is_3 : k = 3." in proof_file
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["library"]["lemmas"] == list(recs) and cfg["split"] == "Tiny-test"
    # interrupted after two records: the same command resumes with the five others only
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines[:2]))
    again = run_cli(*args, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "2 already done, 5 to run" in again.stderr
    assert len(_records(out)) == 7
    rep = run_cli_report(out, tmp_path / "report", env)
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert (tmp_path / "report" / "report.md").exists()
    path = _cli("trace", "path", str(out), "A.v:k_is_3", env=env)
    assert path.returncode == 0 and "Lemma k_is_3 : k = 3." in path.stdout, path.stderr[-2000:]
    html = _cli("trace", "html", str(out), "--out", str(tmp_path / "html"), env=env)
    assert html.returncode == 0, html.stderr[-2000:]


def _cli(*argv: str, env: dict[str, str]) -> Any:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "llemma_prover.cli.main", *argv], capture_output=True,
                          text=True, timeout=300, env=env)


def run_cli_report(run: Path, out: Path, env: dict[str, str]) -> Any:
    return _cli("report", str(run), "--out", str(out), "--no-plots", env=env)


def test_cli_on_ray(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "ray"
    env = cli_env(LLEMMA_PROVER_CACHE=os.environ["LLEMMA_PROVER_CACHE"])
    got = run_cli("--library", str(tiny), "--files", "A.v", "--generator", "bank", "--workers", "1",
                  "--time-budget", "10", "--lemmas-per-job", "2", "--out", str(out), env=env, timeout=600)
    assert got.returncode == 0, got.stderr[-2000:]
    recs = _records(out)
    assert len(recs) == 6 and recs["A.v:k_is_3"]["proof"]


def test_a_stdlib_file_of_the_test_split(tmp_path: Path) -> None:
    out = tmp_path / "std"
    env = cli_env(LLEMMA_PROVER_CACHE=str(tmp_path / "cache"))
    got = run_cli("--library", "coq-stdlib", "--split", "test", "--files", "setoid_ring/BinList.v",
                  "--limit", "3", "--generator", "bank", "--workers", "0", "--time-budget", "5",
                  "--out", str(out), env=env, timeout=600)
    assert got.returncode == 0, got.stderr[-2000:]
    recs = _records(out)
    assert len(recs) == 3 and all(r["file"] == "setoid_ring/BinList.v" for r in recs.values())
    assert all(r["status"] != "error" for r in recs.values()), recs
    # the conservative rule until the coqdep analysis lands: no automation in the stdlib's own files
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["library_plan"]["files"]["setoid_ring/BinList.v"]["lemmas"] == 6


def test_retrieval_with_online_learning_and_the_contamination_guard(tiny: Path, tmp_path: Path) -> None:
    """bank-free retrieval: the train data knows nothing of ``x + y = y + x``; with online learning the
    original proof of the earlier lemma ``comm1`` (same file) proposes the step that proves ``comm2``."""
    lib = tmp_path / "Comm"
    lib.mkdir()
    (lib / "C.v").write_text("Require Import Arith.\n"
                             "Lemma comm1 (a b : nat) : a + b = b + a.\nProof. apply Nat.add_comm. Qed.\n"
                             "Lemma comm2 (x y : nat) : x + y = y + x.\nProof. apply Nat.add_comm. Qed.\n")
    data = tmp_path / "data"
    data.mkdir()
    other = {"library": "Other", "file": "X.v", "theorem": "t", "statement": "", "step": 0,
             "split": "train", "goals_before": [{"hyps": ["P : Prop"], "concl": "P -> P"}], "tactic": "tauto",
             "goals_after": []}
    (data / "steps.jsonl").write_text(json.dumps(other) + "\n")
    env = cli_env(LLEMMA_PROVER_CACHE=os.environ["LLEMMA_PROVER_CACHE"])
    common = ("--library", str(lib), "--files", "C.v", "--generator", "retrieval", "--retrieval-data",
              str(data), "--workers", "0", "--time-budget", "30")
    off = run_cli(*common, "--out", str(tmp_path / "off"), env=env, timeout=300)
    on = run_cli(*common, "--online-learning", "--out", str(tmp_path / "on"), env=env, timeout=300)
    assert off.returncode == 0 and on.returncode == 0, (off.stderr[-1500:], on.stderr[-1500:])
    assert _records(tmp_path / "off")["C.v:comm2"]["proof"] is None
    rec = _records(tmp_path / "on")["C.v:comm2"]
    assert rec["status"] == "proved" and rec["proof"] == ["apply Nat.add_comm"], rec
    assert rec["extra"]["learned_steps"] == 1
    assert json.loads((tmp_path / "on" / "config.json").read_text())["library"]["online_learning"] is True
    # retrieval data holding a step of a file the run attempts is refused before anything runs
    mine = dict(other, library="Comm", file="C.v")
    (data / "steps.jsonl").write_text(json.dumps(mine) + "\n")
    bad = run_cli(*common, "--out", str(tmp_path / "bad"), env=env, timeout=300)
    assert bad.returncode == 2 and "a file this run attempts" in bad.stderr
    assert not (tmp_path / "bad" / "results.jsonl").exists()


@pytest.mark.model
def test_a_tiny_model_runs_on_library_lemmas(tiny: Path, tmp_path: Path) -> None:
    import torch

    from llemma_prover.lm.synthetic import TINY_LLAMA_SHAPE, save_random_llama

    torch.set_num_threads(1)
    model = save_random_llama(tmp_path / "tiny-llama", TINY_LLAMA_SHAPE, seed=0)
    out = tmp_path / "model-run"
    env = cli_env(LLEMMA_PROVER_CACHE=os.environ["LLEMMA_PROVER_CACHE"])
    got = run_cli("--library", str(tiny), "--files", "A.v", "--limit", "2", "--generator", "llemma",
                  "--model", str(model), "--model-server", "off", "--workers", "0", "--candidates", "2",
                  "--max-expansions", "1", "--max-new-tokens", "8", "--time-budget", "60", "--out", str(out),
                  env=env, timeout=600)
    assert got.returncode == 0, got.stderr[-2000:]
    recs = _records(out)
    assert list(recs) == ["A.v:double_0", "A.v:k_is_3"]
    assert all(r["expansions"] == 1 and r["generator"] == "llemma" for r in recs.values()), recs


def test_extract_only_one_split(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "x"
    argv = ["extract", "--coq-stdlib", "--split", "test", "--match",
            r"Logic/(ProofIrrelevanceFacts|Classical_Prop)\.v$", "--workers", "0", "--skip-contamination",
            "--out", str(out)]
    proc = subprocess.run([sys.executable, "-m", "llemma_prover.cli.main", *argv],
                          capture_output=True, text=True, timeout=600, env=cli_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = {json.loads(line)["file"] for line in (out / "steps.jsonl").read_text().splitlines()}
    assert files == {"Logic/ProofIrrelevanceFacts.v"}  # Classical_Prop.v is a train file


def test_automation_flag_chooses_the_modules_and_needs_library(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "auto"
    env = cli_env(LLEMMA_PROVER_CACHE=os.environ["LLEMMA_PROVER_CACHE"])
    got = run_cli("--library", str(tiny), "--files", "A.v", "--limit", "1", "--generator", "bank",
                  "--workers", "0", "--time-budget", "5", "--automation", "Coq.micromega.Lia",
                  "--out", str(out), env=env, timeout=300)
    assert got.returncode == 0, got.stderr[-2000:]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["library"]["automation"] == ["Coq.micromega.Lia"]
    assert all(r["extra"]["automation"] == ["Coq.micromega.Lia"] for r in _records(out).values())
    bad = run_cli("--automation", "Coq.micromega.Lia", "--theorems", "mathd_algebra_478", "--workers", "0",
                  "--out", str(tmp_path / "bad"), env=env, timeout=120)
    assert bad.returncode == 2 and "--automation needs --library" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_a_file_that_stops_loading_records_the_rest_as_errors(tmp_path: Path) -> None:
    """The walk of a job meets a sentence that does not load (here: the file changed after its scan):
    the lemmas before it are searched, every later one gets an error record; nothing raises."""
    lib = tmp_path / "Brk"
    lib.mkdir()
    good = ("Lemma one : 1 = 1.\nProof. reflexivity. Qed.\n"
            "Definition pad := 0.\n"
            "Lemma two : 2 = 2.\nProof. reflexivity. Qed.\n"
            "Lemma three : 3 = 3.\nProof. reflexivity. Qed.\n")
    (lib / "F.v").write_text(good)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLEMMA_PROVER_CACHE", str(tmp_path / "cache"))
        plan = plan_library(LibraryConfig(library=str(lib), files=("F.v",)), ProverConfig(tactic_timeout=2))
    scan = plan.scans[0]
    # the copy the job walks (the compiled one), changed after the scan: same length, so the spans still
    # fit, but "pad" now refers to a name that does not exist
    Path(scan.job.path).write_text(good.replace("Definition pad := 0.", "Definition pad := q."))
    file = library_file(plan.source, scan.job, ())
    chunk = FileChunk(file, tuple(scan.lemmas), tuple(lem.key for lem in scan.lemmas), 0)
    cfg = RunConfig(split="Brk-test", backend="coq", workers=0,
                    search=SearchConfig(candidates=4, max_expansions=2, time_budget=30.0),
                    prover=ProverConfig(tactic_timeout=2), library=LibraryConfig(library=str(lib)))
    res = LibraryJob(chunk, cfg, {}).run(LibraryContext(Spy({"1 = 1": ["reflexivity"]})), 1).results
    by = {r.record.theorem: r.record for r in res}
    assert list(by) == ["F.v:one", "F.v:two", "F.v:three"]
    assert by["F.v:one"].status.value == "proved"
    for key in ("F.v:two", "F.v:three"):
        assert by[key].status.value == "error" and by[key].reason.value == "start_failed", by[key]
        assert "could not be replayed" in by[key].error and "line 3" in by[key].error
