"""The statement audit: Coq probes (real coqc), the probe generator, manifests, and the CLI end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env

from llemma_prover.backends.coq.audit import ROOT_TACTIC, probe_header, probe_theorem
from llemma_prover.backends.coq.header import prepare_header
from llemma_prover.core.types import Candidate, Theorem
from llemma_prover.data.manifest import (
    DISPUTED,
    Flag,
    build_manifest,
    flagged_summary,
    load_manifest,
    merge_manifest,
    shipped_manifest_path,
    statement_sha256,
)
from llemma_prover.data.minif2f import load_split, shipped_data_dir
from llemma_prover.generators.base import TacticGenerator
from llemma_prover.generators.probe import ProbeGenerator

ZHEADER = "Require Import ZArith.\nRequire Import Lia.\nOpen Scope Z_scope.\n"
#: mathd_numbertheory_293 as miniF2F-rocq states it: true for any n (pick k so that the premise fails)
VACUOUS = ("Theorem vac : forall n : Z, (0 <= n <= 9)%Z -> "
           "exists k : Z, (20 * 100 + 10 * n + 7 = 11 * k)%Z -> n = 5.")
INCONSISTENT = "Theorem inc : forall x : Z, x > 3 -> x < 2 -> x = 7."
#: an honest statement whose conclusion is a negation: (a) must not apply, (b) must not fire
NEGATIVE = "Theorem neg : forall n : Z, n > 2 -> ~ (n = 1)."
HONEST = "Theorem hon : forall x y : Z, x = 1 -> y = x + 1 -> exists z, z = y /\\ z > x."
DEPENDENT = ("Theorem dep : forall (f : Z -> Z), (forall m, f m = m) -> forall n : Z, "
             "exists k : Z, k = f n + 1 -> n = 5.")


def thm(statement: str, name: str) -> Theorem:
    return Theorem(name=name, split="dataset", system="coq", header=ZHEADER, statement=statement)


def coqc(tmp_path: Path, probe: str, statement: str, body: str) -> tuple[bool, str]:
    if shutil.which("coqc") is None:
        pytest.skip("coqc not installed")
    text = prepare_header(probe_header(ZHEADER, probe)) + "\n" + statement + "\nProof.\n" + body + "\n"
    (tmp_path / "P.v").write_text(text, encoding="utf-8")
    proc = subprocess.run(["coqc", "-q", "P.v"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    return proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.coq
@pytest.mark.parametrize(
    ("probe", "statement", "body", "ok"),
    [
        # (a) the goal after the probe is the statement with False as its conclusion: provable here
        ("vacuous", VACUOUS, "llemma_probe.\nintros n Hn. exists 0. lia.\nQed.", True),
        # ... and it really is False: the old conclusion n = 5 is gone (n = 5 is not provable from it)
        ("vacuous", VACUOUS, "llemma_probe.\nintros n Hn. exists 0. intros H. Fail (assert (n = 5) by lia; "
                             "exact I). lia.\nQed.", True),
        # binders are renamed apart: a dependent statement with a function and a later forall
        ("vacuous", DEPENDENT, "llemma_probe.\nintros f Hf n. exists (f n). rewrite Hf. lia.\nQed.", True),
        # an honest existential: the probe goal (exists z, False) is not provable
        ("vacuous", HONEST, "llemma_probe.\nintros x y Hx Hy. exists y. Fail lia. Abort.", True),
        # a negated conclusion: the vacuity probe refuses to run (it would be the statement itself)
        ("vacuous", NEGATIVE, "Fail llemma_probe. Abort.", True),
        # (b) False from the hypotheses alone
        ("inconsistent", INCONSISTENT, "llemma_probe.\nlia.\nQed.", True),
        # the negation's premise n = 1 is not introduced: False from n > 2 alone is not provable
        ("inconsistent", NEGATIVE, "llemma_probe.\nFail lia. Abort.", True),
        ("inconsistent", NEGATIVE, "llemma_probe.\nmatch goal with |- False => idtac end. Abort.", True),
    ],
)
def test_probe_tactics_on_real_coq(tmp_path: Path, probe: str, statement: str, body: str, ok: bool) -> None:
    good, log = coqc(tmp_path, probe, statement, body)
    assert good is ok, log[-2000:]


def test_probe_theorem_keeps_statement_and_adds_only_tactics() -> None:
    t = thm(VACUOUS, "vac")
    p = probe_theorem(t, "vacuous")
    assert p.statement == t.statement and p.name == "vac__vacuous"
    added = p.header[len(t.header):]
    assert p.header.startswith(t.header) and "Ltac llemma_probe := llemma_vacuous." in added
    # tactics only: nothing that could add a definition, axiom or notation to the environment
    for word in ("Axiom", "Parameter", "Definition", "Notation", "Require", "Hypothesis", "Variable"):
        assert word not in added, word


class _Inner(TacticGenerator):
    name = "inner"

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        return [Candidate("lia.", -1.0), Candidate("eexists.", -2.0)][:k]


def test_probe_generator_fixes_the_first_step() -> None:
    g = ProbeGenerator(_Inner(), ROOT_TACTIC, ("eexists.", "exists 0%Z."))
    assert [c.tactic for c in g.generate_at("goal", 8, 0)] == [ROOT_TACTIC]
    below = [c.tactic for c in g.generate_at("goal", 8, 1)]
    assert below[:2] == ["eexists.", "exists 0%Z."] and "lia." in below and len(below) == 3
    assert g.describe()["root_tactic"] == ROOT_TACTIC and g.name == "inner"


def test_manifest_flags_follow_the_statement_and_merge(tmp_path: Path) -> None:
    a, b, c = thm(VACUOUS, "vac"), thm(INCONSISTENT, "inc"), thm(NEGATIVE, "neg")
    m = build_manifest("coq", "dataset", [a, b, c], {"vac": [Flag("vacuous", "test", ("llemma_probe.",))]},
                       {"date": "x"})
    assert m.flagged([a, b, c]) == {"vac": ("vacuous",)}
    changed = Theorem(**{**a.__dict__, "statement": a.statement.replace("n = 5", "n = 6")})
    assert statement_sha256(changed) != statement_sha256(a) and m.flagged([changed]) == {}
    path = tmp_path / "m.json"
    path.write_text(m.to_json())
    back = load_manifest(path)
    assert back == m and back.by_name["vac"].flags[0].proof == ("llemma_probe.",)
    # a later partial audit of inc only keeps vac's flag and adds inc's
    inc_flag = Flag("inconsistent", "t2", ("llemma_probe.", "lia."))
    later = build_manifest("coq", "dataset", [b], {"inc": [inc_flag]}, {"date": "y"})
    merged = merge_manifest(back, later, [a, b, c])
    assert merged.flagged([a, b, c]) == {"vac": ("vacuous",), "inc": ("inconsistent",)}
    assert [r["date"] for r in merged.audit["runs"]] == ["y"]
    assert flagged_summary(["vac", "neg"], ["vac", "inc", "neg"], {"vac": ["vacuous"]}) == \
        "2/3; 1/2 excluding 1 flagged"


def test_shipped_manifests_cover_every_statement() -> None:
    for system in ("coq", "lean4", "isabelle"):
        for split in ("test", "valid"):
            m = load_manifest(shipped_manifest_path(system, split))
            ds = load_split(shipped_data_dir(), system, split)
            assert [e.name for e in m.entries] == ds.names()
            assert all(e.sha256 == statement_sha256(t) for e, t in zip(m.entries, ds.theorems, strict=True))
            disputed = {e.name for e in m.entries if any(f.kind == "disputed" for f in e.flags)}
            assert disputed == set(DISPUTED.get((system, split), ()))
            for run in (m.audit or {}).get("runs", []):  # no path of the machine that ran it
                assert not any(w.startswith(("/", "~")) for w in run["command"].split()), run["command"]
            for e in m.entries:  # every probe flag carries the proof that justified it
                for f in e.flags:
                    assert f.kind != "vacuous" and f.kind != "inconsistent" or \
                        (f.proof and f.proof[0] == ROOT_TACTIC), e


@pytest.mark.coq
@pytest.mark.slow
def test_audit_cli_on_a_dataset_end_to_end(tmp_path: Path) -> None:
    records = [{"name": n, "header": ZHEADER, "statement": s} for n, s in
               (("vac", VACUOUS), ("inc", INCONSISTENT), ("neg", NEGATIVE),
                ("bad", "Theorem bad : forall x : nat, x = true."))]
    data = tmp_path / "four.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "audit"
    cmd = [sys.executable, "-m", "llemma_prover.cli.main", "audit", "--dataset", str(data), "--workers", "0",
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=cli_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = load_manifest(out / "manifest.json")
    kinds = {e.name: [f.kind for f in e.flags] for e in m.entries}
    # inconsistent hypotheses make any conclusion provable: such a statement is vacuous too
    expected = {"vac": ["vacuous"], "inc": ["vacuous", "inconsistent"], "neg": [], "bad": ["ill-typed"]}
    assert kinds == expected, kinds
    # each probe flag's proof passed the independent check in the search's run folder
    lines = (out / "search" / "results.jsonl").read_text().splitlines()
    recs = {r["theorem"]: r for r in map(json.loads, lines)}
    for name, probe in (("vac", "vacuous"), ("inc", "inconsistent")):
        rec = recs[f"{name}__{probe}"]
        assert rec["status"] == "proved" and rec["check"]["ok"] is True and rec["proof"][0] == ROOT_TACTIC
        flag = next(f for f in m.by_name[name].flags if f.kind == probe)
        assert list(flag.proof) == rec["proof"]
    assert recs["neg__vacuous"]["status"] == "failed" and recs["neg__inconsistent"]["status"] == "failed"
    assert "vacuous" in (out / "audit.md").read_text()


@pytest.mark.coq
def test_prove_and_report_count_over_unflagged_statements(tmp_path: Path) -> None:
    """config.json records the manifest (file, sha256, the flags of the theorems run); the summary of
    ``prove`` and ``report`` counts solved theorems over all and over the unflagged ones."""
    from conftest import run_cli

    from llemma_prover.data.manifest import manifest_sha256

    out = tmp_path / "run"
    proc = run_cli("--generator", "bank", "--workers", "0", "--out", str(out),
                   "--theorems", "mathd_algebra_107,mathd_numbertheory_293", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = json.loads((out / "config.json").read_text())
    shipped = shipped_manifest_path("coq", "test")
    assert cfg["manifest"]["sha256"] == manifest_sha256(shipped)
    assert "disputed" in cfg["manifest"]["flagged"]["mathd_numbertheory_293"]
    assert list(cfg["manifest"]["flagged"]) == ["mathd_numbertheory_293"]
    recs = {r["theorem"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    solved = sum(r["status"] == "proved" for r in recs.values())
    unflagged = int(recs["mathd_algebra_107"]["status"] == "proved")
    line = f"{solved}/2; {unflagged}/1 excluding 1 flagged"
    assert f"solved: {line}" in proc.stdout
    rep = subprocess.run([sys.executable, "-m", "llemma_prover.cli.main", "report", str(out), "--no-plots"],
                         capture_output=True, text=True, timeout=300, env=cli_env())
    assert rep.returncode == 0 and line in rep.stdout, rep.stderr


def test_audit_without_probes_for_the_backend_is_one_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "llemma_prover.cli.main", "audit", "--backend", "lean4",
                           "--out", str(tmp_path / "a")], capture_output=True, text=True, timeout=120,
                          env=cli_env())
    assert proc.returncode == 2 and "no audit probes for --backend lean4" in proc.stderr, proc.stderr
    assert not (tmp_path / "a").exists()


def test_portable_argv_drops_machine_paths() -> None:
    from llemma_prover.cli.audit_cmd import portable_argv

    argv = ["--out", "/tmp/x", "--split", "minif2f-valid", "--dataset=/a/b.jsonl", "--limit", "3",
            "--proofs-from", "runs/a"]
    assert portable_argv(argv) == \
        ["--out", "...", "--split", "minif2f-valid", "--dataset=...", "--limit", "3", "--proofs-from", "..."]


def _shipped_probe_flags() -> list[tuple[str, str, str]]:
    out = []
    for split in ("test", "valid"):
        m = load_manifest(shipped_manifest_path("coq", split))
        out += [(split, e.name, f.kind) for e in m.entries for f in e.flags
                if f.kind in ("vacuous", "inconsistent")]
    return out


@pytest.mark.coq
@pytest.mark.slow
@pytest.mark.parametrize(("split", "name", "kind"), _shipped_probe_flags())
def test_every_shipped_probe_flag_recompiles_with_plain_coqc(tmp_path: Path, split: str, name: str,
                                                              kind: str) -> None:
    """A flag is only as good as its proof: each shipped vacuous/inconsistent flag's proof, written as the
    check writes it (no wall-clock wrapper), compiles with plain ``coqc`` here, on the shipped statement
    under the probe header of its kind -- nothing from the search that found it is needed."""
    from llemma_prover.backends.coq.recheck import final_tactics, proof_file

    if shutil.which("coqc") is None:
        pytest.skip("coqc not installed")
    theorem = {t.name: t for t in load_split(shipped_data_dir(), "coq", split).theorems}[name]
    entry = {e.name: e for e in load_manifest(shipped_manifest_path("coq", split)).entries}[name]
    (flag,) = [f for f in entry.flags if f.kind == kind]
    assert entry.sha256 == statement_sha256(theorem) and flag.proof and flag.proof[0] == ROOT_TACTIC
    probe = probe_theorem(theorem, kind)
    # the recorded artifact itself carries no wall-clock wrapper (the search's timeouts are not in it)
    assert not any(t.lstrip().startswith("timeout") for t in flag.proof), flag.proof
    tactics = final_tactics(flag.proof)
    (tmp_path / "P.v").write_text(proof_file(prepare_header(probe.header), probe.statement, tactics,
                                             probe.footer), encoding="utf-8")
    proc = subprocess.run(["coqc", "-q", "P.v"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_old_run_is_also_counted_against_todays_shipped_manifest() -> None:
    """After an audit changes the shipped manifest, ``report`` on an older run adds a line against
    today's flags -- only when the run read the same shipped statements (its data_hash)."""
    from llemma_prover.data.manifest import manifest_sha256, shipped_flags_now

    data = load_split(shipped_data_dir(), "coq", "test")
    now = manifest_sha256(shipped_manifest_path("coq", "test"))
    old = {"split": "minif2f-test", "backend": "coq", "data_hash": data.sha256,
           "manifest": {"sha256": "0" * 64, "flagged": {}}}
    got = shipped_flags_now(old)
    assert got is not None and got[0] == now
    assert got[1] == {n: list(k) for n, k in load_manifest(shipped_manifest_path("coq", "test"))
                      .flagged(data.theorems).items()}
    assert "mathd_numbertheory_293" in got[1]
    assert shipped_flags_now({**old, "manifest": {"sha256": now}}) is None  # unchanged since the run
    assert shipped_flags_now({**old, "data_hash": "f" * 64}) is None  # other statements: no claim
    assert shipped_flags_now({**old, "split": "dataset"}) is None
