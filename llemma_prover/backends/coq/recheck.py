"""The final check of a Coq proof, decided by processes that run none of the model's text.

A proof found by the search is accepted only by ``Rechecker.check``. The proof file is
``header + statement + "Proof." + one tactic per line + "Qed."`` (``proof_file``). Every process
below runs in the backend's sandbox (``backends/sandbox.py``: read-only file system except its own
directory, no network, rlimits) with a byte cap on what it prints and one deadline for the whole check.

1. **Compile** the proof file with ``coqc`` to ``LlemmaCheck.vo`` (this is the only process that runs
   the model's text). It must exit 0.
2. **Kernel audit** by ``coqchk -o -norec LlemmaCheck`` on the compiled library: Coq's independent
   checker re-typechecks every constant of the library and prints its context summary, which names
   every axiom of the environment by its *full kernel name* and every constant relying on
   type-in-type, unsafe (co)fixpoints (``Unset Guard Checking``) or assumed positivity. Accepted only
   with ``Set is predicative``, the three unsafe lists empty and every axiom in the header's allowed set.
   coqchk reads the ``.vo`` as data; nothing a tactic printed is read.
3. **Allowed axioms** are those of a library made of the header alone, compiled under the same name
   ``LlemmaCheck`` (so an axiom the header declares, ``LlemmaCheck.Rfloor_spec``, has the same kernel
   name in both) and audited by the same ``coqchk -o``; ``Coq.Logic.Classical_Prop.classic`` is allowed
   exactly when the header's own imports bring it in. Cached per header (``HeaderFacts``).
4. **Statement identity**, by one of two paths (``identity``; ``docs/check.md``).

   4a. **Reference files** (headers with objects of their own, a theorem with a footer, or when 4b
   cannot decide). A reference library ``LlemmaCheck`` is compiled from trusted text only:
   header + statement + ``Admitted.``. Then one small proof-free file is compiled twice, once against
   the reference and once against the proof's library::

       Require LlemmaCheck.  Set Printing All.  Print ML Modules.  Print Module LlemmaCheck.
       Print LlemmaCheck.<every object of the header library>.   Check @LlemmaCheck.<name>.

   and the two outputs must be identical. ``Require`` without ``Import`` leaves every name of the
   loaded library fully qualified (``LlemmaCheck.M.name`` for a smuggled module), ``Printing All``
   prints no notation, and Coq prints the shortest name that *resolves to the same object*, so a
   shadowed, re-declared (``Abort.`` then ``Theorem name : True``) or moved theorem, an extra
   declaration, a header object redefined after ``Reset Initial``, or an extra plugin all change
   the output. Its type and every header object must be exactly those of the trusted text.

   4b. **One proof-free file** (a header whose library has no objects of its own: its statement can
   only mention other libraries' objects, whose kernel names no proof file can change). The proof is
   compiled as ``<random>.LlemmaCheck``; the file elaborates the trusted header and statement (renamed,
   ``Admitted``) inside ``Module LlemmaTrusted``, then ``Require``s the proof's library and runs
   ``constr_eq_strict`` on the two types: it compiles (exit 0) only if the theorem's type is exactly the
   trusted statement, universes included. ``Print ML Modules`` before and after the ``Require`` must
   agree (no plugin loaded by the library). Anything 4b cannot decide goes to 4a.

0. **Structure, by Coq's parser** (``_structure``): the file must be the header, then exactly the
   lines ``statement``, ``Proof.``, one tactic sentence per line, ``Qed.``; a ``coqidetop`` with the
   header loaded ``Add``s them one by one *without executing any* (``IdeTop.parses_to_end``: each line
   is exactly one sentence, ending where the line ends), and each tactic, selector aside, must parse
   inside parentheses as an ``ltac_expr`` (so a vernacular command cannot hide in a tactic line). This
   runs at the same time as the compiles. Our validator (``validate_tactic``, in ``proof_file``) comes
   before it. The kernel steps below do not depend on either: a file that fools both is still judged
   by coqchk and the identity files (tests/test_recheck_coq.py feeds them such files directly). The
   coqidetop runs no model text (parse and ``Edit_at`` only) and is kept for the next check with the
   same header (``warm_parsers``).

Cost (``docs/check.md``, ``bench/check_cost.py``): with 4b, one compile, one ``coqchk`` and one
identity file per proof (the step-0 coqidetop is kept warm per header); with 4a, two compiles and two
print files. In ``check_batch``: per header of the batch, one compile (its proofs together, each in a
module of its own) and one identity file; one ``coqchk`` per set of allowed axioms. Per header (once per
Coq installation when a ``FactsCache`` is given): one ``coqc``, one ``coqchk`` and one print.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ...core.types import CheckResult
from ..process import ManagedProcess, ProcessError, ProcessOutputLimit, ProcessTimeout
from ..sandbox import Sandbox
from .facts_cache import FactsCache, HeaderFacts
from .header import split_header
from .ide import Added, CoqFailure, IdeTop
from .layout import proof_sentence, split_selector
from .sentences import InvalidTactic, coq_regions, validate_tactic

__all__ = [
    "CHECK_MODULE",
    "IDENTITY_MODES",
    "BatchItem",
    "CheckReport",
    "HeaderFacts",
    "Rechecker",
    "final_tactics",
    "parse_coqchk",
    "proof_file",
    "tactic_sentence",
    "split_assumptions",
    "theorem_name",
    "without_timeout",
]

#: the logical name of every library compiled by the check (proof, reference and header alike)
CHECK_MODULE = "LlemmaCheck"
#: how step 4 shows statement identity: "auto" (4b when the header library has no objects of its own,
#: 4a when it has or when 4b cannot decide), "reference" (4a only, the check before 4b existed),
#: "fast" (4b only; undecided is a refusal; for tests)
IDENTITY_MODES = ("auto", "reference", "fast")
#: what ``check_batch`` lists as each proof's axioms: "union" (one ``Print Assumptions`` for the
#: batch's theorems together) or "each" (one per theorem: its own)
BATCH_AXIOMS = ("union", "each")
#: step-0 coqidetops kept warm, one per header (each holds its header's libraries in memory)
WARM_PARSERS = 2
#: characters of output accepted from a compile or a coqchk run (an honest one prints next to nothing)
MAX_COMPILE_OUTPUT = 1024 * 1024
#: characters of output accepted from a print file (header objects printed in full)
MAX_PRINT_OUTPUT = 16 * 1024 * 1024

_THEOREM_RE = re.compile(
    r"^\s*(?:Theorem|Lemma|Fact|Remark|Corollary|Proposition|Example)\s+([A-Za-z_][\w']*)", re.MULTILINE
)
_SEARCH_NAME_RE = re.compile(rf"^{CHECK_MODULE}\.(\S+?):", re.MULTILINE)
#: the sections of ``coqchk -o`` ("* Title:" then indented entries, or "* Title: <none>")
_SECTION_RE = re.compile(r"^\* ([^:]+):\s*(.*)$")
_AXIOMS = "Axioms"
_UNSAFE = (
    "Constants/Inductives relying on type-in-type",
    "Constants/Inductives relying on unsafe (co)fixpoints",
    "Inductives whose positivity is assumed",
)
_PREDICATIVE = "Set is predicative"


def theorem_name(statement: str) -> str | None:
    """The name declared by a ``Theorem name ...`` statement."""
    m = _THEOREM_RE.search(statement)
    return m.group(1) if m else None


def tactic_sentence(tactic: str) -> str:
    """``tactic`` as the sentence the proof file holds: ``SEL ( body\n).`` or ``( body\n).``.

    ``layout.proof_sentence``: the layout the search ran the step in, without ``Timeout T`` (the
    body, validated by ``validate_tactic``, sits inside parentheses so Coq can only read it as a
    tactic; a goal selector stays outside). Raises ``InvalidTactic``.
    """
    return proof_sentence(tactic)


_TIMEOUT_PREFIX_RE = re.compile(r"^timeout\s+\d+\s*\(")
#: a ``timeout`` tactical and its ``int_or_var`` in the code of a tactic (comments blanked, strings
#: masked): the word ``timeout`` (not part of a longer name, not ``M.timeout`` or ``@timeout``), blanks,
#: then a number (decimal with ``_``, or hexadecimal) or an Ltac variable (a name that is not one of
#: the tactic keywords ``in``/``as``/``with``/... that may follow a hypothesis named ``timeout``)
_TIMEOUT_TACTICAL_RE = re.compile(
    r"(?<![\w'.@])timeout\s+"
    r"(?:0[xX][0-9a-fA-F][0-9a-fA-F_]*|\d[\d_]*|(?!(?:in|as|with|at|by|using|eqn|into)(?![\w']))[^\W\d][\w']*)"
    r"(?![\w'])\s*"
)


def without_timeout(tactic: str) -> str:
    """``tactic`` with no ``timeout`` tactical anywhere in it: the wall-clock wrappers the search ran
    with, which the recorded proof must not hold (its meaning would depend on the machine's speed).

    First a tactic that is exactly ``timeout N (T)`` (the parenthesis opened after ``N`` closes at the
    very end) is ``T``, repeated (``timeout 2 (timeout 3 (T))`` is ``T``). Then every other
    ``timeout N`` *inside* it goes, keyword and number, its argument kept (``first [timeout 2 (lia) |
    nia]`` is ``first [(lia) | nia]``, ``try timeout 1 nia; lia`` is ``try nia; lia``): found by Coq's
    lexical rules (``sentences.coq_regions``: code outside comments and strings, so a comment or a
    string that says "timeout" is untouched; ``my_timeout``, ``M.timeout`` are other names). ``N``
    may also be an Ltac variable (``let n := 2 in timeout n lia``). Idempotent; a tactic that does not
    lex (unclosed comment or string) or that would become empty comes back unchanged.

    **Safe only because the result is checked**: this is a text rewrite of adversarial input and
    decides nothing. The rewritten tactic is what Coq re-checks and what is recorded; whether it
    proves the theorem is decided by Coq alone. A rewrite that changes a tactic's meaning (a proof
    that needed the timeout to fall through, ``first [timeout 1 (diverging) | lia]``, or a hypothesis
    named ``timeout`` applied to a number) can only make that check fail: a lost proof, never a false
    one.
    """
    while True:
        stripped = _without_inner_timeouts(_without_whole_timeouts(tactic))
        if stripped == tactic:
            return tactic
        tactic = stripped


def _without_whole_timeouts(tactic: str) -> str:
    while True:
        stripped = _without_one_timeout(tactic)
        if stripped == tactic:
            return tactic
        tactic = stripped


def _without_one_timeout(tactic: str) -> str:
    m = _TIMEOUT_PREFIX_RE.match(tactic)
    if m is None or not tactic.endswith(")") or '"' in tactic or "(*" in tactic:
        return tactic
    body = tactic[m.end() - 1 :]
    depth = 0
    for i, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return body[1:-1].strip() if i == len(body) - 1 else tactic
    return tactic


def _without_inner_timeouts(tactic: str) -> str:
    """Every ``timeout N`` tactical of ``tactic``'s code removed (``_TIMEOUT_TACTICAL_RE``)."""
    try:
        regions = coq_regions(tactic)
    except InvalidTactic:
        return tactic
    # the code as Coq's lexer sees it, same length: comments blanked, strings masked
    mask = "".join(tactic[a:b] if kind == "code" else (" " if kind == "comment" else '"') * (b - a)
                   for kind, a, b in regions)
    out: list[str] = []
    pos = 0
    for m in _TIMEOUT_TACTICAL_RE.finditer(mask):
        out.append(tactic[pos : m.start()])
        pos = m.end()
    if pos == 0:
        return tactic
    out.append(tactic[pos:])
    stripped = "".join(out).strip()
    return stripped or tactic


def final_tactics(proof: Sequence[str]) -> list[str]:
    """The tactics of the proof file: validated, without any ``timeout`` tactical (``without_timeout``).

    The timeout bounded what the search spent on a tactic; the re-check must not fail because a
    loaded machine runs it slower than the search did, nor pass because a fast one did. What is left
    is checked as usual (and validated again). Raises ``InvalidTactic`` if a tactic is not one
    admissible sentence."""
    return [validate_tactic(without_timeout(validate_tactic(t))) for t in proof]


def proof_file(header: str, statement: str, tactics: Sequence[str], footer: str = "") -> str:
    """Header, statement, ``Proof.``, one ``tactic_sentence`` per tactic, ``Qed.``, one per line, then
    the theorem's ``footer`` (trusted data, e.g. ``End S.`` closing a section the header opened).

    Raises ``InvalidTactic`` if a tactic is not one admissible sentence.
    """
    body = [tactic_sentence(t) for t in tactics]
    return (header.rstrip("\n") + "\n" + statement.strip() + "\nProof.\n" + "\n".join(body) + "\nQed.\n"
            + footer_block(footer))


def footer_block(footer: str) -> str:
    """What follows ``Qed.`` in a proof file: the footer, stripped, on its own lines ("" for none)."""
    return footer.strip() + "\n" if footer.strip() else ""


def with_footer(header: str, footer: str) -> str:
    """The source of the header-only library: the header, closed by the footer when there is one (a
    header that opens a ``Section`` compiles only once it is closed)."""
    return header if not footer.strip() else header.rstrip("\n") + "\n" + footer_block(footer)


@dataclass(frozen=True)
class CheckReport:
    """What ``coqchk -o`` says about a compiled library's environment."""

    theory: str
    axioms: tuple[str, ...]
    #: "<section>: <name>" for every entry of the type-in-type / unsafe fixpoint / positivity lists
    unsafe: tuple[str, ...]


def parse_coqchk(output: str) -> CheckReport | None:
    """The context summary of ``coqchk -o``; ``None`` when the output is not one (fail closed).

    The text is coqchk's own: it prints kernel names, one per indented line; an identifier cannot
    contain blanks, ``*`` or ``:``, so a name cannot pose as a section. A section this parser does not
    know makes the whole report ``None``.
    """
    lines = output.splitlines()
    try:
        start = lines.index("CONTEXT SUMMARY")
    except ValueError:
        return None
    known = {_AXIOMS, "Theory", *_UNSAFE}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    theory = ""
    for line in lines[start + 1 :]:
        if not line.strip() or set(line.strip()) == {"="}:
            continue
        sec = _SECTION_RE.match(line)
        if sec:
            title, rest = sec.group(1), sec.group(2).strip()
            if title not in known or title in sections:
                return None
            current = sections[title] = []
            if title == "Theory":
                theory = rest
            elif rest not in ("", "<none>"):
                return None
            continue
        if current is None or not line.startswith("    ") or len(line.split()) != 1:
            return None
        current.append(line.strip())
    if set(sections) != known:
        return None
    unsafe = tuple(f"{title}: {name}" for title in _UNSAFE for name in sections[title])
    return CheckReport(theory=theory, axioms=tuple(sections[_AXIOMS]), unsafe=unsafe)


@dataclass(frozen=True)
class _Job:
    argv: tuple[str, ...]
    workdir: str
    files: tuple[tuple[str, str], ...] = ()
    read_only: tuple[str, ...] = ()
    max_output: int = MAX_COMPILE_OUTPUT


@dataclass
class _Parser:
    """A step-0 coqidetop: the state after its prelude and the header sentences loaded on it."""

    ide: IdeTop
    prelude_state: int
    loaded: list[tuple[str, int]]


@dataclass(frozen=True)
class _Compiled:
    """A proof of a batch compiled by step 1: its item's index, its library's random prefix and folder,
    and the module that holds the theorem inside the library ("" for a library of its own)."""

    index: int
    prefix: str
    directory: str
    module: str = ""

    def constant(self, name: str) -> str:
        """The theorem's full name, ``<prefix>.LlemmaCheck[.<module>].<name>``."""
        return ".".join(x for x in (self.prefix, CHECK_MODULE, self.module, name) if x)


@dataclass(frozen=True)
class _Unit:
    """One compile of ``check_batch``'s step 1: the proofs it holds (item index -> module, "" for a
    proof alone in its library), the library's prefix and folder, and the job."""

    header: str
    modules: dict[int, str]
    prefix: str
    directory: str
    job: _Job

    def compiled(self) -> list[_Compiled]:
        return [_Compiled(i, self.prefix, self.directory, m) for i, m in self.modules.items()]


def _libraries(libs: Sequence[_Compiled]) -> list[_Compiled]:
    """One entry per compiled library of ``libs`` (proofs compiled together share one), in order."""
    seen: dict[str, _Compiled] = {}
    for c in libs:
        seen.setdefault(c.prefix, c)
    return list(seen.values())


@dataclass(frozen=True)
class BatchItem:
    """One proof for ``Rechecker.check_batch`` (the arguments of ``check``; no footer, one header)."""

    header: str
    statement: str
    tactics: tuple[str, ...]
    name: str


class _Failed(Exception):
    """A step of the check failed; the message says which and why."""


class Rechecker:
    """Runs the final check (module docstring); one per backend, it caches ``HeaderFacts`` per header."""

    def __init__(
        self,
        *,
        sandbox: Sandbox,
        coqc: str = "coqc",
        coqchk: str = "coqchk",
        coqidetop: str = "coqidetop.opt",
        memory_limit_mb: int = 0,
        identity: str = "auto",
        warm_parsers: int = WARM_PARSERS,
        facts_cache: FactsCache | None = None,
        assumptions: bool = True,
        batch_axioms: str = "union",
    ) -> None:
        if identity not in IDENTITY_MODES:
            raise ValueError(f"identity must be one of {IDENTITY_MODES}, not {identity!r}")
        if batch_axioms not in BATCH_AXIOMS:
            raise ValueError(f"batch_axioms must be one of {BATCH_AXIOMS}, not {batch_axioms!r}")
        #: what ``check_batch`` records as a proof's axioms (``BATCH_AXIOMS``; docs/check.md): "each":
        #: one ``Print Assumptions`` per theorem (its own axioms, about 0.6 s of CPU each on the real
        #: numbers); "union": one for the batch's theorems together (what they depend on together: a
        #: superset of each one's own, the same when alone or when they depend on the same axioms;
        #: every one of them allowed by the header, as coqchk has shown)
        self.batch_axioms = batch_axioms
        #: how statement identity is shown (``IDENTITY_MODES``; module docstring, step 4)
        self.identity = identity
        self.sandbox = sandbox
        self.coqc = coqc
        self.coqchk = coqchk
        self.coqidetop = coqidetop
        self.memory_limit_mb = memory_limit_mb
        self._headers: dict[str, HeaderFacts] = {}
        #: whether a 4b check lists the theorem's own axioms (``Print Assumptions``, about 0.6 s of CPU
        #: for a proof on the real numbers) or, when False, the axioms of the proof library's whole
        #: environment (coqchk's, full kernel names; a superset). Always listed when another header
        #: judges the axioms (``audit_header``).
        self.assumptions = assumptions
        #: ``HeaderFacts`` shared with other processes and runs (``facts_cache.py``); None: memory only
        self.facts_cache = facts_cache
        #: how many step-0 coqidetops are kept warm (0: a new one per check, as before)
        self.warm_parsers = warm_parsers
        #: warm coqidetops of step 0, most recently used last: header -> (process, state after the header)
        self._parsers: dict[str, _Parser] = {}
        #: seconds spent per step, summed over checks (for ``stats``); counts of the identity paths taken
        self.times: dict[str, float] = {
            "structure": 0.0, "compile": 0.0, "kernel": 0.0, "header": 0.0, "checks": 0.0,
            "fast": 0.0, "reference": 0.0,
        }

    def close(self) -> None:
        """Stop the warm step-0 parsers (a later check starts new ones)."""
        parsers, self._parsers = self._parsers, {}
        for parser in parsers.values():
            parser.ide.close()

    # -- the check ---------------------------------------------------------------------------
    def check(
        self,
        *,
        header: str,
        statement: str,
        tactics: Sequence[str],
        name: str,
        timeout: float,
        audit_header: str | None = None,
        started: float | None = None,
        footer: str = "",
    ) -> CheckResult:
        """Accept ``tactics`` as a proof of ``statement`` under ``header`` only if every step holds.

        ``audit_header`` (default ``header``) is the header whose axioms are allowed: autoformalize
        compiles with an extra automation import but judges axioms by the problem's own header.
        """
        t0 = time.monotonic() if started is None else started
        try:
            text = proof_file(header, statement, tactics, footer)
        except InvalidTactic as exc:
            return self._result(False, t0, f"rejected: {exc}")
        return self.check_file(
            text,
            header=header,
            statement=statement,
            name=name,
            timeout=timeout,
            audit_header=audit_header,
            started=t0,
            tactics=tactics,
            footer=footer,
        )

    def check_file(
        self,
        text: str,
        *,
        header: str,
        statement: str,
        name: str,
        timeout: float,
        audit_header: str | None = None,
        started: float | None = None,
        parse_structure: bool = True,
        tactics: Sequence[str] | None = None,
        footer: str = "",
    ) -> CheckResult:
        """Steps 0-4 on a whole proof file ``text`` that claims to prove ``statement`` under ``header``.

        Nothing here trusts ``text`` to have the shape ``proof_file`` gives it: tests feed it hostile
        files directly, as if every filter before it had been fooled (``parse_structure=False`` skips
        step 0, to show that the kernel steps alone refuse them). ``tactics``: the list ``text`` was
        written from, when known (sentences may span lines).
        """
        t0 = time.monotonic() if started is None else started
        deadline = t0 + timeout
        self.times["checks"] += 1
        audit = header if audit_header is None else audit_header
        root = tempfile.mkdtemp(prefix="llemma-check-")
        try:
            return self._check(
                root, header, statement, text, name, audit, deadline, t0, parse_structure, tactics, footer
            )
        except _Failed as exc:
            return self._result(False, t0, str(exc))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _check(
        self,
        root: str,
        header: str,
        statement: str,
        text: str,
        name: str,
        audit_header: str,
        deadline: float,
        t0: float,
        parse_structure: bool = True,
        tactics: Sequence[str] | None = None,
        footer: str = "",
    ) -> CheckResult:
        if self.identity != "reference" and not footer.strip():  # (a footer closes a section: 4a)
            facts = self.header_facts(header, deadline)
            if not facts.names:  # a header without objects of its own: the one-file identity (4b)
                fast = self._check_fast(
                    root, header, statement, text, name, audit_header, deadline, t0, parse_structure, tactics
                )
                if isinstance(fast, CheckResult):
                    return fast
                if self.identity == "fast":
                    return self._result(False, t0, fast)
                root = _mkdir(root, "reference")  # undecided: the reference files decide (4a)
                parse_structure = False  # step 0 already passed
        self.times["reference"] += 1
        proof_dir, ref_dir = _mkdir(root, "proof"), _mkdir(root, "ref")
        problem = self._compile_both(
            proof_dir, ref_dir, header, statement, text, deadline, tactics, parse_structure, footer
        )
        if problem is not None:
            return self._result(False, t0, f"not header + statement + Proof. + tactics + Qed.: {problem}")
        return self._judge(root, proof_dir, ref_dir, with_footer(header, footer), name,
                           with_footer(audit_header, footer), deadline, t0)

    def _check_fast(  # steps 0-3 and 4b; a verdict, or why 4b could not decide
        self,
        root: str,
        header: str,
        statement: str,
        text: str,
        name: str,
        audit_header: str,
        deadline: float,
        t0: float,
        parse_structure: bool,
        tactics: Sequence[str] | None,
    ) -> CheckResult | str:
        """The proof compiled as ``<random>.LlemmaCheck``; coqchk on it beside one proof-free identity
        file (``_identity_file``) whose exit status says whether the theorem's type is exactly the
        statement elaborated from trusted text. A ``str`` result: 4b could not decide (the identity
        file failed, or the library loads a plugin the header does not), the caller falls back to 4a."""
        prefix = f"Llemma{secrets.token_hex(8)}"
        proof_dir = _mkdir(root, "proof")
        t = time.monotonic()
        jobs = [self._compile(proof_dir, text, prefix)]
        procs = self._start(jobs)
        try:
            if parse_structure:
                ts = time.monotonic()
                problem = self._structure(header, statement, text, deadline, tactics)
                self.times["structure"] += time.monotonic() - ts
                if problem is not None:
                    return self._result(
                        False, t0, f"not header + statement + Proof. + tactics + Qed.: {problem}"
                    )
            (proof_run,) = self._collect(jobs, procs, deadline)
        finally:
            for proc in procs:
                proc.close(reaped=False)
        self.times["compile"] += time.monotonic() - t
        _require_ok("coqc (proof file)", proof_run)
        facts = self.header_facts(header, deadline)
        audit = facts if audit_header == header else self.header_facts(audit_header, deadline)
        # the theorem's own axioms: for the record, and needed when another header judges them
        assumptions = self.assumptions or audit_header != header
        t = time.monotonic()
        chk, ident = self._run(
            [
                self._coqchk(_mkdir(root, "chk"), proof_dir, prefix),
                self._print(
                    _mkdir(root, "identity"),
                    proof_dir,
                    _identity_file(header, statement, name, prefix, assumptions),
                    prefix,
                ),
            ],
            deadline,
        )
        self.times["kernel"] += time.monotonic() - t
        report = _require_report("coqchk (proof library)", chk)
        # the header has no objects, so every allowed axiom is another library's: no renaming needed
        bad = [*report.unsafe, *(a for a in report.axioms if a not in facts.allowed_axioms)]
        if report.theory != _PREDICATIVE:
            bad.append(f"Theory: {report.theory}")
        if bad:
            why = "depends on what the header does not bring in (coqchk -o)"
            return self._result(False, t0, why, report.axioms, bad)
        if isinstance(ident, str) or ident[0] != 0:
            return "the identity file failed: " + (ident if isinstance(ident, str) else _tail(ident[1]))
        if not assumptions:
            if not _same_plugins(ident[1]):
                return "the identity file's output is not two equal plugin lists"
            self.times["fast"] += 1
            return self._result(True, t0, "", report.axioms)
        before_after, used = split_assumptions(ident[1])
        if used is None or not _same_plugins(before_after):
            return "the identity file's output is not two equal plugin lists and the assumptions"
        self.times["fast"] += 1
        forbidden = facts.allowed_axioms - audit.allowed_axioms
        bad = [u for u in used if any(f == u or f.endswith("." + u) for f in forbidden)]
        if bad:
            why = "uses axioms the problem's own header does not bring in"
            return self._result(False, t0, why, used, bad)
        return self._result(True, t0, "", used)

    def _compile_both(  # the proof file and the trusted reference, with the structure parse beside them
        self,
        proof_dir: str,
        ref_dir: str,
        header: str,
        statement: str,
        text: str,
        deadline: float,
        tactics: Sequence[str] | None,
        parse_structure: bool,
        footer: str = "",
    ) -> str | None:
        """Compile the proof file and the reference (header + statement + ``Admitted.``) at the same
        time as the structure parse (step 0); the structure problem, or None once both compiled
        (a failed compile raises ``_Failed``)."""
        reference = header.rstrip("\n") + "\n" + statement.strip() + "\nAdmitted.\n" + footer_block(footer)
        t = time.monotonic()
        jobs = [self._compile(proof_dir, text), self._compile(ref_dir, reference)]
        procs = self._start(jobs)
        try:
            if parse_structure:
                ts = time.monotonic()
                problem = self._structure(header, statement, text, deadline, tactics, footer)
                self.times["structure"] += time.monotonic() - ts
                if problem is not None:
                    return problem
            proof_run, ref_run = self._collect(jobs, procs, deadline)
        finally:
            for proc in procs:
                proc.close(reaped=False)
        self.times["compile"] += time.monotonic() - t
        _require_ok("coqc (proof file)", proof_run)
        _require_ok("coqc (reference: header + statement, no proof)", ref_run)
        return None

    def _judge(  # steps 2-4 on the compiled libraries
        self,
        root: str,
        proof_dir: str,
        ref_dir: str,
        header: str,
        name: str,
        audit_header: str,
        deadline: float,
        t0: float,
    ) -> CheckResult:
        """coqchk on the proof library, the two identity prints, and the verdict from them."""
        facts = self.header_facts(header, deadline)
        audit = facts if audit_header == header else self.header_facts(audit_header, deadline)
        t = time.monotonic()
        common = _print_file(name, facts.names)
        chk, proof_print, ref_print = self._run(
            [
                self._coqchk(_mkdir(root, "chk"), proof_dir),
                self._print(_mkdir(root, "print-proof"), proof_dir, common + _assumptions(name)),
                self._print(_mkdir(root, "print-ref"), ref_dir, common),
            ],
            deadline,
        )
        self.times["kernel"] += time.monotonic() - t
        report = _require_report("coqchk (proof library)", chk)
        ref_text = _normal(_require_ok("print (reference)", ref_print))
        proof_text, used = split_assumptions(_require_ok("print (proof library)", proof_print))
        bad = [*report.unsafe, *(a for a in report.axioms if a not in facts.allowed_axioms)]
        if report.theory != _PREDICATIVE:
            bad.append(f"Theory: {report.theory}")
        if bad:
            return self._result(
                False, t0, "depends on what the header does not bring in (coqchk -o)", report.axioms, bad
            )
        if used is None or _normal(proof_text) != ref_text:
            return self._result(
                False,
                t0,
                f"the compiled {CHECK_MODULE}.{name} is not the original statement in the original header "
                f"environment: {_first_difference(ref_text, proof_text)}",
                report.axioms,
            )
        forbidden = facts.allowed_axioms - audit.allowed_axioms
        bad = [u for u in used if any(f == u or f.endswith("." + u) for f in forbidden)]
        if bad:
            return self._result(
                False, t0, "uses axioms the problem's own header does not bring in", used, bad
            )
        return self._result(True, t0, "", used)

    # -- several proofs at once ---------------------------------------------------------------
    def check_batch(self, items: Sequence[BatchItem], timeout: float) -> list[CheckResult]:
        """``check`` on each item, with the compiles and the kernel steps shared. Per header without
        objects of its own (4b), each proof is parsed as in ``check``, the header's proofs are compiled
        together in one library, each in a module of its own (``_compile_all``; each alone when that
        fails), and **one** identity file requires the header's libraries (one ``constr_eq_strict``
        goal per theorem, one ``Print Assumptions`` for them together). Across headers that allow the same
        axioms, **one** ``coqchk -o`` audits every library of all of them. A header's proofs are
        accepted only when everything holds: coqchk's summary (the union of the environments) has no
        unsafe entry and only axioms those headers allow, and the header's identity file compiles with
        the plugin lists agreeing. A coqchk that fails for several headers is run again per header;
        whatever is still undecided is checked on its own by ``check``, which decides. Items whose
        header has objects, or that 4b never takes, go to ``check`` directly. ``timeout`` is the
        deadline of the whole batch. Results are in the order of ``items``."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        results: list[CheckResult | None] = [None] * len(items)
        groups: dict[str, list[int]] = {}
        allowed: dict[str, frozenset[str]] = {}
        for i, it in enumerate(items):
            try:
                facts = self.header_facts(it.header, deadline)
            except _Failed as exc:
                results[i] = self._result(False, t0, str(exc))
                continue
            if self.identity == "reference" or facts.names:
                results[i] = self._single(it, deadline)
            else:
                groups.setdefault(it.header, []).append(i)
                allowed[it.header] = facts.allowed_axioms
        root = tempfile.mkdtemp(prefix="llemma-check-batch-")
        try:
            texts = {header: self._admitted(header, idxs, items, results, t0, deadline)
                     for header, idxs in groups.items()}
            compiled = self._compile_all(root, texts, results, t0, deadline)
            partitions: dict[frozenset[str], list[str]] = {}
            for header, libs in compiled.items():
                if libs:
                    partitions.setdefault(allowed[header], []).append(header)
            for p, (axioms, headers) in enumerate(partitions.items()):
                self._kernel_step(_mkdir(root, f"k{p}"), headers, axioms, compiled, items, results, t0,
                                  deadline)
            for i in (i for idxs in groups.values() for i in idxs):
                if results[i] is None:
                    results[i] = self._single(items[i], deadline)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return [r if r is not None else self._result(False, t0, "not checked") for r in results]

    def _single(self, it: BatchItem, deadline: float) -> CheckResult:
        return self.check(header=it.header, statement=it.statement, tactics=it.tactics, name=it.name,
                          timeout=max(1.0, deadline - time.monotonic()))

    def _admitted(
        self, header: str, idxs: Sequence[int], items: Sequence[BatchItem],
        results: list[CheckResult | None], t0: float, deadline: float,
    ) -> dict[int, str]:
        """Step 0 for one header's items: index -> proof file of those that pass; a refusal (the
        validator, Coq's parser) goes into ``results`` at once."""
        texts: dict[int, str] = {}
        for i in idxs:
            try:
                text = proof_file(header, items[i].statement, items[i].tactics)
            except InvalidTactic as exc:
                results[i] = self._result(False, t0, f"rejected: {exc}")
                continue
            ts = time.monotonic()
            problem = self._structure(header, items[i].statement, text, deadline, items[i].tactics)
            self.times["structure"] += time.monotonic() - ts
            if problem is not None:
                results[i] = self._result(
                    False, t0, f"not header + statement + Proof. + tactics + Qed.: {problem}"
                )
            else:
                texts[i] = text
        return texts

    def _compile_all(
        self, root: str, texts: dict[str, dict[int, str]], results: list[CheckResult | None], t0: float,
        deadline: float,
    ) -> dict[str, list[_Compiled]]:
        """Step 1 for a batch (header -> index -> proof file that passed step 0): the compiled
        proofs per header. The proofs of one header are compiled **together** in one ``coqc`` (one
        start-up and one loading of the header's libraries instead of one per proof), each in a
        module of its own with a random name (``_units``); a header's single proof is compiled as
        ``check`` compiles it. The compiles of all headers run two at a time. When a together compile
        fails, its proofs are compiled each alone, and the one that fails is refused in ``results``."""
        units = [u for g, (header, group) in enumerate(texts.items()) if group
                 for u in self._units(os.path.join(root, f"g{g}"), header, group, together=len(group) > 1)]
        compiled: dict[str, list[_Compiled]] = {header: [] for header in texts}
        while units:
            t = time.monotonic()
            runs = self._run_at_most(2, [u.job for u in units], deadline)
            self.times["compile"] += time.monotonic() - t
            again: list[_Unit] = []
            for unit, run in zip(units, runs, strict=True):
                if not isinstance(run, str) and run[0] == 0:
                    compiled[unit.header] += unit.compiled()
                elif len(unit.modules) > 1:  # some proof does not go through: each alone
                    group = {i: texts[unit.header][i] for i in unit.modules}
                    again += self._units(unit.directory + "-alone", unit.header, group, together=False)
                else:
                    ((i, _),) = unit.modules.items()
                    try:
                        _require_ok("coqc (proof file)", run)
                    except _Failed as exc:
                        results[i] = self._result(False, t0, str(exc))
            units = again
        return compiled

    def _units(self, root: str, header: str, texts: dict[int, str], together: bool) -> list[_Unit]:
        """The compile jobs of one header's proofs, in the new folder ``root``: one for all
        (``together``) or one per proof.

        Together, the library is the header, then per proof ``Module LlemmaProof<random>.`` + its
        proof file's lines after the header + ``End LlemmaProof<random>.``. Every text passed step 0
        (whole sentences, tactics only), so none reaches beyond its module, and a proof cannot name
        another's theorem (the module names are drawn after the texts are fixed and no module is
        imported): each proof stands alone, as its recorded file does. The verdict does not rest on
        that: coqchk audits the whole library and the identity file compares each theorem's type."""
        os.mkdir(root)
        if together:
            cut = len(header.rstrip("\n")) + 1
            modules = {i: f"LlemmaProof{secrets.token_hex(8)}" for i in texts}
            source = header.rstrip("\n") + "\n" + "".join(
                f"Module {modules[i]}.\n{text[cut:]}End {modules[i]}.\n" for i, text in texts.items()
            )
            prefix = f"Llemma{secrets.token_hex(8)}"
            return [_Unit(header, modules, prefix, root, self._compile(root, source, prefix))]
        units = []
        for i, text in texts.items():
            prefix, directory = f"Llemma{secrets.token_hex(8)}", _mkdir(root, f"proof{i}")
            units.append(_Unit(header, {i: ""}, prefix, directory, self._compile(directory, text, prefix)))
        return units

    def _kernel_step(
        self, root: str, headers: Sequence[str], allowed: frozenset[str],
        compiled: dict[str, list[_Compiled]], items: Sequence[BatchItem],
        results: list[CheckResult | None], t0: float, deadline: float,
    ) -> None:
        """Steps 2 and 4b for the compiled libraries of ``headers`` (headers that allow the same
        axioms, ``allowed``): one ``coqchk`` for all, one identity file per header. Passes go into
        ``results``; anything else is left undecided (None). A failing coqchk over several headers
        is run again for each header alone (an identity file that passed is not run again)."""
        t = time.monotonic()
        libs = [c for h in headers for c in compiled[h]]
        chk_job = self._coqchk_many(_mkdir(root, "chk"), libs)
        ident_jobs: dict[str, _Job] = {}
        for h, header in enumerate(headers):
            try:
                theorems = [(items[c.index].statement, items[c.index].name, c) for c in compiled[header]]
                source = _identity_batch_file(header, theorems, self.assumptions,
                                              union=self.batch_axioms == "union")
            except _Failed:
                continue  # undecided: ``check`` decides these
            libraries = _libraries(compiled[header])
            ident_jobs[header] = _Job(
                (self.coqc, "-q", *(a for c in libraries for a in ("-Q", c.directory, c.prefix)),
                 "LlemmaPrint.v"),
                _mkdir(root, f"identity{h}"),
                files=(("LlemmaPrint.v", source),),
                read_only=tuple(c.directory for c in libraries),
                max_output=MAX_PRINT_OUTPUT,
            )
        runs = self._run_at_most(2, [chk_job, *ident_jobs.values()], deadline)
        self.times["kernel"] += time.monotonic() - t
        chk, identities = runs[0], dict(zip(ident_jobs, runs[1:], strict=True))
        report = _clean_report(chk, allowed)
        if report is None:
            if len(headers) > 1:  # someone fails: find whose header, one coqchk each
                for h, header in enumerate(headers):
                    self._kernel_alone(_mkdir(root, f"alone{h}"), header, allowed, compiled[header],
                                       identities.get(header), items, results, t0, deadline)
            return
        for header, ident in identities.items():
            self._identity_verdicts(header, compiled[header], ident, report, items, results, t0)

    def _kernel_alone(
        self, root: str, header: str, allowed: frozenset[str], libs: Sequence[_Compiled],
        ident: tuple[int, str] | str | None, items: Sequence[BatchItem],
        results: list[CheckResult | None], t0: float, deadline: float,
    ) -> None:
        """``_kernel_step``'s coqchk for one header, with its identity file's run already made."""
        if ident is None or isinstance(ident, str) or ident[0] != 0:
            return
        t = time.monotonic()
        (chk,) = self._run([self._coqchk_many(_mkdir(root, "chk"), libs)], deadline)
        self.times["kernel"] += time.monotonic() - t
        report = _clean_report(chk, allowed)
        if report is not None:
            self._identity_verdicts(header, libs, ident, report, items, results, t0)

    def _identity_verdicts(
        self, header: str, libs: Sequence[_Compiled], ident: tuple[int, str] | str, report: CheckReport,
        items: Sequence[BatchItem], results: list[CheckResult | None], t0: float,
    ) -> None:
        """Passes for ``libs`` (one header) when its identity file compiled, the plugin lists agree and
        the ``Print Assumptions`` answers are there; ``report`` is a coqchk that accepted them."""
        if isinstance(ident, str) or ident[0] != 0:
            return
        union = self.batch_axioms == "union" and len(libs) > 1
        answers = _assumption_answers(ident[1], 1 if union else len(libs)) if self.assumptions else None
        plugins = ident[1] if answers is None else ident[1][: answers[0]]
        if not _same_plugins(plugins) or (self.assumptions and answers is None):
            return
        for k, c in enumerate(libs):
            used = report.axioms if answers is None else answers[1][0 if union else k]
            self.times["fast"] += 1
            results[c.index] = self._result(True, t0, "", used)

    def _coqchk_many(self, workdir: str, libs: Sequence[_Compiled]) -> _Job:
        """``coqchk -o`` with every library of ``libs`` as a ``-norec`` module."""
        libs = _libraries(libs)
        return _Job(
            (self.coqchk, "-silent", "-o",
             *(a for c in libs for a in ("-norec", f"{c.prefix}.{CHECK_MODULE}")),
             *(a for c in libs for a in ("-Q", c.directory, c.prefix))),
            workdir,
            read_only=tuple(c.directory for c in libs),
        )

    def _run_at_most(self, width: int, jobs: Sequence[_Job], deadline: float) -> list[tuple[int, str] | str]:
        """``_run`` on ``jobs``, ``width`` of them at a time, in order."""
        out: list[tuple[int, str] | str] = []
        for start in range(0, len(jobs), width):
            out += self._run(jobs[start : start + width], deadline)
        return out

    def prefetch(self, header: str, deadline: float) -> None:
        """``header_facts`` computed ahead (trusted text only); a header whose facts cannot be had is
        left for the check to meet and refuse."""
        with contextlib.suppress(_Failed):
            self.header_facts(header, deadline)

    def header_facts(self, header: str, deadline: float) -> HeaderFacts:
        """Allowed axioms and object names of the header-only library (cached per header, in memory
        and in ``facts_cache`` when there is one)."""
        cached = self._headers.get(header)
        if cached is None and self.facts_cache is not None:
            try:
                cached = self.facts_cache.get(header)
            except (OSError, subprocess.SubprocessError):  # no fingerprint of the installation
                self.facts_cache = None
        if cached is not None:
            self._headers[header] = cached
            return cached
        t = time.monotonic()
        root = tempfile.mkdtemp(prefix="llemma-check-header-")
        try:
            lib = _mkdir(root, "header")
            (compiled,) = self._run([self._compile(lib, header.rstrip("\n") + "\n")], deadline)
            _require_ok("coqc (header alone)", compiled)
            search = (
                f"Require {CHECK_MODULE}.\nSet Printing Width 1000000.\nSearch _ inside {CHECK_MODULE}.\n"
            )
            chk, names = self._run(
                [self._coqchk(_mkdir(root, "chk"), lib), self._print(_mkdir(root, "search"), lib, search)],
                deadline,
            )
            report = _require_report("coqchk (header alone)", chk)
            if report.unsafe or report.theory != _PREDICATIVE:
                raise _Failed(f"the header itself is unsafe: {report.theory} {report.unsafe}")
            found = sorted(set(_SEARCH_NAME_RE.findall(_require_ok("Search (header alone)", names))))
        finally:
            shutil.rmtree(root, ignore_errors=True)
            self.times["header"] += time.monotonic() - t
        facts = HeaderFacts(allowed_axioms=frozenset(report.axioms), names=tuple(found))
        self._headers[header] = facts
        if self.facts_cache is not None:
            self.facts_cache.put(header, facts)
        return facts

    # -- processes ---------------------------------------------------------------------------
    def _compile(self, workdir: str, source: str, prefix: str = "") -> _Job:
        """``coqc`` of ``source`` as the library ``[prefix.]LlemmaCheck``."""
        load = ("-Q", ".", prefix) if prefix else ()
        return _Job(
            (self.coqc, "-q", *load, f"{CHECK_MODULE}.v"), workdir, files=((f"{CHECK_MODULE}.v", source),)
        )

    def _coqchk(self, workdir: str, lib: str, prefix: str = "") -> _Job:
        module = f"{prefix}.{CHECK_MODULE}" if prefix else CHECK_MODULE
        return _Job(
            (self.coqchk, "-silent", "-o", "-norec", module, "-Q", lib, prefix), workdir, read_only=(lib,)
        )

    def _print(self, workdir: str, lib: str, source: str, prefix: str = "") -> _Job:
        return _Job(
            (self.coqc, "-q", "-Q", lib, prefix, "LlemmaPrint.v"),
            workdir,
            files=(("LlemmaPrint.v", source),),
            read_only=(lib,),
            max_output=MAX_PRINT_OUTPUT,
        )

    def _run(self, jobs: Sequence[_Job], deadline: float) -> list[tuple[int, str] | str]:
        """Run ``jobs`` at the same time; each result is (status, output) or a failure message."""
        procs = self._start(jobs)
        try:
            return self._collect(jobs, procs, deadline)
        finally:
            for proc in procs:
                proc.close(reaped=False)

    def _start(self, jobs: Sequence[_Job]) -> list[ManagedProcess]:
        procs: list[ManagedProcess] = []
        try:
            for job in jobs:
                for fname, content in job.files:
                    with open(os.path.join(job.workdir, fname), "w", encoding="utf-8") as fh:
                        fh.write(content)
                proc = ManagedProcess(
                    job.argv,
                    memory_limit_mb=self.memory_limit_mb,
                    private_tmpdir=False,
                    cwd=job.workdir,
                    env_extra={"HOME": job.workdir, "TMPDIR": job.workdir},
                    sandbox=self.sandbox,
                    read_only=job.read_only,
                    max_output_chars=job.max_output,
                )
                procs.append(proc)
                proc.start()
        except ProcessError as exc:
            for proc in procs:
                proc.close(reaped=False)
            raise _Failed(f"could not start {exc}") from exc
        return procs

    def _collect(
        self, jobs: Sequence[_Job], procs: Sequence[ManagedProcess], deadline: float
    ) -> list[tuple[int, str] | str]:
        results: list[tuple[int, str] | str] = []
        for job, proc in zip(jobs, procs, strict=True):
            try:
                results.append(proc.wait(deadline))
            except ProcessOutputLimit:
                results.append(f"{job.argv[0]} printed more than {job.max_output} characters; killed")
            except ProcessTimeout:
                results.append(f"{job.argv[0]} timed out")
            except ProcessError as exc:
                results.append(f"{job.argv[0]} failed to run: {exc}")
        return results

    def _structure(
        self, header: str, statement: str, text: str, deadline: float, tactics: Sequence[str] | None,
        footer: str = "",
    ) -> str | None:
        """Step 0: ``None`` when Coq's parser reads ``text`` as header + statement + Proof. + tactic
        sentences + Qed. (nothing is executed); otherwise what is wrong. The sentences are those
        ``proof_file`` wrote for ``tactics``; without ``tactics`` (a file from elsewhere), the text is cut
        after each ``\\n).\\n`` that ends a ``tactic_sentence``."""
        prefix = header.rstrip("\n") + "\n"
        tail = footer_block(footer)
        if tail:  # the footer is trusted data appended after Qed.: the rest must be as without one
            if not text.endswith("\n" + tail):
                return "the file does not end with the theorem's footer"
            text = text[: -len(tail)]
        if tactics is not None:
            lines = [statement.strip(), "Proof.", *(tactic_sentence(t) for t in tactics), "Qed."]
            if text != prefix + "\n".join(lines) + "\n":
                return "the file is not the one proof_file writes for these tactics"
        else:
            head = prefix + statement.strip() + "\nProof.\n"
            if not text.startswith(head) or not text.endswith("\nQed.\n"):
                return "the file is not header, statement, Proof., ..., Qed."
            middle = text[len(head) : -len("Qed.\n")]
            pieces = middle.split("\n).\n")
            if pieces[-1] != "":
                return "a tactic sentence does not end with a closing parenthesis and a period"
            lines = [statement.strip(), "Proof.", *[p + "\n)." for p in pieces[:-1]], "Qed."]
        if len(lines) < 4:
            return "no tactic"
        for i, line in enumerate(lines[2:-1], start=3):
            if not split_selector(line)[1].startswith("("):
                return f"sentence {i} is not a parenthesised tactic: {line[:200]!r}"
        parser, root = self._parser(prefix, deadline)
        ide = parser.ide
        if isinstance(root, CoqFailure):
            ide.close()
            return f"the header does not load in coqidetop: {root.message}"
        tip = root
        clean = False
        try:
            for i, line in enumerate(lines):
                if not line.endswith("."):
                    return f"sentence {i + 1} does not end with a period: {line[:200]!r}"
                body = line[:-1]
                problem = ide.parses_to_end(body, tip, deadline)
                if problem is not None:
                    return (
                        f"Coq's parser does not read sentence {i + 1} as one sentence ({problem.message}): "
                        f"{line[:300]!r}"
                    )
                added = ide.add(line, tip, deadline)
                if not isinstance(added, Added):
                    return f"Coq's parser refuses sentence {i + 1}: {added.message}"
                tip = added.state_id
            clean = tip == root or ide.edit_at(root, deadline) is None
        except ProcessError as exc:
            return f"coqidetop failed: {exc}"
        finally:
            if clean and self.warm_parsers > 0:  # back at the state after the header: kept warm
                self._parsers[split_header(prefix)[0]] = parser
            else:
                ide.close()
        return None

    def _parser(self, header: str, deadline: float) -> tuple[_Parser, int | CoqFailure]:
        """A coqidetop with the automation prelude loaded (``-l``) and ``header``'s other sentences
        added and executed (trusted text; ``IdeTop.load_source`` keeps the sentences it shares with
        the header loaded before), and the state after the header (or why the header failed).

        It runs no model text: step 0 only ``Add``s sentences (parsed, never executed) and goes back
        with ``Edit_at``. The caller owns it until it puts it back in ``_parsers`` (keyed by prelude);
        the least recently used one is stopped beyond ``warm_parsers``."""
        prelude, rest = split_header(header)
        parser = self._parsers.pop(prelude, None)
        if parser is not None and not parser.ide.alive:
            parser.ide.close()
            parser = None
        if parser is None:
            while self._parsers and len(self._parsers) >= self.warm_parsers:
                oldest = next(iter(self._parsers))
                self._parsers.pop(oldest).ide.close()
            ide = IdeTop.create(self.coqidetop, header=prelude or None, sandbox=self.sandbox,
                                memory_limit_mb=self.memory_limit_mb)
            try:
                parser = _Parser(ide, ide.start(deadline), [])
            except BaseException:
                ide.close()
                raise
        try:
            return parser, parser.ide.load_source(parser.loaded, parser.prelude_state, rest, deadline)
        except BaseException:
            parser.ide.close()
            raise

    def _result(
        self,
        ok: bool,
        t0: float,
        message: str,
        axioms: Sequence[str] = (),
        bad: Sequence[str] = (),
    ) -> CheckResult:
        return CheckResult(
            ok=ok,
            checker="coqchk",
            elapsed=time.monotonic() - t0,
            message=message,
            axioms=tuple(axioms),
            bad_axioms=tuple(bad),
        )


def _print_file(name: str, header_names: Sequence[str]) -> str:
    lines = [
        f"Require {CHECK_MODULE}.",
        "Set Printing All.",
        "Set Printing Width 1000000.",
        "Print ML Modules.",
        f"Print Module {CHECK_MODULE}.",
        *(f"Print {CHECK_MODULE}.{n}." for n in header_names),
        f"Check @{CHECK_MODULE}.{name}.",
    ]
    return "\n".join(lines) + "\n"


def _identity_file(header: str, statement: str, name: str, prefix: str, assumptions: bool = True) -> str:
    """Step 4b's proof-free file: the trusted header and statement (renamed ``LlemmaExpected``,
    ``Admitted``, inside a module so that nothing stays imported after it, as in 4a's print files)
    elaborated *before* the proof's library is loaded, then the proof's theorem's type compared with
    it by ``constr_eq_strict`` (syntactic equality, universes included): the file compiles only if
    they are the same term. The two plugin lists and ``Print Assumptions`` are read for the record
    and to see that loading the library added no plugin."""
    m = _THEOREM_RE.search(statement)
    if m is None or m.group(1) != name:
        raise _Failed(f"the statement does not declare {name!r}")
    expected = statement[: m.start(1)] + "LlemmaExpected" + statement[m.end(1) :]
    lines = [
        'Set Warnings "-require-in-module".',
        "Module LlemmaTrusted.",  # what the header imports and opens ends with the module
        header.rstrip("\n"),
        expected.strip(),
        "Admitted.",
        "End LlemmaTrusted.",
        "Print ML Modules.",
        f"Require {prefix}.{CHECK_MODULE}.",
        "Print ML Modules.",
        "Goal True.",
        "  let a := type of @LlemmaTrusted.LlemmaExpected in",
        f"  let b := type of @{prefix}.{CHECK_MODULE}.{name} in",
        "  constr_eq_strict a b; exact I.",
        "Qed.",
    ]
    if assumptions:
        lines += ["Set Printing Width 1000000.", f"Print Assumptions {prefix}.{CHECK_MODULE}.{name}."]
    return "\n".join(lines) + "\n"


def _clean_report(chk: tuple[int, str] | str, allowed: frozenset[str]) -> CheckReport | None:
    """A batch's coqchk report when it accepts every library: predicative, nothing unsafe, only axioms
    in ``allowed``; else None."""
    try:
        report = _require_report("coqchk (batch)", chk)
    except _Failed:
        return None
    if report.unsafe or report.theory != _PREDICATIVE or any(a not in allowed for a in report.axioms):
        return None
    return report


def _identity_batch_file(
    header: str, theorems: Sequence[tuple[str, str, _Compiled]], assumptions: bool, union: bool = False
) -> str:
    """``_identity_file`` for several theorems of one header: (statement, name, compiled proof) each;
    the expected statements are ``LlemmaExpected<k>``, all elaborated before any proof library is
    loaded (each library once, however many proofs it holds). ``union``: one ``Print Assumptions`` of
    the tuple of all the theorems (``LlemmaAll``: the axioms they depend on together, one traversal
    of the libraries instead of one per theorem) instead of one per theorem."""
    expected, checks, prints = [], [], []
    for k, (statement, name, lib) in enumerate(theorems):
        m = _THEOREM_RE.search(statement)
        if m is None or m.group(1) != name:
            raise _Failed(f"the statement does not declare {name!r}")
        renamed = statement[: m.start(1)] + f"LlemmaExpected{k}" + statement[m.end(1) :]
        expected += [renamed.strip(), "Admitted."]
        checks += [
            "Goal True.",
            f"  let a := type of @LlemmaTrusted.LlemmaExpected{k} in",
            f"  let b := type of @{lib.constant(name)} in",
            "  constr_eq_strict a b; exact I.",
            "Qed.",
        ]
        prints.append(f"Print Assumptions {lib.constant(name)}.")
    lines = [
        'Set Warnings "-require-in-module".',
        "Module LlemmaTrusted.",
        header.rstrip("\n"),
        *expected,
        "End LlemmaTrusted.",
        "Print ML Modules.",
        *(f"Require {c.prefix}.{CHECK_MODULE}." for c in _libraries([lib for _, _, lib in theorems])),
        "Print ML Modules.",
        *checks,
    ]
    if assumptions and union and len(theorems) > 1:
        every = ", ".join(f"@{lib.constant(name)}" for _, name, lib in theorems)
        lines += ["Set Printing Width 1000000.", f"Definition LlemmaAll := ({every}).",
                  "Print Assumptions LlemmaAll."]
    elif assumptions:
        lines += ["Set Printing Width 1000000.", *prints]
    return "\n".join(lines) + "\n"


def _assumption_answers(output: str, n: int) -> tuple[int, list[tuple[str, ...]]] | None:
    """The last ``n`` ``Print Assumptions`` answers of ``output``: (character offset where the first
    starts, the axiom names of each), or None when the output does not end with exactly such answers
    (each ``Closed under the global context`` or ``Axioms:`` + one ``name : type`` line per axiom)."""
    lines = output.rstrip("\n").split("\n")
    answers: list[tuple[str, ...]] = []
    end = len(lines)
    i = len(lines) - 1
    while i >= 0 and len(answers) < n:
        if lines[i] == "Closed under the global context":
            if i + 1 != end:
                return None
            answers.append(())
            end = i
        elif lines[i] == "Axioms:":
            entries = lines[i + 1 : end]
            names = [e.split(" : ", 1)[0] for e in entries]
            if not entries or not all(
                " : " in e and x and " " not in x for e, x in zip(entries, names, strict=True)
            ):
                return None
            answers.append(tuple(names))
            end = i
        i -= 1
    if len(answers) != n:
        return None
    return len("\n".join(lines[:end])), answers[::-1]


def _same_plugins(output: str) -> bool:
    """The output holds two identical ``Print ML Modules`` answers (before and after the ``Require``;
    what comes before them is the trusted header's own output, e.g. a warning)."""
    parts = output.split("Loaded ML Modules:")
    return len(parts) == 3 and _normal(parts[1]) == _normal(parts[2])


def _tail(output: str) -> str:
    return " ".join(output.split())[-800:]


def _assumptions(name: str) -> str:
    return f"Print Assumptions {CHECK_MODULE}.{name}.\n"


def split_assumptions(output: str) -> tuple[str, tuple[str, ...] | None]:
    """Split a print file's output into (what came before, the axioms ``Print Assumptions`` listed).

    The answer to ``Print Assumptions`` (the file's last command) starts at the last line that is
    exactly ``Closed under the global context`` or ``Axioms:``; each following line is one
    ``name : type`` entry (``Printing Width`` is too large for a type to wrap). ``None`` for the axioms
    when the output does not end with such an answer. Only ever read from a proof-free file's output.
    """
    lines = output.rstrip("\n").split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if lines[i] == "Closed under the global context":
            return "\n".join(lines[:i]), (() if i == len(lines) - 1 else None)
        if lines[i] == "Axioms:":
            entries = lines[i + 1 :]
            names = [e.split(" : ", 1)[0] for e in entries]
            well_formed = all(" : " in e and n and " " not in n for e, n in zip(entries, names, strict=True))
            if not entries or not well_formed:
                return output, None
            return "\n".join(lines[:i]), tuple(names)
    return output, None


def _mkdir(root: str, name: str) -> str:
    path = os.path.join(root, name)
    os.mkdir(path)
    return path


def _require_ok(step: str, result: tuple[int, str] | str) -> str:
    if isinstance(result, str):
        raise _Failed(f"{step}: {result}")
    status, out = result
    if status != 0:
        raise _Failed(f"{step} exit {status}: {' '.join(out.split())[-800:]}")
    return out


def _require_report(step: str, result: tuple[int, str] | str) -> CheckReport:
    report = parse_coqchk(_require_ok(step, result))
    if report is None:
        raise _Failed(f"{step}: not a context summary")
    return report


def _normal(text: str) -> str:
    return " ".join(text.split())


def _first_difference(expected: str, got: str) -> str:
    a, b = _normal(expected), _normal(got)
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"expected {a[max(0, i - 60) : i + 100]!r}, got {b[max(0, i - 60) : i + 100]!r}"
