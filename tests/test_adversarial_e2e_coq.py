"""Issue 10 end to end: every attack class through ``prove --generator replay`` on real coqtop/coqc.

The data set is built here (never shipped): false statements in the miniF2F JSONL shape, in a
temporary ``--data-dir``. The replay file offers, for each theorem, the attacks of every class named
in issue 10 -- lexer mismatches (``...`` and strings in comments), printed fake text (prompts,
``No more goals.``, ``Closed under the global context``), axiom-audit tricks (stdlib short names,
shadowing modules), ``Unset Guard Checking``, file writes (``Redirect``, ``Extraction``, ``Cd``, into
the run directory's ``config.json`` too), huge output and desync floods. Whatever the step layer makes
of them, the run must record zero ``proved``, write nothing outside the provers' private directories
(checked on the file system: unique marker names searched for, ``config.json`` still the run's own
JSON, no stray ``.vo``) and leave no process behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import ProcessWatcher, cli_command, cli_env

pytestmark = pytest.mark.coq

#: (name, header, statement): all false
FALSE_THEOREMS = [
    ("false_1", "", "Theorem false_1 : 1 = 2."),
    ("false_2", "", "Theorem false_2 : False."),
    ("false_3", "", "Theorem false_3 : forall n : nat, n < n."),
    ("false_4", "Require Import Reals.\nOpen Scope R_scope.\n", "Theorem false_4 : forall x : R, x = x + 1."),
    ("false_5", "Definition g (n : nat) := S n.\n", "Theorem false_5 (n : nat) : g n = n."),
]

#: Coq ends a sentence at "..." followed by a blank; a lexer that does not sees one sentence
DOTS = "pose (m := 0)... "


def _comment(vernac: str) -> str:
    """Coq reads strings inside comments: ``(* "(*" *)`` is closed for Coq, open for a naive lexer."""
    return f'idtac (* "(*" *). {vernac}. (* "*)" *)'


def attacks(name: str, marker: str, out: Path, elsewhere: Path) -> list[list[str]]:
    """Tactic lists for theorem ``name`` (each list is offered as one 'proof', depth by depth)."""
    return [
        # lexer mismatches smuggling vernacular
        [DOTS + "Axiom plus_n_O : False", "exfalso; exact plus_n_O"],
        [DOTS + "Axiom plus_n_O : ltac:(do 30000 idtac; exact False)", "exfalso; exact plus_n_O"],
        [_comment("Admitted")],
        [_comment("Axiom cheat : False"), "exfalso; exact cheat"],
        [DOTS + "Admitted"],
        [DOTS + "Abort"],
        # shadowing the theorem by name
        [DOTS + f"Admitted. Module M. Theorem {name} : True. Proof. exact I. Qed. End M. Import M"],
        [DOTS + f"Abort. Theorem {name} : True. Proof. exact I. Qed"],
        # Guard Checking, positivity, universes
        [DOTS + "Unset Guard Checking", "exfalso; exact ((fix f (n : nat) : False := f n) 0)"],
        [DOTS + "Unset Universe Checking", "exfalso"],
        # printed fake text
        ['idtac "</infomsg>No more goals.<infomsg>"'],
        [f'idtac "<prompt>{name} < 99 |{name}| 0 < </prompt>"'],
        ['idtac "No more goals."'],
        ['idtac "Closed under the global context"', "admit"],
        [DOTS + 'Fail idtac "No more goals."'],
        ['idtac "CONTEXT SUMMARY"; idtac "* Axioms: <none>"'],
        # file writes: markers outside the private directory, the run's config.json, Cd
        [DOTS + f'Redirect "{elsewhere}/{marker}_redirect" Print nat'],
        [DOTS + f'Redirect "{out}/config" Print nat'],
        [DOTS + "Require Extraction", DOTS + f'Extraction "{elsewhere}/{marker}_extract.ml" nat'],
        [DOTS + "Require Extraction", DOTS + f'Extraction "{out}/config.json" nat'],
        [DOTS + f'Cd "{elsewhere}"', DOTS + f'Redirect "{marker}_after_cd" Print nat'],
        [DOTS + f'Cd "{out}"'],
        # huge output (capped in bytes and time) and desync floods (one bad candidate costs one)
        ['do 1000000 idtac "' + "x" * 200 + '"'],
        *([DOTS + f"idtac {i}"] for i in range(15)),
        [DOTS + "idtac. idtac. idtac"],
    ]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_attack_corpus_end_to_end_proves_nothing_and_writes_nothing(tmp_path: Path) -> None:
    marker = "llemma-adv-" + uuid.uuid4().hex
    data = tmp_path / "data"
    (data / "coq").mkdir(parents=True)
    rows = [{"name": n, "split": "test", "header": h, "statement": s} for n, h, s in FALSE_THEOREMS]
    (data / "coq" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before_elsewhere = _tree(elsewhere)
    replay = tmp_path / "attacks.jsonl"
    lines = [
        json.dumps({"theorem": n, "tactics": tactics})
        for n, _, _ in FALSE_THEOREMS
        for tactics in attacks(n, marker, out, elsewhere)
    ]
    replay.write_text("\n".join(lines) + "\n")
    n_attacks = len(attacks("x", marker, out, elsewhere))
    cmd = cli_command(
        "--generator", "replay", "--replay-file", str(replay), "--data-dir", str(data),
        "--split", "minif2f-test", "--workers", "0", "--out", str(out),
        "--candidates", str(n_attacks + 8), "--max-expansions", "3", "--time-budget", "150",
        "--tactic-timeout", "3",
    )  # fmt: skip
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                            cwd=cwd)
    watcher = ProcessWatcher(proc.pid)
    try:
        stdout, stderr = proc.communicate(timeout=1500)
    finally:
        watcher.stop()
    assert proc.returncode == 0, stderr[-3000:]
    assert watcher.matching("coq") and watcher.matching("bwrap"), "the run did not use sandboxed Coq"
    assert watcher.alive("coq", timeout=10) == [], "a Coq process was left behind"
    assert watcher.alive("bwrap", timeout=10) == [], "a sandbox was left behind"

    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    assert {r["theorem"] for r in records} == {n for n, _, _ in FALSE_THEOREMS}
    proved = [r["theorem"] for r in records if r["status"] == "proved" or (r["check"] or {}).get("ok")]
    assert proved == [], f"false statements recorded as proved: {proved}"
    assert all(r["extra"]["attempts"] >= 1 for r in records)

    # nothing written outside the private directories
    cfg = json.loads((out / "config.json").read_text())  # still the run's own, parseable config
    assert cfg["sandbox"]["mechanism"] == "bwrap" and cfg["sandbox"]["filesystem_confined"] is True
    assert not (out / "config.out").exists() and not list(out.rglob("*.ml"))
    for tree in (tmp_path, Path("/tmp"), Path(os.environ.get("HOME", "/root"))):
        hits = [str(p) for p in tree.glob(f"**/{marker}*")] if tree == tmp_path else [
            str(p) for p in tree.glob(f"{marker}*")
        ]
        assert hits == [], f"a prover wrote outside its private directory: {hits}"
    assert _tree(elsewhere) == before_elsewhere
    assert list(cwd.iterdir()) == []
    stray = [str(p) for p in tmp_path.rglob("*") if p.suffix in (".vo", ".vok", ".vos", ".glob", ".aux")]
    assert stray == [], stray
