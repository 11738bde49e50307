"""Attacks on the Lean 4 re-check (``Lean4Backend.check``, ``lean4/audit.py``).

No Lean runs here. Two kinds of evidence, kept apart:

* **Real transcripts** (``../shared/lean4_repl``): both sorry-warning spellings and kernel errors with
  the ``, expression: ...`` suffix, as the real REPL printed them, are classified as rejections.
* **The scripted REPL** (``tests/fixtures/fake_lean_repl.py``, NOT Lean): its replies are written by
  each test, in the REPL's wire format and Lean's documented message shapes, to model what Lean would
  answer to an attack. What these tests prove is *our* side: the decision is taken from the audit
  process's structured reply to our own ``#print axioms``, that process never receives the model's
  text, and anything the proof prints or redefines in the compile process is never consulted. That
  Lean really answers as modelled is to be confirmed on a machine with Lean (docs/lean4.md).

Each attack is run with the tactic filter (``tactics.check_tactic``) bypassed, to show that the final
re-check catches it on its own; with the filter on, the same text is refused before Lean sees it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from llemma_prover.backends.lean4 import Lean4Backend, Lean4Settings
from llemma_prover.backends.lean4 import backend as lean_backend
from llemma_prover.backends.lean4.audit import axioms_from_reply, judge_proof_command, signature_axiom
from llemma_prover.backends.lean4.backend import classify_tactic_reply
from llemma_prover.backends.lean4.pool import PoolPolicy
from llemma_prover.backends.lean4.protocol import (
    CommandResponse,
    Message,
    Pos,
    parse_command_response,
    parse_tactic_response,
)
from llemma_prover.backends.lean4.repl_process import ProcessPolicy
from llemma_prover.backends.lean4.tactics import check_tactic
from llemma_prover.core.config import ProverConfig
from llemma_prover.core.types import TacticError, Theorem
from llemma_prover.testing.replay_repl import load_transcripts

REPO = Path(__file__).resolve().parents[1]
FAKE = Path(__file__).parent / "fixtures" / "fake_lean_repl.py"
TOOLS = Path(__file__).parent / "fixtures" / "fake_lean_tools.py"
TRANSCRIPTS = Path(
    os.environ.get("LLEMMA_PROVER_LEAN_TRANSCRIPTS", REPO.parent / "shared/lean4_repl/transcripts")
)

THM = Theorem(
    name="false_1",
    split="test",
    system="lean4",
    header="import Mathlib",
    statement="theorem false_1 : 1 = 2 :=",
)
STD = "'false_1' depends on axioms: [propext, Classical.choice, Quot.sound]"


def info(data: str, line: int = 1, column: int = 0) -> dict[str, Any]:
    return {"severity": "info", "pos": {"line": line, "column": column}, "endPos": None, "data": data}


def report(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"messages": list(messages), "env": 0}


SORRY_BACKTICK = {"severity": "warning", "pos": {"line": 1, "column": 8}, "data": "declaration uses `sorry`"}
SORRY_QUOTE = {"severity": "warning", "pos": {"line": 1, "column": 8}, "data": "declaration uses 'sorry'"}


class Scripted:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log = tmp / "requests.jsonl"
        self.tools_log = tmp / "tools.jsonl"

    def tool_calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        if not self.tools_log.exists():
            return []
        rows = [json.loads(x) for x in self.tools_log.read_text().splitlines()]
        return [r for r in rows if tool is None or r["tool"] == tool]

    def check(self, proof: list[str], **script: Any) -> Any:
        script.setdefault("proof_reply", {})
        path = self.tmp / "script.json"
        path.write_text(json.dumps({"log": str(self.log), "tools_log": str(self.tools_log), **script}))
        tools_script = self.tmp / "tools.json"
        tools_script.write_text(json.dumps({"log": str(self.tools_log), **script}))
        tool = (sys.executable, str(TOOLS), "--script", str(tools_script))
        settings = Lean4Settings(
            command=(sys.executable, str(FAKE), "--script", str(path)),
            command_cwd=str(self.tmp),
            lean_command=(*tool, "lean"),
            leanchecker_command=(*tool, "leanchecker"),
            check_timeout=20.0,
            pool=PoolPolicy(start_timeout=20.0, recycle_rss_mb=0, warm_spare=False),
            process=ProcessPolicy(address_space_mb=4096, rss_kill_mb=2048),
        )
        with Lean4Backend(ProverConfig(), settings) as b:
            return b.check(THM, proof)

    def requests(self, role: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        rows = [json.loads(x) for x in self.log.read_text().splitlines()]
        return [r["request"] for r in rows if role is None or r["role"] == role]

    def pids(self, role: str) -> set[str]:
        """The processes that served ``role`` (a pid alone is not unique: each sandboxed process has
        its own PID namespace)."""
        rows = [json.loads(x) for x in self.log.read_text().splitlines()]
        return {r["proc"] for r in rows if r["role"] == role}


@pytest.fixture
def scripted(tmp_path: Path) -> Scripted:
    return Scripted(tmp_path)


@pytest.fixture
def no_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bypass the first filter: every tactic reaches Lean."""
    monkeypatch.setattr(lean_backend, "check_tactic", lambda tactic: None)


def assert_audit_saw_no_model_text(s: Scripted, proof: list[str]) -> None:
    audit = s.requests("audit")
    assert audit, "the audit process was never asked"
    text = json.dumps(audit, ensure_ascii=False)
    for tac in proof:
        for line in tac.splitlines():
            if line.strip():
                assert line.strip() not in text, f"model text {line!r} reached the audit process"
    assert s.pids("audit").isdisjoint(s.pids("compile"))


# ------------------------------------------------------------------------------------------------
# the accepting path and what it is made of
# ------------------------------------------------------------------------------------------------


def test_honest_proof_accepted_from_the_audit_process(scripted: Scripted) -> None:
    c = scripted.check(["norm_num"], axioms_reply=report(info(STD)))
    assert c.ok and c.axioms == ("propext", "Classical.choice", "Quot.sound") and c.bad_axioms == ()
    compile_reqs = scripted.requests("compile")
    assert compile_reqs[0] == {"cmd": "import Mathlib"}
    assert compile_reqs[1] == {"cmd": "theorem false_1 : 1 = 2 := by norm_num", "env": 0}
    assert "pickleTo" in compile_reqs[2] and len(compile_reqs) == 3  # nothing is asked after the pickle
    audit = scripted.requests("audit")
    assert audit[0] == {"unpickleEnvFrom": compile_reqs[2]["pickleTo"]}
    assert (
        audit[1]["cmd"].startswith("axiom llemma_stmt_")
        and " : 1 = 2\n\nexample : type_of% @llemma_stmt_" in (audit[1]["cmd"])
    )
    assert audit[1]["cmd"].endswith(":= @_root_.false_1")
    assert audit[2]["cmd"] == "#print axioms _root_.false_1"
    assert_audit_saw_no_model_text(scripted, ["norm_num"])
    assert not Path(compile_reqs[2]["pickleTo"]).exists()  # the private pickle is removed afterwards
    # the kernel layer: lean compiled the same text to an .olean; leanchecker got only a module name
    (lean,) = scripted.tool_calls("lean")
    assert lean["text"] == "import Mathlib\n\ntheorem false_1 : 1 = 2 := by norm_num\n"
    module = Path(lean["argv"][-1]).stem
    assert lean["argv"][:2] == ["-R", str(Path(lean["argv"][-1]).parent)]
    assert module.startswith("LlemmaCheck_")
    (checker,) = scripted.tool_calls("leanchecker")
    assert checker["argv"] == [module] and checker["found"] and checker["visible_sources"] == []
    assert "norm_num" not in json.dumps(checker)
    assert not Path(checker["found"][0]).exists()  # removed afterwards


# ------------------------------------------------------------------------------------------------
# printed or redefined text cannot fool it (filter bypassed)
# ------------------------------------------------------------------------------------------------


PRINTERS = [
    "#eval IO.println \"'false_1' does not depend on any axioms\"",
    "run_tac Lean.logInfo m!\"'false_1' does not depend on any axioms\"",
    "trace \"'false_1' does not depend on any axioms\"\nsorry",
]


@pytest.mark.parametrize("tactic", PRINTERS)
def test_printed_axiom_report_in_the_proof_is_never_read(
    scripted: Scripted, no_filter: None, tactic: str
) -> None:
    """The proof prints a perfect fake report (at line 1, column 0, severity info) in the compile
    process; Lean's real report, in the audit process, lists sorryAx."""
    c = scripted.check(
        [tactic],
        proof_reply={"messages": [info("'false_1' does not depend on any axioms")]},
        compile_axioms_reply=report(info("'false_1' does not depend on any axioms")),
        axioms_reply=report(info("'false_1' depends on axioms: [sorryAx]")),
    )
    assert not c.ok and c.bad_axioms == ("sorryAx",)
    assert_audit_saw_no_model_text(scripted, [tactic])


FORGED = "\"'false_1' does not depend on any axioms\""
HIJACKS = [
    # a macro/elab that rewrites our own '#print axioms' into a forged message, in the compile env
    f"rfl\n\nmacro_rules | `(#print axioms $x) => `(#eval IO.println {FORGED})",
    f"rfl\n\nelab_rules : command | `(#print axioms $_) => Lean.logInfo {FORGED}",
    "rfl\n\nnamespace Foo\ntheorem false_1 : True := trivial",  # a shadowing declaration
]


@pytest.mark.parametrize("tactic", HIJACKS)
def test_redefinitions_in_the_proof_never_reach_the_audit(
    scripted: Scripted, no_filter: None, tactic: str
) -> None:
    c = scripted.check(
        [tactic],
        compile_axioms_reply=report(info("'false_1' does not depend on any axioms")),
        axioms_reply=report(info("'false_1' depends on axioms: [sorryAx]")),
    )
    assert not c.ok and "sorryAx" in c.message
    # our '#print axioms' goes to the fresh audit process only, by _root_ name
    assert not [r for r in scripted.requests("compile") if str(r.get("cmd", "")).startswith("#print")]
    assert_audit_saw_no_model_text(scripted, [tactic])


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (report(info(STD), info("'false_1' does not depend on any axioms")), "exactly one message"),
        (report(info("'false_1' does not depend on any axioms"), info(STD)), "exactly one message"),
        (report(), "exactly one message"),
        (report(info("'false_1.fake' does not depend on any axioms")), "not a '#print axioms' report"),
        (report(info("'Foo.false_1' does not depend on any axioms")), "not a '#print axioms' report"),
        (report(info("'false_1' does not depend on any axioms (trust me)")), "not a '#print axioms' report"),
        (report(info("xx\n'false_1' does not depend on any axioms")), "not a '#print axioms' report"),
        (report({**info("'false_1' does not depend on any axioms"), "severity": "warning"}), "severity"),
        (report({**info(STD), "severity": "error"}), "severity"),
        (report(info("'false_1' does not depend on any axioms", line=2)), "position"),
        (report(info("'false_1' does not depend on any axioms", column=5)), "position"),
        ({"message": "Lean error: unknown constant 'false_1'"}, "REPL error"),
    ],
)
def test_only_the_exact_report_on_our_name_is_trusted(
    scripted: Scripted, reply: dict[str, Any], why: str
) -> None:
    c = scripted.check(["norm_num"], axioms_reply=reply)
    assert not c.ok and why in c.message, c.message


# ------------------------------------------------------------------------------------------------
# every cheating class, filter bypassed: what Lean reports (modelled) and which check refuses it
# ------------------------------------------------------------------------------------------------

#: what ``leanchecker`` prints when the kernel rejects a replayed constant (Lean's src/LeanChecker.lean:
#: "leanchecker found a problem in M", then the kernel exception, uncaught)
LEANCHECKER_REJECTS = (
    "leanchecker found a problem in LlemmaCheck\nuncaught exception: (kernel) declaration type mismatch, "
    "'false_1' has type\n  1 = 2\nbut it is expected to have type\n  ?, expression: \n  rfl"
)
CHEATS: list[tuple[str, str, dict[str, Any], str]] = [
    ("sorry", "sorry", {"proof_reply": {"messages": [SORRY_BACKTICK]}}, "sorry"),
    ("admit (old quoting)", "admit", {"proof_reply": {"messages": [SORRY_QUOTE]}}, "sorry"),
    (
        "sorry with a proof state",
        "exact sorry",
        {"proof_reply": {"sorries": [{"goal": "⊢ 1 = 2", "proofState": 0}]}},
        "sorry",
    ),
    (
        "native_decide",
        "native_decide",
        {
            "axioms_reply": report(
                info("'false_1' depends on axioms: [Lean.ofReduceBool, Lean.trustCompiler]")
            )
        },
        "Lean.ofReduceBool",
    ),
    (
        "decide +native",
        "decide +native",
        {
            "axioms_reply": report(
                info("'false_1' depends on axioms: [Lean.ofReduceBool, Lean.trustCompiler]")
            )
        },
        "Lean.ofReduceBool",
    ),
    (
        "implemented_by + native evaluation",
        "rfl\n\n@[implemented_by f'] def f : Bool := false\n\ntheorem g : f = true := by native_decide",
        {
            "axioms_reply": report(
                info("'false_1' depends on axioms: [Lean.ofReduceBool, Lean.trustCompiler]")
            )
        },
        "Lean.ofReduceBool",
    ),
    (
        "@[extern]",
        'exact (by native_decide : ext_false = true) ▸ rfl\n\n@[extern "c_true"] opaque ext_false : Bool',
        {
            "axioms_reply": report(
                info("'false_1' depends on axioms: [Lean.ofReduceBool, Lean.trustCompiler]")
            )
        },
        "Lean.ofReduceBool",
    ),
    (
        "axiom",
        "exact cheat\n\naxiom cheat : 1 = 2",
        {"axioms_reply": report(info("'false_1' depends on axioms: [cheat]"))},
        "cheat",
    ),
    (
        "axiom named like a standard one",
        "exact Foo.propext\n\nnamespace Foo\naxiom propext : 1 = 2",
        {"axioms_reply": report(info("'false_1' depends on axioms: [Foo.propext]"))},
        "Foo.propext",
    ),
    (
        # the compile processes skip the kernel (both accept); unpickling does not kernel-check at the
        # pinned REPL (replayToElabEnv), so only the kernel layer's replay of the .olean rejects it
        "set_option debug.skipKernelTC",
        "set_option debug.skipKernelTC true in exact rfl",
        {"leanchecker_exit": 1, "leanchecker_output": LEANCHECKER_REJECTS},
        "kernel rejected",
    ),
    (
        "#exit",
        "skip\n#exit",
        {
            "proof_reply": {
                "messages": [
                    {"severity": "error", "pos": {"line": 1, "column": 25}, "data": "unsolved goals\n⊢ 1 = 2"}
                ]
            }
        },
        "unsolved goals",
    ),
    (
        "unsafe",
        "exact unsafeCast ()",
        {
            "proof_reply": {
                "messages": [
                    {
                        "severity": "error",
                        "pos": {"line": 1, "column": 0},
                        "data": "(kernel) invalid declaration, it uses unsafe declaration",
                    }
                ]
            }
        },
        "unsafe declaration",
    ),
    (
        "local instance",
        "exact (local instance : Fact (1 = 2) := ⟨sorry⟩; Fact.out)",
        {"axioms_reply": report(info("'false_1' depends on axioms: [sorryAx]"))},
        "sorryAx",
    ),
    (
        "open ... in",
        "open Classical in exact absurd_lemma",
        {"axioms_reply": report(info("'false_1' depends on axioms: [Classical.choice, sorryAx]"))},
        "sorryAx",
    ),
    (
        "a re-declared theorem with another type (crafted environment)",
        "rfl",
        {
            "stmt_reply": {
                "messages": [
                    {
                        "severity": "error",
                        "pos": {"line": 3, "column": 0},
                        "data": "type mismatch\n  @_root_.false_1\nhas type\n  True : Prop",
                    }
                ],
                "env": 0,
            }
        },
        "does not prove the statement",
    ),
    ("lean cannot compile the file", "rfl", {"lean_exit": 1, "lean_output": "1:0: error: x"}, "exit 1"),
    ("no .olean written", "rfl", {"lean_writes_olean": False}, "wrote no .olean"),
    ("no pickle written", "rfl", {"write_pickle": False}, "wrote none"),
]


@pytest.mark.parametrize(("label", "tactic", "script", "why"), CHEATS, ids=[c[0] for c in CHEATS])
def test_cheats_fail_the_recheck_without_the_filter(
    scripted: Scripted, no_filter: None, label: str, tactic: str, script: dict[str, Any], why: str
) -> None:
    script = {"axioms_reply": report(info(STD)), **script}
    c = scripted.check([tactic], **script)
    assert not c.ok and why in c.message, (label, c.message)
    if scripted.requests("audit"):
        assert_audit_saw_no_model_text(scripted, [tactic])


@pytest.mark.parametrize(
    ("label", "tactic"), [(c[0], c[1]) for c in CHEATS[:-4]], ids=[c[0] for c in CHEATS[:-4]]
)
def test_the_filter_refuses_the_same_text_first(label: str, tactic: str) -> None:
    assert check_tactic(tactic) is not None, label


# ------------------------------------------------------------------------------------------------
# real transcripts: both sorry spellings, kernel errors with ", expression: ..."
# ------------------------------------------------------------------------------------------------

needs_transcripts = pytest.mark.skipif(not TRANSCRIPTS.is_dir(), reason=f"no transcripts at {TRANSCRIPTS}")


@needs_transcripts
def test_recorded_sorry_warnings_are_rejections_in_both_spellings() -> None:
    seen = 0
    for _name, entries in load_transcripts(TRANSCRIPTS).items():
        for e in entries:
            if "cmd" not in e.request:
                continue
            reply = parse_command_response(e.reply)
            if not isinstance(reply, CommandResponse):
                continue
            texts = [m.data for m in reply.messages]
            if "declaration uses `sorry`" in texts:
                seen += 1
                assert judge_proof_command(reply) is not None
                # the same reply as an older Lean would print it, and with the structured field removed
                old = CommandResponse(
                    env=reply.env,
                    messages=tuple(
                        Message(m.severity, m.data.replace("`sorry`", "'sorry'"), m.pos, m.end_pos)
                        for m in reply.messages
                    ),
                )
                assert judge_proof_command(old) == "proof uses sorry"
                bare = CommandResponse(env=reply.env, messages=reply.messages)
                if not reply.errors:
                    assert judge_proof_command(bare) == "proof uses sorry"
    assert seen >= 20


@needs_transcripts
def test_recorded_kernel_errors_with_expression_suffix_are_tactic_errors() -> None:
    seen = 0
    for _name, entries in load_transcripts(TRANSCRIPTS).items():
        for e in entries:
            status = e.reply.get("proofStatus")
            if "tactic" in e.request and isinstance(status, str) and "kernel" in status:
                seen += 1
                out = classify_tactic_reply(parse_tactic_response(e.reply), 0.0)
                assert isinstance(out, TacticError)
    assert seen >= 3


def test_axiom_report_reader_units() -> None:
    ok = CommandResponse(env=3, messages=(Message("info", STD, Pos(1, 0)),))
    assert axioms_from_reply(ok, "false_1") == ("propext", "Classical.choice", "Quot.sound")
    assert isinstance(axioms_from_reply(ok, "false_2"), str)
    assert signature_axiom("theorem t (x : Nat) (h : x = 1) :\n  x + 1 = 2 :=", "t", "ax") == (
        "axiom ax (x : Nat) (h : x = 1) :\n  x + 1 = 2"
    )
    assert signature_axiom("example : True :=", "t", "ax") is None
    assert signature_axiom("theorem t2 : True :=", "t", "ax") is None


# ------------------------------------------------------------------------------------------------
# the kernel layer and the pinned REPL's real unpickle behaviour
# ------------------------------------------------------------------------------------------------


def test_a_failed_unpickle_kills_the_repl_and_the_recheck_says_not_verified(scripted: Scripted) -> None:
    """At REPL v4.32.0 an unpickle error is uncaught (REPL/Main.lean): the process exits, no reply."""
    from llemma_prover.backends.lean4 import audit
    from llemma_prover.core.errors import ProverCrashed

    scripted.check(["norm_num"], axioms_reply=report(info(STD)))  # writes the scripts
    settings = Lean4Settings(
        command=(sys.executable, str(FAKE), "--script", str(scripted.tmp / "script.json")),
        command_cwd=str(scripted.tmp),
        pool=PoolPolicy(start_timeout=20.0, recycle_rss_mb=0, warm_spare=False),
        process=ProcessPolicy(address_space_mb=4096, rss_kill_mb=2048),
    )
    with Lean4Backend(ProverConfig(), settings) as b:
        fresh = b._pool_().fresh
        missing = str(scripted.tmp / "no-such.olean")
        with pytest.raises(ProverCrashed) as ei:
            audit._audit(fresh, missing, "axiom llemma_stmt_x : 1 = 2", "llemma_stmt_x", "false_1", 20.0)
    assert "exited" in str(ei.value) and "uncaught exception" in ei.value.output_tail
    # in the check itself: not an answer to read, a process failure, so "not verified"
    c = scripted.check(["norm_num"], axioms_reply=report(info(STD)), write_pickle=False)
    assert not c.ok


def test_without_kernel_tools_nothing_is_verified(tmp_path: Path) -> None:
    """An explicit REPL command with no lean/leanchecker: the kernel layer cannot run, so no proof passes."""
    s = Scripted(tmp_path)
    s.check(["norm_num"], axioms_reply=report(info(STD)))
    settings = Lean4Settings(
        command=(sys.executable, str(FAKE), "--script", str(tmp_path / "script.json")),
        command_cwd=str(tmp_path),
        pool=PoolPolicy(start_timeout=20.0, recycle_rss_mb=0, warm_spare=False),
        process=ProcessPolicy(address_space_mb=4096, rss_kill_mb=2048),
    )
    with Lean4Backend(ProverConfig(), settings) as b:
        c = b.check(THM, ["norm_num"])
    assert not c.ok and "not verified: no lean and leanchecker" in c.message


def test_kernel_tools_are_found_beside_the_repl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llemma_prover.backends.lean4.kernel import KernelTools, kernel_tools_for

    lake = "/home/u/.elan/bin/lake"
    repl = "/p/.lake/packages/REPL/.lake/build/bin/repl"
    assert kernel_tools_for((lake, "env", repl), "/p") == KernelTools(
        (lake, "env", "lean"), (lake, "env", "leanchecker"), "/p"
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    assert kernel_tools_for(("/opt/repl",), None) is None  # neither lean nor leanchecker on PATH
    for name in ("lean", "leanchecker"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    assert kernel_tools_for(("/opt/repl",), None) == KernelTools(
        (str(tmp_path / "lean"),), (str(tmp_path / "leanchecker"),), None
    )


def test_kernel_replay_runs_sandboxed_and_leaves_nothing(tmp_path: Path) -> None:
    """``kernel_replay`` on its own, under the backend's real sandbox: a kernel rejection is a reason,
    acceptance is None, and the working directory is gone either way."""
    import glob
    import tempfile

    from llemma_prover.backends.lean4.backend import repl_sandbox
    from llemma_prover.backends.lean4.kernel import KernelTools, kernel_replay

    def tools(**script: Any) -> KernelTools:
        path = tmp_path / "tools.json"
        path.write_text(json.dumps({"log": str(tmp_path / "tools.jsonl"), **script}))
        tool = (sys.executable, str(TOOLS), "--script", str(path))
        return KernelTools((*tool, "lean"), (*tool, "leanchecker"), str(tmp_path))

    sandbox = repl_sandbox(ProverConfig(), ProcessPolicy(address_space_mb=4096))
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "llemma_lean_kernel_*")))
    text = "import Mathlib\n\ntheorem t : 1 = 1 := by rfl\n"
    assert kernel_replay(tools(), text, sandbox=sandbox, timeout=30) is None
    why = kernel_replay(
        tools(leanchecker_exit=1, leanchecker_output=LEANCHECKER_REJECTS), text, sandbox=sandbox, timeout=30
    )
    assert why is not None and "kernel rejected" in why and "declaration type mismatch" in why
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "llemma_lean_kernel_*")))
    assert after == before
