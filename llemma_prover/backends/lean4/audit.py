"""The Lean 4 re-check (``Lean4Backend.check``): the proof is compiled in one process, its constants are
replayed through the kernel in another, and its statement and axioms are judged in a third; the last
two never receive a character of the model's text. Pinned versions: REPL tag ``v4.32.0`` with Lean
``v4.32.0`` (``lean_project/``); the REPL files named below were read at that tag, the Lean files as
``kernel.py`` says.

**1. Compile** -- a brand-new REPL process (never the search's; killed afterwards, since it ran model
text): the header is imported, then the command ``<statement> by <proof>`` runs on the header env.
Rejected on any ``error`` message, any entry in the REPL's structured ``sorries`` field, and -- belt and
braces, the only message text read here -- the "declaration uses sorry" warning in either spelling
(straight quotes before Lean v4.28.0-rc1, backticks since). Elaboration here adds each declaration
through the kernel (``addDecl``), unless an option such as ``debug.skipKernelTC`` switched that off,
which is why step 2 exists. The env is saved with ``pickleTo`` into a private directory.

**2. Kernel** (``kernel.py``) -- the same file text (header, then the same command) is compiled by
``lean -o`` to an ``.olean`` in a fresh process, and ``leanchecker`` (Lean's ``src/LeanChecker.lean``) in
another fresh process reads that ``.olean``, imports only its imports and replays every constant through
``Lean.Kernel.Environment.replay`` (Lean's ``src/Lean/Replay.lean``: ``addDecl`` per constant; no option
of the proof's file is consulted). Any non-zero exit is a rejection.

**3. Audit** -- a third brand-new REPL process that receives only our own text. ``unpickleEnvFrom``
(``REPL/Snapshots.lean``, ``CommandSnapshot.unpickle``) imports the header's modules afresh and adds the
compile step's constants with ``replayToElabEnv`` (``REPL/Lean/Replay.lean``), which does **not**
kernel-check them -- that file's own trust model says pickles "are trusted artifacts; this is not a
verifier boundary"; the kernel check is step 2's. What the audit does rely on: the pickle holds only the
imports, the new constants (``constants.map₂``) and the command state (``CommandSnapshot.pickle``), so
no macro, notation, elaborator, attribute or instance the proof text may have registered exists in the
audit process (a ``macro_rules`` that turns ``#print axioms`` into a forged message is not there). And
if unpickling fails, the REPL does not answer: ``unpickleCommandSnapshot`` runs in ``IO`` without a
``try`` (``REPL/Main.lean``), so the process exits with an uncaught exception -- a crash, which is "not
verified". In that env:

a. ``axiom <fresh> <the statement's signature>`` followed by ``example : type_of% @<fresh> :=
   @_root_.NAME`` must elaborate without error: the compiled constant proves exactly the statement of
   the data (a crafted pickle or a re-declared name fails here);
b. ``#print axioms _root_.NAME`` must be answered with exactly one message, of severity ``info``, at line
   1 column 0, whose *whole* text is ``'NAME' depends on axioms: [..]`` or ``'NAME' does not depend on
   any axioms`` for our exact declaration name (Lean's ``src/Lean/Elab/Print.lean``); every axiom listed
   must be in ``ALLOWED_AXIOMS`` (``sorryAx``, ``Lean.ofReduceBool``, ``Lean.trustCompiler`` or any
   declared ``axiom`` fail).

What printed output a proof can produce (``#eval IO.println``, ``logInfo``, ``trace``) goes to the
compile processes' output, which is read only for errors and sorries (REPL) or not at all (``lean``);
it never reaches the kernel or audit process.

Residual risk, stated plainly: a proof that reaches arbitrary code execution in a compile process
(only past the tactic filter and Lean's own parser) could write a crafted pickle or ``.olean``, or make
the two compilations differ: then the constants whose type and axioms step 3 reads are not the ones
step 2 kernel-checked. Both loaders trust their file *format* (a compacted region).
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import ProverError
from .pool import ReplSession
from .protocol import (
    CommandResponse,
    ProtocolError,
    ReplError,
    command_request,
    parse_command_response,
    pickle_env_request,
    unpickle_env_request,
)
from .tactics import ALLOWED_AXIOMS

__all__ = [
    "AuditVerdict",
    "audit_proof",
    "axioms_from_reply",
    "judge_proof_command",
    "proof_file_text",
    "parse_axioms",
    "signature_axiom",
]

#: Lean's warning for a declaration that uses sorry: backticks since Lean v4.28.0-rc1 (the transcripts
#: are v4.33.0-rc2), straight quotes before
SORRY_WARNING_RE = re.compile(r"declaration uses [`']sorry[`']")
#: the two reports of ``#print axioms`` (Lean.Elab.Print, ``printAxiomsOf``), matched in full
_DEPENDS_RE = re.compile(r"'(?P<name>[^'\n]+)' depends on axioms: \[(?P<axioms>[^\[\]]*)\]")
_NONE_RE = re.compile(r"'(?P<name>[^'\n]+)' does not depend on any axioms")
_AXIOM_NAME_RE = re.compile(r"[^\s,\[\]']+")
_DECL_HEAD_RE = r"^\s*(?:theorem|lemma|def)\s+{name}(?=[\s:({{\[⦃]|$)"


@dataclass(frozen=True)
class AuditVerdict:
    ok: bool
    message: str = ""
    axioms: tuple[str, ...] = ()
    bad_axioms: tuple[str, ...] = ()


class _Rejected(Exception):
    def __init__(self, verdict: AuditVerdict) -> None:
        super().__init__(verdict.message)
        self.verdict = verdict


def _reject(message: str, axioms: tuple[str, ...] = (), bad: tuple[str, ...] = ()) -> _Rejected:
    return _Rejected(AuditVerdict(False, message, axioms, bad))


def judge_proof_command(reply: CommandResponse) -> str | None:
    """Why the reply to the whole-proof command rejects the proof (None: no error, no sorry)."""
    if reply.errors:
        return "; ".join(m.data for m in reply.errors)
    if reply.sorries or any(SORRY_WARNING_RE.search(m.data) for m in reply.messages):
        return "proof uses sorry"
    return None


def parse_axioms(text: str, name: str | None = None) -> tuple[str, ...] | None:
    """The axioms of a ``#print axioms`` report whose *whole* text is the report (``()`` for none).

    None when ``text`` is not exactly such a report, or reports on another name than ``name``."""
    text = text.strip()
    m = _NONE_RE.fullmatch(text)
    if m is not None:
        return () if name is None or m["name"] == name else None
    m = _DEPENDS_RE.fullmatch(text)
    if m is None or (name is not None and m["name"] != name):
        return None
    parts = [a.strip() for a in m["axioms"].split(",")]
    if not parts or not all(_AXIOM_NAME_RE.fullmatch(a) for a in parts):
        return None
    return tuple(parts)


def axioms_from_reply(reply: CommandResponse, name: str) -> tuple[str, ...] | str:
    """The axioms in our ``#print axioms _root_.NAME`` reply, or why the reply is not trusted.

    The reply must hold exactly one message: ``info``, at line 1 column 0 (where our one-line command
    starts), and its whole text the report on exactly ``name``."""
    if reply.sorries:
        return "axiom report came with sorries"
    if len(reply.messages) != 1:
        return f"expected exactly one message in the axiom report, got {len(reply.messages)}"
    msg = reply.messages[0]
    if msg.severity != "info":
        return f"axiom report has severity {msg.severity!r}: {msg.data[:200]}"
    if msg.pos is not None and (msg.pos.line, msg.pos.column) != (1, 0):
        return f"axiom report is not at our command's position (line {msg.pos.line}, column {msg.pos.column})"
    axioms = parse_axioms(msg.data, name)
    if axioms is None:
        return f"not a '#print axioms' report on {name!r}: {msg.data[:200]!r}"
    return axioms


def signature_axiom(statement: str, name: str, fresh: str) -> str | None:
    """``statement`` (``theorem NAME <signature> :=``) as ``axiom <fresh> <signature>``; None if it is
    not of that shape (an ``example`` has no name to audit)."""
    m = re.match(_DECL_HEAD_RE.format(name=re.escape(name)), statement)
    if m is None:
        return None
    rest = statement[m.end() :].rstrip()
    if not rest.endswith(":="):
        return None
    return f"axiom {fresh}{rest[:-2].rstrip()}"


def _command(session: ReplSession, req: dict[str, object], timeout: float, what: str) -> CommandResponse:
    try:
        reply = parse_command_response(session.process.request(req, timeout))
    except ProtocolError as exc:
        raise _reject(f"{what}: malformed REPL reply: {exc}") from exc
    if isinstance(reply, ReplError):
        raise _reject(f"{what}: REPL error: {reply.message.strip()[:500]}")
    assert isinstance(reply, CommandResponse)
    return reply


def audit_proof(
    fresh: Callable[[str], ReplSession],
    *,
    header: str,
    statement: str,
    name: str,
    proof_command: str,
    timeout: float,
    kernel: Callable[[str], str | None],
) -> AuditVerdict:
    """Compile ``proof_command`` in one fresh process, judge the result in another (module docstring).

    ``fresh(header)`` starts a brand-new REPL session with ``header`` imported (``""``: nothing); both
    processes are killed before this returns. ``kernel(file_text)`` is the kernel layer
    (``kernel.kernel_replay``): None when the kernel accepts every constant of the file, else why not.
    A process failure is a rejection ("not verified")."""
    fresh_name = f"llemma_stmt_{secrets.token_hex(6)}"
    stmt_axiom = signature_axiom(statement, name, fresh_name)
    if stmt_axiom is None:
        return AuditVerdict(False, f"cannot audit: statement is not 'theorem {name} ... :='")
    workdir = Path(tempfile.mkdtemp(prefix="llemma_lean_audit_"))
    pickle = workdir / f"{secrets.token_hex(8)}.olean"
    try:
        try:
            _compile(fresh, header, proof_command, str(pickle), timeout)
            if not pickle.is_file():
                raise _reject("the compile process reported a pickle but wrote none")
            why = kernel(proof_file_text(header, proof_command))
            if why is not None:
                raise _reject(f"kernel check: {why}")
            axioms = _audit(fresh, str(pickle), stmt_axiom, fresh_name, name, timeout)
        except _Rejected as rej:
            return rej.verdict
        except ProverError as exc:
            return AuditVerdict(False, f"re-check could not run: {exc}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    bad = tuple(a for a in axioms if a not in ALLOWED_AXIOMS)
    if bad:
        return AuditVerdict(False, "disallowed axioms: " + ", ".join(bad), axioms, bad)
    return AuditVerdict(True, "", axioms)


def proof_file_text(header: str, proof_command: str) -> str:
    """The file the kernel layer compiles: the header, then the command the REPL compiled."""
    return f"{header.rstrip()}\n\n{proof_command}\n" if header.strip() else f"{proof_command}\n"


def _compile(
    fresh: Callable[[str], ReplSession], header: str, proof_command: str, pickle: str, timeout: float
) -> None:
    session = fresh(header)
    try:
        reply = _command(session, command_request(proof_command, session.header_env), timeout, "proof")
        why = judge_proof_command(reply)
        if why is not None:
            sorry = ("sorryAx",) if why == "proof uses sorry" else ()
            raise _reject(why, sorry, sorry)
        _command(session, pickle_env_request(reply.env, pickle), timeout, "pickleTo")
    finally:
        session.process.kill()


def _audit(
    fresh: Callable[[str], ReplSession],
    pickle: str,
    stmt_axiom: str,
    fresh_name: str,
    name: str,
    timeout: float,
) -> tuple[str, ...]:
    session = fresh("")
    try:
        env = _command(session, unpickle_env_request(pickle), timeout, "unpickleEnvFrom").env
        typed = _command(
            session,
            command_request(f"{stmt_axiom}\n\nexample : type_of% @{fresh_name} := @_root_.{name}", env),
            timeout,
            "statement check",
        )
        if typed.errors or typed.sorries:
            detail = "; ".join(m.data for m in typed.errors)[:500] or "sorry"
            raise _reject(f"the compiled {name} does not prove the statement: {detail}")
        report = _command(session, command_request(f"#print axioms _root_.{name}", env), timeout, "axioms")
    finally:
        session.process.kill()
    axioms = axioms_from_reply(report, name)
    if isinstance(axioms, str):
        raise _reject(axioms)
    return axioms
