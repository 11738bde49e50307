"""Doctor checks for the Coq backend, run for real: coqtop/coqc, the backend's exchanges, the re-check,
the sandbox and the automation libraries.

Everything goes through the public interface (``make_backend("coq", ...)``, ``ProverBackend`` methods,
``sandbox_for``); the theorems are the doctor's own, so none of the text comes from a model.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.config import ProverConfig
from ..core.types import Advanced, ProofFinished, TacticError, TacticTimeout, Theorem
from .checks import Checklist, Outcome, Verdict

if TYPE_CHECKING:
    from .runner import DoctorOptions

__all__ = ["EXPECTED_COQ", "check_backend", "run_coq_checks"]

#: the Coq release the header preparation and the data conventions target
EXPECTED_COQ = "8.16"
SETUP = "run `bash scripts/setup.sh` (installs Debian's coq 8.16 and the libraries)"

HEADER = "Require Import Arith."


def _theorem(name: str, statement: str) -> Theorem:
    return Theorem(name=name, split="doctor", system="coq", header=HEADER, statement=statement)


GOOD = _theorem("doctor_add_zero", "Theorem doctor_add_zero : forall n : nat, n + 0 = n.")
#: an admitted lemma before the statement: a proof through it must be rejected by the re-check
ADMITTED = _theorem(
    "doctor_uses_gap", "Definition doctor_gap : False.\nAdmitted.\nTheorem doctor_uses_gap : 1 = 2."
)
#: an axiom declared outside the header: the same
AXIOM = _theorem("doctor_uses_cheat", "Axiom doctor_cheat : False.\nTheorem doctor_uses_cheat : 1 = 2.")

#: a tactic that runs far longer than the doctor's tactic timeout
LOOP = "do 1000000000 idtac."


def _version(exe: str, timeout: float = 30.0) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=timeout, check=False)
    m = re.search(r"version (\S+)", out.stdout + out.stderr)
    return m.group(1) if m else (out.stdout + out.stderr).strip()[:100]


def _executable(cl: Checklist, name: str, path: str) -> None:
    def fn() -> Verdict:
        found = shutil.which(path)
        if found is None:
            return Verdict(False, f"{path}: not found on PATH")
        v = _version(found)
        return Verdict(v.startswith(EXPECTED_COQ + "."), f"version {v} at {found}", found)

    cl.run(name, f"{path} {EXPECTED_COQ}.x on PATH", SETUP, fn)


def _coqidetop(cl: Checklist) -> None:
    def fn() -> Verdict:
        found = shutil.which("coqidetop.opt") or shutil.which("coqidetop")
        if found is None:
            return Verdict(False, "coqidetop(.opt): not found on PATH", otherwise=Outcome.WARN)
        v = _version(found)
        return Verdict(v.startswith(EXPECTED_COQ + "."), f"version {v} at {found}", found)

    cl.run(
        "coqidetop",
        f"coqidetop.opt {EXPECTED_COQ}.x (Coq's XML protocol server, backends/coq/ide.py)",
        "it ships with Debian's coq package; " + SETUP,
        fn,
    )


def _sandbox(cl: Checklist, config: ProverConfig) -> None:
    from ..backends.sandbox import sandbox_for

    def limits() -> Verdict:
        sb = sandbox_for(config)
        want_kib = config.memory_limit_mb * 1024
        out = subprocess.run(
            sb.wrap(["sh", "-c", "ulimit -v; cat /proc/net/dev"]),
            capture_output=True,
            text=True,
            timeout=30,
            preexec_fn=sb.preexec(),
            env=sb.env(),
            check=False,  # noqa: PLW1509
        )
        lines = out.stdout.splitlines()
        seen = lines[0].strip() if lines else f"no output (exit {out.returncode}: {out.stderr.strip()[:200]})"
        ifaces = [ln.split(":")[0].strip() for ln in lines[1:] if ":" in ln]
        ok = seen == str(want_kib)
        return Verdict(ok, f"address-space limit {seen} KiB; network: {sb.network}", (sb, ifaces))

    sb_info = cl.run(
        "sandbox rlimits",
        f"a sandboxed child sees an address-space limit of {config.memory_limit_mb * 1024} KiB",
        "the rlimits of backends/sandbox.py were not applied; report this with the JSON",
        limits,
    )

    def network() -> Verdict:
        sb, ifaces = sb_info
        other = [i for i in ifaces if i != "lo"]
        if sb.network == "none":
            return Verdict(
                False,
                "no network isolation available (bwrap and unshare --net both fail)",
                otherwise=Outcome.WARN,
            )
        return Verdict(not other, f"{sb.network}: interfaces {ifaces or ['none']}")

    cl.run(
        "sandbox network",
        "provers run without network (bwrap or unshare --net)",
        "install bubblewrap, or allow unprivileged user namespaces "
        "(sysctl kernel.unprivileged_userns_clone=1); proofs still run, with the network reachable",
        network,
        needs=["sandbox rlimits"],
    )

    def tree() -> Verdict:
        from ..backends.process import ManagedProcess

        sb, _ = sb_info
        if sb.cgroups is None:
            return Verdict(False, f"no cgroups: {sb.cgroups_reason}", otherwise=Outcome.WARN)
        proc = ManagedProcess(["sh", "-c", "sleep 30 & sleep 30 & exec cat"], sandbox=sb)
        proc.start()
        try:
            deadline = time.monotonic() + 10
            while proc.extra_processes() < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            seen = proc.extra_processes()
            members = proc.tree_members()
        finally:
            proc.close()
        left = [p for p in members if _alive(p)]
        kind = str(sb.describe()["process_tree"]["mechanism"])  # type: ignore[index]
        return Verdict(seen == 2 and not left, f"{kind}: {seen} forked process(es) counted, {len(left)} left")

    cl.run(
        "sandbox process tree",
        "every prover process tree in a cgroup (forks counted, all killed on close)",
        "cgroup v1 pids/memory/cpu or a delegated cgroup v2 is needed (docs/containment.md); without it "
        "a tactic that forks is bounded by per-process rlimits only",
        tree,
        needs=["sandbox rlimits"],
    )


def _alive(pid: int) -> bool:
    from ..core import procfs

    st = procfs.stat(pid)
    return st is not None and st.alive


def _exchanges(cl: Checklist, config: ProverConfig) -> None:
    from ..backends.base import make_backend

    backend = make_backend("coq", config)
    try:

        def start() -> Verdict:
            root = backend.start_theorem(GOOD)
            ok = len(root.goals) == 1 and "n + 0 = n" in root.goals[0]
            return Verdict(
                ok,
                f"{len(root.goals)} goal(s) in {root.elapsed:.2f} s: {root.goal_text[:80]!r}",
                root.state_id,
            )

        root = cl.run(
            "header and statement load",
            "the root goal 'forall n : nat, n + 0 = n'",
            "see the error: the header preparation (backends/coq/header.py) or coqtop failed",
            start,
            needs=["coqtop"],
        )

        def step() -> Verdict:
            r = backend.apply(root, "intros n.")
            if not isinstance(r, Advanced):
                return Verdict(False, repr(r))
            ok = len(r.goals) == 1 and "n : nat" in r.goals[0]
            return Verdict(ok, f"Advanced in {r.elapsed:.3f} s: {r.goal_text[:80]!r}", r.state_id)

        s1 = cl.run(
            "tactic step",
            "'intros n.' -> one goal with hypothesis 'n : nat'",
            "coqtop's goal output is not what the backend parses; report this with the JSON",
            step,
            needs=["header and statement load"],
        )

        def error() -> Verdict:
            r = backend.apply(s1, "exact doctor_no_such_lemma.")
            ok = isinstance(r, TacticError) and not r.rejected and "doctor_no_such_lemma" in r.message
            return Verdict(ok, f"{type(r).__name__}: {getattr(r, 'message', '')[:120]!r}")

        cl.run(
            "tactic error",
            "an unknown lemma -> TacticError from coqtop naming it",
            "coqtop's error output is not what the backend parses",
            error,
            needs=["tactic step"],
        )

        def finish() -> Verdict:
            r = backend.apply(s1, "lia.")
            return Verdict(isinstance(r, ProofFinished), f"{type(r).__name__} in {r.elapsed:.3f} s")

        cl.run(
            "proof finished",
            "'lia.' -> ProofFinished",
            "lia (Coq's standard library) did not close the goal; check the Coq installation",
            finish,
            needs=["tactic step"],
        )

        def timeout() -> Verdict:
            r = backend.apply(s1, LOOP)
            ok = isinstance(r, TacticTimeout)
            limit = config.tactic_timeout
            return Verdict(ok, f"{type(r).__name__} after {r.elapsed:.2f} s (timeout {limit} s)")

        cl.run(
            "tactic timeout",
            f"a looping tactic -> TacticTimeout within ~{config.tactic_timeout} s",
            "the backend did not stop a long tactic; report this with the JSON",
            timeout,
            needs=["tactic step"],
        )

        def recover() -> Verdict:
            r = backend.apply(s1, "lia.")
            return Verdict(
                isinstance(r, ProofFinished),
                f"{type(r).__name__} in {r.elapsed:.2f} s after the timeout "
                f"(restarts this theorem: {backend.restarts})",
            )

        cl.run(
            "recovery after timeout",
            "the same state still usable: 'lia.' -> ProofFinished",
            "the replacement process did not restore the state; report this with the JSON",
            recover,
            needs=["tactic timeout"],
        )

        def good() -> Verdict:
            c = backend.check(GOOD, ["intros n.", "lia."])
            return Verdict(
                c.ok,
                f"ok={c.ok} by {c.checker} in {c.elapsed:.2f} s; axioms {list(c.axioms)}"
                + (f"; {c.message[:200]}" if c.message else ""),
            )

        cl.run(
            "re-check accepts a proof",
            "coqc + Print Assumptions accept 'intros n. lia.'",
            "coqc rejected a valid proof: check that coqc and coqtop are the same Coq",
            good,
            needs=["coqc"],
        )

        for label, thm, proof, bad in (
            ("Admitted", ADMITTED, ["exfalso.", "exact doctor_gap."], "doctor_gap"),
            ("axiom", AXIOM, ["exfalso.", "exact doctor_cheat."], "doctor_cheat"),
        ):

            def reject(thm: Theorem = thm, proof: list[str] = proof, bad: str = bad) -> Verdict:
                c = backend.check(thm, proof)
                # any rejection will do (the axiom audit, or a structural check before it); the reason shows
                named = bad in c.bad_axioms or bad in c.message
                return Verdict(
                    not c.ok,
                    f"ok={c.ok}; names {bad!r}: {named}; bad axioms {list(c.bad_axioms)}; "
                    f"{c.message[:160]!r}",
                )

            cl.run(
                f"re-check rejects {label}",
                f"a proof through {bad!r} is not accepted",
                "SOUNDNESS: the re-check accepted a proof that depends on an unproved assumption; "
                "do not trust results until this is fixed",
                reject,
                needs=["coqc"],
            )
    finally:
        backend.close()


def _library(cl: Checklist, name: str, source: str, remedy: str) -> None:
    def fn() -> Verdict:
        exe = shutil.which("coqc") or "coqc"
        with tempfile.TemporaryDirectory(prefix="llemma_doctor_") as tmp:
            f = Path(tmp) / "DoctorLib.v"
            f.write_text(source + "\n", encoding="utf-8")
            out = subprocess.run(
                [exe, str(f)], capture_output=True, text=True, timeout=90, cwd=tmp, check=False
            )
        msg = (out.stdout + out.stderr).strip().splitlines()
        return Verdict(out.returncode == 0, "loads" if out.returncode == 0 else " ".join(msg)[-200:])

    cl.run(name, f"coqc compiles {source!r}", remedy, fn, needs=["coqc"])


def run_coq_checks(cl: Checklist, config: ProverConfig | None = None) -> None:
    """Every Coq check, appended to ``cl``. ``config``: the backend's policy (doctor: 2 s tactics)."""
    base = config or ProverConfig()
    config = replace(base, tactic_timeout=min(base.tactic_timeout, 2.0), warm_spare=False)
    exe = config.executable or "coqtop"
    _executable(cl, "coqtop", exe)
    coqc = exe[: -len("coqtop")] + "coqc" if exe.endswith("coqtop") else "coqc"
    _executable(cl, "coqc", coqc)
    _coqidetop(cl)
    _sandbox(cl, config)
    _exchanges(cl, config)
    _library(
        cl,
        "Coquelicot",
        "From Coquelicot Require Import Coquelicot.",
        "apt-get install libcoq-coquelicot (miniF2F headers import it); " + SETUP,
    )
    _library(
        cl,
        "CoqHammer",
        "From Hammer Require Import Tactics.",
        "apt-get install libcoq-hammer (autoformalize's sauto/hauto); " + SETUP,
    )


def check_backend(cl: Checklist, opts: DoctorOptions) -> None:
    """``CoqBackend.doctor_checks``: every Coq check with the default prover policy."""
    run_coq_checks(cl, ProverConfig())
