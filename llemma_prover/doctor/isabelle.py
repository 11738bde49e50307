"""Doctor checks for Isabelle: the server handshake, the logic session, ``use_theories`` errors with
positions, a finished proof, what Isabelle does with ``sorry`` and that the re-check refuses it, and
Sledgehammer. Through the client's public classes and the backend (``make_backend("isabelle", ...)``).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from typing import TYPE_CHECKING

from ..core.config import ProverConfig
from ..core.types import ProofFinished, TacticError, Theorem
from .checks import Checklist, Verdict
from .probe import run_probe

if TYPE_CHECKING:
    from .runner import DoctorOptions

__all__ = ["EXPECTED_ISABELLE", "THEOREM", "check_backend", "run_isabelle_checks"]

#: the release the session (isabelle/ROOT) and the client were written for
EXPECTED_ISABELLE = "Isabelle2025"
INSTALL = (
    "install Isabelle2025-2 (isabelle.in.tum.de) and put its bin/ on PATH, or pass --isabelle "
    "PATH/bin/isabelle"
)
HEAP = "build the session once: isabelle build -b -d isabelle LlemmaMiniF2F (from the checkout)"

THEOREM = Theorem(
    name="doctor_add_zero",
    split="doctor",
    system="isabelle",
    header="theory doctor_add_zero imports Main\nbegin\n",
    statement='theorem doctor_add_zero:\n  fixes n :: nat\n  shows "n + 0 = n"',
)
GOAL = "n + 0 = n"
FAILING = "by (rule conjI)"
SLEDGEHAMMER_S = 20


def run_isabelle_checks(cl: Checklist, executable: str | None, config: ProverConfig | None = None) -> None:
    """Every Isabelle check, appended to ``cl``."""
    exe = executable or "isabelle"
    cfg = replace(
        config or ProverConfig(), executable=exe, tactic_timeout=30.0, check_timeout=60.0, start_timeout=90.0
    )

    def found() -> Verdict:
        path = shutil.which(exe)
        if path is None:
            return Verdict(False, f"{exe}: not found")
        _status, output = run_probe([path, "version"], timeout=60)
        text = output.strip()
        m = re.search(r"Isabelle\d{4}(?:-\d+)?", text)
        seen = f"{m.group(0) if m else text[:80]!r} at {path}"
        return Verdict(bool(m) and m.group(0).startswith(EXPECTED_ISABELLE), seen, path)

    path = cl.run("isabelle executable", f"{EXPECTED_ISABELLE}(-N) (`isabelle version`)", INSTALL, found)

    def handshake() -> Verdict:
        from ..backends.isabelle.client import IsabelleConnection, IsabelleServer

        server = IsabelleServer(executable=path, start_timeout=60.0)
        try:
            addr = server.start()
            conn = IsabelleConnection(addr)
            try:
                conn.connect()
                back = conn.echo({"doctor": [1, "two"]})
            finally:
                conn.close()
        finally:
            server.close()
        ok = back == {"doctor": [1, "two"]} and addr.host in ("127.0.0.1", "localhost", "::1")
        return Verdict(
            ok, f"server {addr.name!r} at {addr.host}:{addr.port}, password accepted, echo {back!r}"
        )

    cl.run(
        "server handshake",
        "`isabelle server` on loopback; password handshake; echo round trip",
        "see the error; the client follows the Isabelle2025 server protocol (system manual, ch. 4)",
        handshake,
        needs=["isabelle executable"],
    )

    from ..backends.base import make_backend

    backend = make_backend("isabelle", cfg)
    try:

        def session() -> Verdict:
            root = backend.start_theorem(THEOREM)
            return Verdict(
                GOAL in root.goal_text,
                f"started in {root.elapsed:.1f} s; goal {root.goal_text[:80]!r}",
                root.state_id,
            )

        root = cl.run(
            "session start",
            "session_start of the configured logic session, a theory loads and print_state shows the goal",
            HEAP,
            session,
            needs=["server handshake"],
        )

        def error() -> Verdict:
            r = backend.apply(root, FAILING)
            ok = (
                isinstance(r, TacticError)
                and not r.rejected
                and re.search(r"line \d+", r.message) is not None
            )
            return Verdict(ok, f"{type(r).__name__}: {getattr(r, 'message', '')[:140]!r}")

        cl.run(
            "use_theories error with position",
            f"{FAILING!r} -> an error at the step's line",
            "the server's messages lack positions or the backend misreads them; report this with the JSON",
            error,
            needs=["session start"],
        )

        def finish() -> Verdict:
            r = backend.apply(root, "by simp")
            return Verdict(isinstance(r, ProofFinished), f"{type(r).__name__} in {r.elapsed:.1f} s")

        cl.run(
            "proof finished",
            "'by simp' -> ProofFinished",
            "see 'seen'; the theory did not check",
            finish,
            needs=["session start"],
        )

        def sorry() -> Verdict:
            raw = backend.check_text(THEOREM, "sorry", cfg.tactic_timeout)
            shown = "accepted" if raw.ok else f"error {raw.first_error()[:80]!r}"
            c = backend.check(THEOREM, ["sorry"])
            return Verdict(
                not c.ok,
                f"Isabelle on a probe theory with sorry: {shown}; re-check: ok={c.ok} ({c.message[:80]!r})",
            )

        cl.run(
            "sorry rejected",
            "the re-check refuses a 'sorry' proof (and Isabelle's own verdict is shown)",
            "SOUNDNESS: a sorry proof passed the re-check; fix backends/isabelle/theory.py",
            sorry,
            needs=["session start"],
        )

        def hammer() -> Verdict:
            from ..backends.isabelle.automation import sledgehammer_command, sledgehammer_suggestions

            res = backend.check_text(
                THEOREM, f"{sledgehammer_command(SLEDGEHAMMER_S)}\noops", SLEDGEHAMMER_S + 30
            )
            found = sledgehammer_suggestions(res.messages)
            return Verdict(
                bool(found),
                f"{len(found)} suggestion(s): {found[:2]}"
                if found
                else f"no 'Try this' in {len(res.messages)} message(s); {res.first_error()[:100]!r}",
            )

        cl.run(
            "Sledgehammer",
            f"sledgehammer on {GOAL!r} proposes a 'Try this: by ...' method",
            "Sledgehammer's provers (E, Z3, cvc5, ...) ship with Isabelle: check `isabelle components -l`",
            hammer,
            needs=["session start"],
        )
    finally:
        backend.close()


def check_backend(cl: Checklist, opts: DoctorOptions) -> None:
    """``IsabelleBackend.doctor_checks``: every Isabelle check, with the ``--isabelle`` executable."""
    run_isabelle_checks(cl, opts.isabelle)
