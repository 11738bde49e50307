"""Doctor checks for the Lean 4 REPL: the exchanges the backend relies on, against the real REPL.

Two levels. (1) The doctor's own minimal client speaks the REPL's JSON protocol and sends requests
that the recorded transcripts (``shared/lean4_repl/``, real REPL output) also contain, so a real REPL
must answer them the same way: a theorem started by ``sorry``, a step, an error, ``proofStatus``
``Completed``, the ``declaration uses sorry`` warning in the spelling this Lean prints (and both
spellings recognised by the backend), a Mathlib header imported under the backend's address-space
cap, and the framing of ``#print axioms``. (2) The backend itself (``make_backend("lean4", ...)``):
steps to ``ProofFinished``, and a tactic that runs past the timeout (``sleep``) followed by a restart
that restores the state. Timings are in each check's row.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import procfs
from ..core.config import ProverConfig
from ..core.types import Advanced, ProofFinished, TacticTimeout, Theorem
from .checks import Checklist, Verdict
from .probe import run_probe

if TYPE_CHECKING:
    from .runner import DoctorOptions

__all__ = ["MIN_LEAN", "SLEEP_TACTIC", "check_backend", "run_lean4_checks"]

#: the oldest Lean whose REPL replies the backend is tested on (``proofStatus``, message shapes)
MIN_LEAN = (4, 24)
#: a tactic that runs far past the doctor's 3 s tactic timeout (Lean core's ``sleep ms``)
SLEEP_TACTIC = "sleep 600000"
TACTIC_TIMEOUT = 3.0
BUILD = (
    "build the REPL: cd lean_project && lake exe cache get && lake build repl "
    "(needs elan), or pass --lean-repl PATH"
)

#: recorded in proof_branching.in / unknown_tactic.in / mathlib/H20231020.in
BRANCHING = "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by sorry"
BRANCH_STEPS = ("apply And.intro", "exact h1.left", "apply h2", "exact h1.right")
DEF_F = "def f : Nat := by sorry"
HEADER = (
    "import Mathlib.Algebra.BigOperators.Group.Finset.Basic\nimport Mathlib.Data.Real.Basic\n"
    "import Mathlib.Data.Complex.Basic\nimport Mathlib.Data.Nat.Log\n"
    "import Mathlib.Analysis.Complex.Exponential\nimport Mathlib.NumberTheory.Divisors\n"
    "import Mathlib.Data.ZMod.Defs\nimport Mathlib.Data.ZMod.Basic\nimport Mathlib.Topology.Basic\n"
    "import Mathlib.Data.Nat.Digits.Lemmas\nimport Mathlib.Tactic.NormNum.GCD\nopen BigOperators\n"
    "open Real\nopen Nat\nopen Topology"
)
GCD_NAME = "mathd_numbertheory_188"
GCD = f"theorem {GCD_NAME} : Nat.gcd 180 168 = 12 := by norm_num"
SPELLINGS = ("declaration uses `sorry`", "declaration uses 'sorry'")


class _Raw:
    """One REPL process for the doctor's own exchanges: the backend's ``ReplProcess`` (a
    ``ManagedProcess``: own process group, killed and reaped, stderr kept apart, deadline reads), used
    as a bare JSON client: requests are the doctor's dicts, replies come back as dicts, unparsed."""

    def __init__(self, argv: tuple[str, ...], cwd: str | None, cap_mb: int) -> None:
        from ..backends.lean4.repl_process import ProcessPolicy, ReplProcess

        # what the backend's own REPL processes get from our environment (Lean4Backend._launch)
        env = {k: os.environ[k] for k in ("HOME", "ELAN_HOME", "LEAN_PATH", "LEAN_SYSROOT", "PYTHONPATH")
               if k in os.environ}
        policy = ProcessPolicy(address_space_mb=cap_mb, rss_kill_mb=0)
        self.proc = ReplProcess(argv, cwd=cwd, env=env, policy=policy)
        self.proc.spawn()

    def request(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        return self.proc.request(req, timeout)

    def peak_rss_mb(self) -> float:
        """Largest peak resident size (VmHWM) among the processes of its group."""
        pgid = self.proc.pgid
        if pgid is None:
            return 0.0
        members = procfs.group_members(pgid, live_only=False)
        return max((procfs.peak_rss_bytes(pid) / (1024 * 1024) for pid in members), default=0.0)

    def close(self) -> None:
        self.proc.kill()


def _version(command: Any) -> str:
    """``lean --version``: in the REPL's Lake project (``lake env lean``) or from PATH."""
    if command.argv[:2] and Path(command.argv[0]).name == "lake" and command.cwd:
        argv = [command.argv[0], "env", "lean", "--version"]
    elif shutil.which("lean"):
        argv = ["lean", "--version"]
    else:
        raise FileNotFoundError("no 'lean' on PATH and the REPL is not run through 'lake env'")
    _status, output = run_probe(argv, cwd=command.cwd, timeout=60)
    return output.strip()


def run_lean4_checks(cl: Checklist, lean_repl: str | None, config: ProverConfig | None = None) -> None:
    """Every Lean 4 check, appended to ``cl``."""
    from ..backends.lean4 import Lean4Backend, Lean4Settings
    from ..backends.lean4.locate import default_project_dir, resolve_repl

    cfg = replace(
        config or Lean4Backend.setup.default_config(), executable=lean_repl, tactic_timeout=TACTIC_TIMEOUT,
        warm_spare=False,
    )
    settings = Lean4Settings.from_prover_config(cfg)
    cap = settings.process.address_space_mb

    command = cl.run(
        "REPL found",
        "a built REPL (--lean-repl, lean_project/, or repl on PATH)",
        BUILD,
        lambda: _found(resolve_repl(lean_repl)),
    )

    def version() -> Verdict:
        text = _version(command)
        m = re.search(r"version (\d+)\.(\d+)\.(\d+)(\S*)", text)
        if m is None:
            return Verdict(False, f"unrecognised: {text[:120]!r}")
        v = (int(m.group(1)), int(m.group(2)))
        pin = default_project_dir() / "lean-toolchain"
        pinned = pin.read_text().strip() if pin.is_file() else "?"
        shown = f"{m[1]}.{m[2]}.{m[3]}{m[4].rstrip(',)')}"
        return Verdict(v >= MIN_LEAN, f"Lean {shown}; lean_project pins {pinned}")

    cl.run(
        "Lean version",
        f"Lean >= {MIN_LEAN[0]}.{MIN_LEAN[1]}",
        "use lean_project/ (its lean-toolchain) or a REPL built for Lean >= 4.24",
        version,
        needs=["REPL found"],
    )
    if not cl.passed("REPL found"):
        return
    raw: _Raw | None = None
    try:
        raw = _Raw(command.argv, command.cwd, cap)
        _exchanges(cl, raw, cap)
    finally:
        if raw is not None:
            raw.close()
    _backend_checks(cl, cfg)


def _found(command: Any) -> Verdict:
    return Verdict(True, f"{' '.join(command.argv)} (cwd {command.cwd}; {command.how})", command)


def _exchanges(cl: Checklist, raw: _Raw, cap: int) -> None:
    from ..backends.lean4.audit import SORRY_WARNING_RE, axioms_from_reply, judge_proof_command
    from ..backends.lean4.backend import classify_tactic_reply
    from ..backends.lean4.protocol import (
        CommandResponse,
        Message,
        parse_command_response,
        parse_tactic_response,
    )
    from ..backends.lean4.tactics import ALLOWED_AXIOMS
    from ..core.types import TacticError

    t = TACTIC_TIMEOUT * 10  # the doctor's requests are tiny; a generous deadline per reply

    def start() -> Verdict:
        reply = raw.request({"cmd": BRANCHING}, 120)
        sorries = reply.get("sorries") or []
        ok = (
            isinstance(reply.get("env"), int)
            and len(sorries) == 1
            and isinstance(sorries[0].get("proofState"), int)
            and "⊢ p ∧ r" in sorries[0].get("goal", "")
        )
        return Verdict(
            ok,
            f"env {reply.get('env')}, {len(sorries)} sorry, goal "
            f"{(sorries[0].get('goal') if sorries else None)!r}",
            reply,
        )

    started = cl.run(
        "start by sorry",
        "'... := by sorry' -> an env and one sorry with a proofState",
        "the REPL does not answer as the transcripts record: see 'seen' and the JSON",
        start,
    )

    def warning() -> Verdict:
        msgs = [m.get("data", "") for m in started.get("messages", [])]
        spelled = [d for d in msgs if "declaration uses" in d]
        verdict = judge_proof_command(parse_command_response(started))  # type: ignore[arg-type]
        ok = bool(spelled) and all(SORRY_WARNING_RE.search(d) for d in spelled) and verdict is not None
        return Verdict(ok, f"{spelled[:1]}; backend verdict: {verdict!r}")

    cl.run(
        "sorry warning recognised",
        "this Lean's 'declaration uses sorry' warning is one the backend detects",
        "a new message spelling: the backend's sorry detection (backends/lean4/audit.py) needs it",
        warning,
        needs=["start by sorry"],
    )

    def spellings() -> Verdict:
        got = [
            judge_proof_command(CommandResponse(env=0, messages=(Message("warning", s),))) for s in SPELLINGS
        ]
        return Verdict(all(g is not None for g in got), f"{dict(zip(SPELLINGS, got, strict=True))}")

    cl.run(
        "both sorry spellings",
        f"{SPELLINGS[0]!r} (Lean >= 4.24) and {SPELLINGS[1]!r} (older) rejected",
        "SOUNDNESS: a proof with sorry could be accepted; fix backends/lean4/audit.py",
        spellings,
    )

    def steps() -> Verdict:
        ps = started["sorries"][0]["proofState"]
        times, statuses = [], []
        for tac in BRANCH_STEPS:
            t0 = time.monotonic()
            reply = raw.request({"tactic": tac, "proofState": ps}, t)
            times.append(time.monotonic() - t0)
            statuses.append(reply.get("proofStatus"))
            if tac == "apply And.intro":
                first = reply
            ps = reply.get("proofState")
        ok = (
            first.get("proofStatus") == "Incomplete: open goals remain"
            and len(first.get("goals", [])) == 2
            and statuses[-1] == "Completed"
            and reply.get("goals") == []
        )
        ms = ", ".join(f"{x * 1000:.0f}" for x in times)
        return Verdict(ok, f"proofStatus {statuses}; per step {ms} ms")

    cl.run(
        "steps to proofStatus Completed",
        "'apply And.intro' -> 2 goals, open; 3 more steps -> 'Completed' with goals []",
        "the REPL is too old to report proofStatus, or answers differently: use lean_project/'s REPL",
        steps,
        needs=["start by sorry"],
    )

    def error() -> Verdict:
        sorried = raw.request({"cmd": DEF_F}, 120)
        reply = raw.request({"tactic": "exat 42", "proofState": sorried["sorries"][0]["proofState"]}, t)
        out = classify_tactic_reply(parse_tactic_response(reply), 0.0)
        return Verdict(isinstance(out, TacticError), f"{json.dumps(reply)[:120]} -> {type(out).__name__}")

    cl.run(
        "tactic error",
        "an unknown tactic -> an error reply the backend classifies as TacticError",
        "the REPL's error replies changed: see 'seen'",
        error,
        needs=["start by sorry"],
    )

    def header() -> Verdict:
        t0 = time.monotonic()
        reply = raw.request({"cmd": HEADER}, 110)
        errors = [m for m in reply.get("messages", []) if m.get("severity") == "error"]
        peak = raw.peak_rss_mb()
        ok = isinstance(reply.get("env"), int) and not errors
        return Verdict(
            ok,
            f"env {reply.get('env')} in {time.monotonic() - t0:.1f} s, peak RSS {peak:.0f} MiB "
            f"under RLIMIT_AS {cap} MiB" + (f"; {errors[0].get('data', '')[:120]!r}" if errors else ""),
            reply.get("env"),
        )

    env = cl.run(
        "Mathlib header under the memory cap",
        f"a miniF2F Mathlib header imports under RLIMIT_AS {cap} MiB",
        "lake exe cache get in lean_project/ (Mathlib .oleans), or raise the cap "
        "(ProcessPolicy.address_space_mb)",
        header,
        needs=["start by sorry"],
    )

    def axioms() -> Verdict:
        proved = raw.request({"cmd": GCD, "env": env}, 110)
        reply = raw.request({"cmd": f"#print axioms _root_.{GCD_NAME}", "env": proved["env"]}, t)
        parsed = parse_command_response(reply)
        got = axioms_from_reply(parsed, GCD_NAME) if isinstance(parsed, CommandResponse) else str(parsed)
        if isinstance(got, str):
            return Verdict(False, got)
        return Verdict(set(got) <= ALLOWED_AXIOMS, f"axioms {list(got)}")

    cl.run(
        "#print axioms framing",
        "one info message at 1:0, exactly \"'NAME' depends on axioms: [...]\"",
        "the axiom report's framing changed: the re-check (backends/lean4/audit.py) must follow it",
        axioms,
        needs=["Mathlib header under the memory cap"],
    )


def _backend_checks(cl: Checklist, cfg: ProverConfig) -> None:
    from ..backends.base import make_backend

    thm = Theorem(
        name="complex_and",
        split="doctor",
        system="lean4",
        header="",
        statement=BRANCHING.removesuffix(" by sorry"),
    )
    backend = make_backend("lean4", cfg)
    try:

        def prove() -> Verdict:
            root = backend.start_theorem(thm)
            sid, r = root.state_id, None
            for tac in BRANCH_STEPS:
                r = backend.apply(sid, tac)
                if not isinstance(r, Advanced | ProofFinished):
                    return Verdict(False, f"{tac!r} -> {r!r}")
                sid = r.state_id
            return Verdict(
                isinstance(r, ProofFinished),
                f"{type(r).__name__} after {len(BRANCH_STEPS)} steps",
                root.state_id,
            )

        root = cl.run(
            "backend proves complex_and",
            "start_theorem + 4 tactics -> ProofFinished",
            "the backend and this REPL disagree; report this with the JSON",
            prove,
            needs=["start by sorry"],
        )

        def timeout() -> Verdict:
            r = backend.apply(root, SLEEP_TACTIC)
            if not isinstance(r, TacticTimeout):
                return Verdict(False, repr(r))
            t0 = time.monotonic()
            again = backend.apply(root, "apply And.intro")
            ok = isinstance(again, Advanced) and len(again.goals) == 2 and backend.restarts == 1
            return Verdict(
                ok,
                f"TacticTimeout after {r.elapsed:.1f} s; then {type(again).__name__} in "
                f"{time.monotonic() - t0:.1f} s on a new process (restarts {backend.restarts})",
            )

        cl.run(
            "timeout and restart",
            f"{SLEEP_TACTIC!r} -> TacticTimeout at {TACTIC_TIMEOUT:.0f} s; the "
            "same state works again in a new process",
            "the backend could not replace a hung REPL; report this with the JSON",
            timeout,
            needs=["backend proves complex_and"],
        )
    finally:
        backend.close()


def check_backend(cl: Checklist, opts: DoctorOptions) -> None:
    """``Lean4Backend.doctor_checks``: every Lean 4 check, with the REPL ``--lean-repl`` names."""
    run_lean4_checks(cl, opts.lean_repl)
