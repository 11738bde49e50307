"""The independent check of a proof of a library lemma **in its own file's context** (``prove --library``).

The miniF2F check (``recheck.py``) judges ``header + statement + proof``; here the header is the
lemma's file up to its statement (the *prefix*: imports, sections, variables, notations, hints, earlier
lemmas with their original proofs), which is library code and trusted, and the proof is model text.
``LibraryRechecker.check(ctx, tactics)`` accepts the proof only if every step below holds. Every
process runs in the sandbox **with the installed copy of the file and of every file that depends on it
hidden** (``Sandbox.hiding``, bubblewrap only: without it the check refuses to run), so that no lemma can
be proved from itself.

Files (all compiled as the private library ``LlemmaCheck``, never under the file's own logical name,
so that the proof's constants and the installed file's constants have different kernel names)::

    proof      = automation + prefix + statement + "Proof using All." + tactic sentences + "Qed." + ends
    reference  = automation + prefix + statement + "Proof using All." + "Admitted."          + ends

``automation`` is ``automation_header(ctx.automation)`` (``Require Import M.`` per module, at the very top,
as the search loads it); ``ends`` closes the sections and modules the prefix left open (``End X.``, read
from the trusted prefix). ``Proof using All`` makes the section variables the lemma is generalised over
the same on both sides (all of them), so the compiled types are comparable; the tactics run with the
same hypotheses in context either way.

1. **Structure, by Coq's parser**: a ``coqidetop`` with automation + prefix loaded ``Add``s the
   statement, ``Proof using All.``, each tactic sentence and ``Qed.`` without executing any, and each
   must be read as exactly one sentence ending where its line ends; each tactic is written
   ``( tactic\n).`` (``recheck.tactic_sentence``) so Coq can only read it as a tactic.
2. **Compile** the proof file with ``coqc`` (the only process that runs model text); exit 0.
3. **Kernel audit**: ``coqchk -o -norec LlemmaCheck`` on the proof's library and on the reference's.
   The proof's axioms (full kernel names) must be among the reference's **minus the admitted lemma
   itself** (``LlemmaCheck.<modules>.<name>``); no type-in-type / unsafe fixpoint / assumed positivity
   entry beyond the reference's; ``Set is predicative``.
4. **Statement identity**: one proof-free print file is compiled against each library::

       Require LlemmaCheck.  Set Printing All.  Print ML Modules.  Print Module LlemmaCheck.
       Check @LlemmaCheck.<modules>.<name>.  Print Libraries.

   and the outputs must be identical: the lemma's type (fully printed, every name the shortest one that
   resolves to the same object) is that of the trusted reference compile, the module's objects are the
   same, the same libraries and plugins are loaded. The reference is the comparison, not the installed
   ``.vo``'s constant: the installed type is generalised over the section variables its author's proof
   happened to use and lives under another kernel name; the reference is the same text in the same
   environment. Its print, axioms and unsafe entries are cached per lemma (``reference_cache``).
5. **Not from itself**: the libraries the proof's ``LlemmaCheck`` loads (``Print Libraries``, the
   ``.vo``'s transitive requirements) must contain neither the file's own module nor any module that
   depends on it (``LibraryDeps.dependant_modules``). With the hiding this cannot happen (loading one
   fails); it is checked anyway, by kernel module name, so a hiding that failed is still caught.

``check_batch`` runs the same steps once for several proofs of one file (every proved lemma's original
proof replaced by its model proof in one file, all of them ``Admitted`` in the reference, the allowed
axioms the reference's minus all of them); any refusal falls back to ``check`` per lemma. References
are cached on disk (``cache_dir``), keyed by the sha256 of everything that determines them.

Nothing is decided from text a tactic can print: the compile's output is never read (its exit status
is), coqchk and the print files read the compiled ``.vo`` as data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ...core.errors import ConfigError
from ...core.types import CheckResult
from ..process import ManagedProcess, ProcessError, ProcessOutputLimit, ProcessTimeout
from ..sandbox import Sandbox
from .ide import Added, IdeTop
from .library_deps import LibraryDeps
from .recheck import (  # the check's step helpers are shared with the miniF2F check
    CHECK_MODULE,
    _Failed,
    _first_difference,
    _mkdir,
    _normal,
    _require_ok,
    _require_report,
    final_tactics,
    split_assumptions,
    tactic_sentence,
)
from .sentences import InvalidTactic

__all__ = [
    "BatchItem",
    "LemmaContext",
    "LibraryRechecker",
    "ReferenceFacts",
    "automation_header",
    "open_blocks",
    "proof_using",
]

#: the sentence opening every proof in the check files (see the module docstring)
PROOF_USING = "Proof using All."
#: characters of output accepted from a compile or coqchk (an honest one prints next to nothing)
MAX_COMPILE_OUTPUT = 4 * 1024 * 1024
#: characters of output accepted from a print file
MAX_PRINT_OUTPUT = 32 * 1024 * 1024
_PREDICATIVE = "Set is predicative"
_PRINT_FILE = "LlemmaPrint.v"
#: the folder of the reference cache under the user cache dir, and its format (bump on a change)
REFERENCE_CACHE = "library-references"
REFERENCE_CACHE_FORMAT = "1"


@dataclass(frozen=True)
class LemmaContext:
    """A library lemma where it stands in its file (what ``prove --library`` attempts)."""

    library: str
    logical: str
    #: the folder the library's compiled files are in (``rel`` is relative to it)
    root: str
    rel: str
    #: the file's extra coqc/coqidetop arguments (``-noinit``, ``-R root Lib``, ``-Q root Lib``)
    args: tuple[str, ...]
    #: exact source text of the file before the lemma's statement sentence (trusted)
    prefix: str
    #: the statement sentence, exact source text (trusted)
    statement: str
    #: the lemma's name (the last component is used; the modules around it are read from the prefix)
    name: str
    #: automation modules ``Require Import``ed before the prefix for the search (``automation_header``)
    automation: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchItem:
    """One proof of a batch (``LibraryRechecker.check_batch``): the lemma in context, the model's
    tactics, and ``end``, the offset in the file where the lemma's original proof ends (the prefix of a
    later lemma of the batch contains this lemma's statement and original proof up to ``end``)."""

    ctx: LemmaContext
    tactics: tuple[str, ...]
    end: int


def automation_header(automation: Sequence[str]) -> str:
    """The text placed at the very top of the file, before the prefix, for ``automation`` modules."""
    for mod in automation:
        if not re.fullmatch(r"[A-Za-z_][\w']*(?:\.[A-Za-z_][\w']*)*", mod):
            raise ConfigError(f"{mod!r} is not a Coq module name")
    return "".join(f"Require Import {mod}.\n" for mod in automation)


def proof_using() -> str:
    """The sentence the check opens a proof with (``lib``'s search may open it the same way)."""
    return PROOF_USING


# -- the sections and modules a prefix leaves open (trusted text) ------------------------------------
_SECTION_RE = re.compile(r"^(?:#\[[^\]]*\]\s*)?(?:(?:Local|Global)\s+)?Section\s+([A-Za-z_][\w']*)$")
_MODULE_RE = re.compile(
    r"^(?:#\[[^\]]*\]\s*)?(?:Local\s+)?Module\s+(Type\s+)?((?:Import|Export)\s+)?([A-Za-z_][\w']*)\b(.*)$",
    re.DOTALL,
)
_BINDER_RE = re.compile(
    r"^\s*(?:(Import|Export)\s+)?((?:[A-Za-z_][\w']*\s+)*[A-Za-z_][\w']*)\s*:\s*!?(.+?)\s*$", re.DOTALL
)
_END_RE = re.compile(r"^End\s+([A-Za-z_][\w']*)$")


@dataclass(frozen=True)
class _Block:
    kind: str  # "Section", "Module", "Module Type"
    name: str


def trusted_sentences(text: str) -> list[tuple[int, int, str]]:
    """Sentences of trusted Coq text as (start, end, text with comments and strings removed and blanks
    collapsed); enough to find Section/Module/End commands."""
    out: list[tuple[int, int, str]] = []
    buf: list[str] = []
    i, n, depth, start = 0, len(text), 0, 0
    while i < n:
        if text.startswith("(*", i):
            depth += 1
            i += 2
            continue
        if depth:
            if text.startswith("*)", i):
                depth -= 1
                i += 2
            else:
                i += 1
            continue
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n:
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        j += 2
                        continue
                    break
                j += 1
            buf.append('""')
            i = j + 1
            continue
        if ch == "." and (i + 1 >= n or text[i + 1].isspace()) and not (i > 0 and text[i - 1] == "."):
            out.append((start, i + 1, " ".join("".join(buf).split())))
            buf = []
            i += 1
            start = i
            continue
        buf.append(ch)
        i += 1
    return out


def _strip_bullets(sentence: str) -> str:
    return re.sub(r"^[-+*{}\s]+", "", sentence)


def _module_head(rest: str) -> str | None:
    """The binders of an interactive ``Module`` after its name, without a ``: T`` / ``<: T`` type
    constraint; ``None`` when the command is not an interactive module (it has ``:=``)."""
    if ":=" in rest:
        return None
    depth = 0
    for i, ch in enumerate(rest):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch == ":" or (depth == 0 and rest.startswith("<:", i)):
            return rest[:i].rstrip()
    return rest.rstrip()


def open_blocks(prefix: str) -> tuple[tuple[str, str], ...]:
    """The sections and modules open at the end of ``prefix``, outermost first, as (kind, name)."""
    return tuple((b.kind, b.name) for b, _ in _scan(prefix))


def closable_prefix(prefix: str) -> str:
    """``prefix`` with every module it leaves open made a plain module that can be closed right after
    the lemma, and whose lemma can be named from outside:

    * a type constraint is dropped (``Module Z <: ZAxiomsSig.`` becomes ``Module Z.``): the signature's
      later fields would be missing; the module's content is the same without it;
    * a functor's parameters become declared modules (``Module Type P (Import A : S).`` becomes
      ``Declare Module A : S. Import A. Module P.``) and a module type a module: a lemma inside a functor
      or a module type has no name outside it (``Check`` cannot print it, ``coqchk`` does not list its
      axioms); declared, the parameters are as abstract as the functor's. Both check files get the
      same text, so the comparison between them holds.
    """
    out = prefix
    for block, (start, end, head) in reversed(_scan(prefix)):
        if block.kind != "Section" and head is not None:
            out = out[:start] + head + out[end:]
    return out


def _binders(head: str) -> list[tuple[str, list[str], str]] | None:
    """A functor's binders ``(Import A : S) (B C : T A)`` as (Import/Export or "", names, type);
    ``None`` when ``head`` is not a sequence of such binders."""
    out: list[tuple[str, list[str], str]] = []
    i = 0
    while i < len(head):
        if head[i].isspace():
            i += 1
            continue
        if head[i] != "(":
            return None
        depth, j = 0, i
        while j < len(head):
            depth += head[j] == "("
            depth -= head[j] == ")"
            if depth == 0:
                break
            j += 1
        m = _BINDER_RE.match(head[i + 1 : j])
        if depth != 0 or m is None:
            return None
        out.append((m.group(1) or "", m.group(2).split(), m.group(3)))
        i = j + 1
    return out


def _scan(prefix: str) -> list[tuple[_Block, tuple[int, int, str | None]]]:
    """The open blocks with the span of the sentence that opened each and, for a module that must be
    opened differently to be closed right after the lemma, its replacement text (see
    ``closable_prefix``)."""
    stack: list[tuple[_Block, tuple[int, int, str | None]]] = []
    for start, end, sentence in trusted_sentences(prefix):
        s = _strip_bullets(sentence)
        m = _SECTION_RE.match(s)
        if m:
            stack.append((_Block("Section", m.group(1)), (start, end, None)))
            continue
        m = _MODULE_RE.match(s)
        if m and not s.startswith("Declare"):
            head = _module_head(m.group(4))
            if head is None:
                continue  # Module M := ... (not interactive)
            kind = "Module Type" if m.group(1) else "Module"
            name, export = m.group(3), (m.group(2) or "").strip()
            binders = _binders(head)
            opened = f"{export} {name}" if export else name
            text = prefix[start:end]
            lead = text[: len(text) - len(text.lstrip())]
            replacement = None
            if binders is not None and (kind == "Module Type" or binders):
                decls = "".join(
                    f"Declare Module {n} : {typ}.\n" + (f"{kw} {n}.\n" if kw else "")
                    for kw, names, typ in binders
                    for n in names
                )
                replacement = f"{lead}{decls}Module {opened}."
            elif head != m.group(4).rstrip():
                replacement = f"{lead}Module {opened}{' ' + head.strip() if head.strip() else ''}."
            stack.append((_Block(kind, name), (start, end, replacement)))
            continue
        m = _END_RE.match(s)
        if m and stack and stack[-1][0].name == m.group(1):
            stack.pop()
    return stack


@dataclass(frozen=True)
class ReferenceFacts:
    """What the trusted reference (prefix + statement + ``Admitted.``) gives, cached per lemma."""

    #: the reference's axioms minus the admitted lemma: what a proof may depend on
    allowed_axioms: frozenset[str]
    #: the reference's unsafe entries (coqchk -o), normally none
    unsafe: frozenset[str]
    #: the identity print of the reference, white space normalised
    printed: str


@dataclass(frozen=True)
class _Job:
    argv: tuple[str, ...]
    workdir: str
    files: tuple[tuple[str, str], ...] = ()
    read_only: tuple[str, ...] = ()
    max_output: int = MAX_COMPILE_OUTPUT


@dataclass
class _Files:
    header: str
    lines: list[str]  # statement, Proof using All., tactic sentences, Qed.
    ends: str
    kernel_name: str  # LlemmaCheck.<modules>.<name>
    qualified: str  # <modules>.<name>

    @property
    def proof(self) -> str:
        return self.header + "\n".join(self.lines) + "\n" + self.ends

    @property
    def reference(self) -> str:
        return self.header + "\n".join([self.lines[0], PROOF_USING, "Admitted."]) + "\n" + self.ends


class LibraryRechecker:
    """Runs the in-context check (module docstring). One per worker; caches the graph and references.

    ``deps``: the library's dependency graph (built on first use when not given). ``hide=False`` is
    for tests only: it runs without hiding, to show that step 5 alone rejects a proof that loads its
    own file's installed copy.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        coqbin: str = "",
        timeout_s: float = 300.0,
        deps: LibraryDeps | None = None,
        hide: bool = True,
        packages: Sequence[str] = ("Hammer",),
        cache_dir: str | None = None,
        disk_cache: bool = True,
    ) -> None:
        self.sandbox = sandbox
        self.coqbin = coqbin
        self.timeout_s = timeout_s
        self.deps = deps
        self.hide = hide
        self.packages = tuple(packages)
        #: the reference's facts per lemma (prefix + statement), computed on the lemma's first check
        self.reference_cache: dict[str, ReferenceFacts] = {}
        #: where references are cached on disk (``None``: in memory only); see ``_reference_key``
        self.cache_dir: str | None = (
            (cache_dir or os.path.join(_user_cache(), REFERENCE_CACHE)) if disk_cache else None
        )
        #: seconds spent per step, summed over checks; ``references``: reference compiles run
        self.times: dict[str, float] = {
            "compile": 0.0, "structure": 0.0, "kernel": 0.0, "checks": 0.0, "references": 0.0,
            "batches": 0.0, "batch_fallbacks": 0.0,
        }
        self._graphs: dict[tuple[str, str, str], LibraryDeps] = {}
        #: why the last batch was refused (then checked lemma by lemma), "" if none was
        self.last_batch_refusal = ""

    def _bin(self, name: str) -> str:
        return os.path.join(self.coqbin, name) if self.coqbin else name

    # -- the environment of a lemma ---------------------------------------------------------------
    def graph(self, ctx: LemmaContext) -> LibraryDeps:
        """The dependency graph of ``ctx``'s library (``deps`` when given, else built once per library)."""
        if self.deps is not None:
            return self.deps
        key = (ctx.library, ctx.logical, ctx.root)
        if key not in self._graphs:
            self._graphs[key] = LibraryDeps.build(
                _Src(ctx.library, ctx.root, ctx.logical), packages=self.packages, coqc=self._bin("coqc")
            )
        return self._graphs[key]

    def sandbox_for(self, ctx: LemmaContext) -> Sandbox:
        """The sandbox every process of ``ctx``'s check runs in: the installed copy of the file and of
        its dependants hidden (``ConfigError`` without bubblewrap)."""
        if not self.hide:
            return self.sandbox
        return self.sandbox.hiding(self.graph(ctx).hidden_paths(ctx.rel, build_root=ctx.root))

    # -- the check --------------------------------------------------------------------------------
    def check(self, ctx: LemmaContext, tactics: Sequence[str]) -> CheckResult:
        """Accept ``tactics`` as a proof of ``ctx``'s lemma in its context only if every step holds."""
        t0 = time.monotonic()
        try:
            sentences = [tactic_sentence(t) for t in final_tactics(tactics)]
        except InvalidTactic as exc:
            return _result(False, t0, f"rejected: {exc}")
        if not sentences:
            return _result(False, t0, "rejected: no tactic")
        return self.check_sentences(ctx, sentences, started=t0)

    def check_sentences(
        self,
        ctx: LemmaContext,
        sentences: Sequence[str],
        *,
        started: float | None = None,
        parse_structure: bool = True,
    ) -> CheckResult:
        """Steps 1-5 on tactic sentences as they go in the file (``check`` writes them from tactics;
        tests feed hostile sentences directly, ``parse_structure=False`` skipping step 1 to show that
        the kernel steps alone refuse them)."""
        t0 = time.monotonic() if started is None else started
        deadline = t0 + self.timeout_s
        self.times["checks"] += 1
        files = self._files(ctx, sentences)
        root = tempfile.mkdtemp(prefix="llemma-libcheck-")
        try:
            sandbox = self.sandbox_for(ctx)
            return self._check(ctx, files, sandbox, root, deadline, t0, parse_structure)
        except _Failed as exc:
            return _result(False, t0, str(exc))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _files(self, ctx: LemmaContext, sentences: Sequence[str]) -> _Files:
        blocks = open_blocks(ctx.prefix)
        modules = [name for kind, name in blocks if kind != "Section"]
        base = ctx.name.split(".")[-1]
        qualified = ".".join([*modules, base])
        prefix = closable_prefix(ctx.prefix)
        prefix = prefix if prefix.endswith("\n") or not prefix else prefix + "\n"
        ends = "".join(f"End {name}.\n" for _, name in reversed(blocks))
        return _Files(
            header=automation_header(ctx.automation) + prefix,
            lines=[ctx.statement.strip(), PROOF_USING, *sentences, "Qed."],
            ends=ends,
            kernel_name=f"{CHECK_MODULE}.{qualified}",
            qualified=qualified,
        )

    def _check(
        self,
        ctx: LemmaContext,
        files: _Files,
        sandbox: Sandbox,
        root: str,
        deadline: float,
        t0: float,
        parse_structure: bool,
    ) -> CheckResult:
        key = self._reference_key(ctx, files.reference, sandbox)
        cached = self._cached_reference(key)
        proof_dir = _mkdir(root, "proof")
        ref_dir = _mkdir(root, "ref")
        t = time.monotonic()
        jobs = [self._compile(ctx, proof_dir, files.proof)]
        if cached is None:
            jobs.append(self._compile(ctx, ref_dir, files.reference))
        procs = self._start(jobs, sandbox)
        try:
            if parse_structure:
                ts = time.monotonic()
                problem = self._structure(ctx, files, sandbox, deadline)
                self.times["structure"] += time.monotonic() - ts
                if problem is not None:
                    return _result(False, t0, f"not statement + Proof + tactic sentences + Qed.: {problem}")
            compiled = self._collect(jobs, procs, deadline)
        finally:
            for proc in procs:
                proc.close()
        self.times["compile"] += time.monotonic() - t
        _require_ok("coqc (proof file)", compiled[0])
        if cached is None:
            _require_ok("coqc (reference: prefix + statement, Admitted)", compiled[1])
        t = time.monotonic()
        common = _print_file(files.kernel_name)
        kernel_jobs = [
            self._coqchk(ctx, _mkdir(root, "chk-proof"), proof_dir),
            self._print(
                ctx, _mkdir(root, "print-proof"), proof_dir, common + _assumptions(files.kernel_name)
            ),
        ]
        if cached is None:
            kernel_jobs += [
                self._coqchk(ctx, _mkdir(root, "chk-ref"), ref_dir),
                self._print(ctx, _mkdir(root, "print-ref"), ref_dir, common),
            ]
        results = self._run(kernel_jobs, sandbox, deadline)
        self.times["kernel"] += time.monotonic() - t
        if cached is None:
            ref = _require_report("coqchk (reference)", results[2])
            if ref.theory != _PREDICATIVE:
                raise _Failed(f"the reference itself is not predicative: {ref.theory}")
            if files.kernel_name not in ref.axioms:
                raise _Failed(
                    f"the reference does not admit {files.kernel_name} (is {ctx.name!r} the lemma's name?)"
                )
            cached = ReferenceFacts(
                allowed_axioms=frozenset(a for a in ref.axioms if a != files.kernel_name),
                unsafe=frozenset(ref.unsafe),
                printed=_normal(_require_ok("print (reference)", results[3])),
            )
            self._store_reference(key, cached)
        return self._judge(ctx, files, cached, results[0], results[1], t0)

    def _judge(
        self,
        ctx: LemmaContext,
        files: _Files,
        ref: ReferenceFacts,
        chk: tuple[int, str] | str,
        printed: tuple[int, str] | str,
        t0: float,
    ) -> CheckResult:
        report = _require_report("coqchk (proof library)", chk)
        bad = [u for u in report.unsafe if u not in ref.unsafe]
        bad += [a for a in report.axioms if a not in ref.allowed_axioms]
        if report.theory != _PREDICATIVE:
            bad.append(f"Theory: {report.theory}")
        if bad:
            why = "depends on what the file's context does not bring in (coqchk -o)"
            if files.kernel_name in bad:
                why = "the lemma is an axiom of its own proof's library (admitted or assumed)"
            return _result(False, t0, why, report.axioms, bad)
        text, used = split_assumptions(_require_ok("print (proof library)", printed))
        loaded = _loaded_libraries(text)
        if CHECK_MODULE not in loaded:  # fail closed: not the answer Print Libraries gives
            return _result(
                False,
                t0,
                f"print (proof library): no list of loaded libraries naming {CHECK_MODULE}",
                report.axioms,
            )
        forbidden = self.graph(ctx).dependant_modules(ctx.rel)
        own = sorted(m for m in loaded if m in forbidden)
        if own:
            return _result(
                False,
                t0,
                f"the proof's library loads the installed copy of {ctx.rel} or of a file that depends on it",
                report.axioms,
                own,
            )
        if used is None or _normal(text) != ref.printed:
            return _result(
                False,
                t0,
                f"the compiled {files.kernel_name} is not the original statement in the original context: "
                f"{_first_difference(ref.printed, text)}",
                report.axioms,
            )
        return _result(True, t0, "", used)

    # -- the batch ----------------------------------------------------------------------------------
    def check_batch(self, items: Sequence[BatchItem]) -> list[CheckResult]:
        """The check of several proofs of lemmas of one file at once (same guarantees as ``check``).

        One proof file: the file up to the last lemma's statement, every batched lemma's original
        proof replaced by ``Proof using All.`` + its model proof + ``Qed.`` (other lemmas keep their
        original proofs), then the last lemma's model proof; one reference: the same text with every
        batched lemma ``Admitted``; one structure parse of every model line; one coqchk of each (the
        allowed axioms: the reference's minus every batched lemma); one print per library showing every
        batched lemma's type. Any refusal of the batch (a hostile proof, a later original proof that
        ``Proof using All.`` broke, ...) falls back to ``check`` of each lemma on its own, so a proof can
        only make its own lemma fail. A batch's time is split evenly over its lemmas (``elapsed``); an
        accepted batch says ``batched: N`` in each result's message."""
        t0 = time.monotonic()
        if len(items) == 1:
            return [self.check(items[0].ctx, items[0].tactics)]
        if not items:
            return []
        self.times["batches"] += 1
        why = ""
        try:
            results = self._batch(items, t0)
        except _Failed as exc:
            why = str(exc)
        except ConfigError:
            raise
        else:
            return results
        self.times["batch_fallbacks"] += 1
        self.last_batch_refusal = why
        share = (time.monotonic() - t0) / len(items)
        out = []
        for item in items:
            res = self.check(item.ctx, item.tactics)
            out.append(dataclasses.replace(res, elapsed=res.elapsed + share))
        return out

    def _batch(self, items: Sequence[BatchItem], t0: float) -> list[CheckResult]:
        deadline = t0 + self.timeout_s
        last = items[-1].ctx
        sentences: list[list[str]] = []
        for item in items:
            try:
                sentences.append([tactic_sentence(t) for t in final_tactics(item.tactics)])
            except InvalidTactic as exc:
                raise _Failed(f"rejected: {exc}") from exc
            if not sentences[-1]:
                raise _Failed("rejected: no tactic")
        for a, b in zip(items, items[1:], strict=False):
            same = (a.ctx.library, a.ctx.rel, a.ctx.root, a.ctx.args, a.ctx.automation) == (
                b.ctx.library, b.ctx.rel, b.ctx.root, b.ctx.args, b.ctx.automation)
            start = len(a.ctx.prefix)
            if not same or not (start + len(a.ctx.statement) <= a.end <= len(b.ctx.prefix)) or not (
                b.ctx.prefix.startswith(a.ctx.prefix + a.ctx.statement)
            ):
                raise _Failed("the lemmas are not of one file, in file order")
        kernel: list[str] = []
        # a functor, module type or constrained module is made closable only where it is still open
        # at the last lemma (``closable_prefix``): an earlier lemma inside one closed before is refused
        reopened = {span[0] for _, span in _scan(last.prefix) if span[2] is not None}
        for item in items[:-1]:
            blocks = _scan(item.ctx.prefix)
            if any(b.kind != "Section" and rep is not None and a not in reopened
                   and not _transparent_constraint(item.ctx.prefix, a) for b, (a, _, rep) in blocks):
                raise _Failed(f"{item.ctx.name} is in a functor, module type or sealed module")
            mods = [b.name for b, _ in blocks if b.kind != "Section"]
            kernel.append(f"{CHECK_MODULE}.{'.'.join([*mods, item.ctx.name.split('.')[-1]])}")
        files = self._files(last, sentences[-1])
        kernel.append(files.kernel_name)
        if len(set(kernel)) != len(kernel):
            raise _Failed("two batched lemmas have one kernel name")
        # the file: trusted prefix of the last lemma, earlier batched proofs replaced (by offsets in
        # the trusted text), the modules left open made closable
        edits: list[tuple[int, int, str | Sequence[str]]] = [
            (len(it.ctx.prefix) + len(it.ctx.statement), it.end, body)
            for it, body in zip(items[:-1], sentences[:-1], strict=True)
        ]
        edits += [(a, b, rep) for _, (a, b, rep) in _scan(last.prefix) if rep is not None]
        edits.sort(key=lambda e: e[0])

        def text(admitted: bool) -> str:
            out, pos = [], 0
            for a, b, rep in edits:
                out.append(last.prefix[pos:a])
                if isinstance(rep, str):
                    out.append(rep)
                else:
                    body = ["Admitted."] if admitted else [*rep, "Qed."]
                    out.append("\n" + "\n".join([PROOF_USING, *body]) + "\n")
                pos = b
            out.append(last.prefix[pos:])
            prefix = "".join(out)
            prefix = prefix if prefix.endswith("\n") or not prefix else prefix + "\n"
            return automation_header(last.automation) + prefix

        proof_text = text(False) + "\n".join(files.lines) + "\n" + files.ends
        reference = text(True) + "\n".join([files.lines[0], PROOF_USING, "Admitted."]) + "\n" + files.ends
        root = tempfile.mkdtemp(prefix="llemma-libbatch-")
        try:
            sandbox = self.sandbox_for(last)
            return self._check_batch(items, sentences, kernel, proof_text, reference, sandbox, root,
                                     deadline, t0)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _check_batch(self, items: Sequence[BatchItem], sentences: Sequence[Sequence[str]],
                     kernel: Sequence[str], proof_text: str, reference: str, sandbox: Sandbox, root: str,
                     deadline: float, t0: float) -> list[CheckResult]:
        last = items[-1].ctx
        key = self._reference_key(last, reference, sandbox)
        cached = self._cached_reference(key)
        proof_dir, ref_dir = _mkdir(root, "proof"), _mkdir(root, "ref")
        t = time.monotonic()
        jobs = [self._compile(last, proof_dir, proof_text)]
        if cached is None:
            jobs.append(self._compile(last, ref_dir, reference))
        procs = self._start(jobs, sandbox)
        try:
            ts = time.monotonic()
            problem = self._batch_structure(items, sentences, sandbox, deadline)
            self.times["structure"] += time.monotonic() - ts
            if problem is not None:
                raise _Failed(f"not statement + Proof + tactic sentences + Qed.: {problem}")
            compiled = self._collect(jobs, procs, deadline)
        finally:
            for proc in procs:
                proc.close()
        self.times["compile"] += time.monotonic() - t
        _require_ok("coqc (batch proof file)", compiled[0])
        if cached is None:
            _require_ok("coqc (batch reference)", compiled[1])
        t = time.monotonic()
        common = _print_file(kernel[0]).replace(
            f"Check @{kernel[0]}.\n", "".join(f"Check @{k}.\n" for k in kernel))
        kernel_jobs = [
            self._coqchk(last, _mkdir(root, "chk-proof"), proof_dir),
            self._print(last, _mkdir(root, "print-proof"), proof_dir,
                        common + "".join(_assumptions(k) for k in kernel)),
        ]
        if cached is None:
            kernel_jobs += [
                self._coqchk(last, _mkdir(root, "chk-ref"), ref_dir),
                self._print(last, _mkdir(root, "print-ref"), ref_dir, common),
            ]
        results = self._run(kernel_jobs, sandbox, deadline)
        self.times["kernel"] += time.monotonic() - t
        if cached is None:
            ref = _require_report("coqchk (batch reference)", results[2])
            if ref.theory != _PREDICATIVE:
                raise _Failed(f"the reference itself is not predicative: {ref.theory}")
            missing = [k for k in kernel if k not in ref.axioms]
            if missing:
                raise _Failed(f"the batch reference does not admit {missing}")
            cached = ReferenceFacts(
                allowed_axioms=frozenset(a for a in ref.axioms if a not in kernel),
                unsafe=frozenset(ref.unsafe),
                printed=_normal(_require_ok("print (batch reference)", results[3])),
            )
            self._store_reference(key, cached)
        report = _require_report("coqchk (batch proof library)", results[0])
        bad = [u for u in report.unsafe if u not in cached.unsafe]
        bad += [a for a in report.axioms if a not in cached.allowed_axioms]
        if report.theory != _PREDICATIVE:
            bad.append(f"Theory: {report.theory}")
        if bad:
            raise _Failed(f"the batch depends on what the file's context does not bring in: {bad[:5]}")
        text = _require_ok("print (batch proof library)", results[1])
        used: list[tuple[str, ...]] = []
        for _ in kernel:
            text, axioms = split_assumptions(text)
            if axioms is None:
                raise _Failed("print (batch proof library): no Print Assumptions answer")
            used.append(axioms)
        used.reverse()
        forbidden = self.graph(last).dependant_modules(last.rel)
        own = sorted(m for m in _loaded_libraries(text) if m in forbidden)
        if own:
            raise _Failed(f"the batch's library loads {own}")
        if _normal(text) != cached.printed:
            raise _Failed(f"the batch's types differ: {_first_difference(cached.printed, text)}")
        share = (time.monotonic() - t0) / len(items)
        return [
            CheckResult(ok=True, checker="coqchk-library", elapsed=share, message=f"batched: {len(items)}",
                        axioms=tuple(u))
            for u in used
        ]

    def _batch_structure(self, items: Sequence[BatchItem], sentences: Sequence[Sequence[str]],
                         sandbox: Sandbox, deadline: float) -> str | None:
        """Step 1 for every lemma of a batch in one coqidetop: after automation + the (closable) prefix
        of the first lemma, each lemma's lines are added unexecuted, the document goes back, and the
        file's trusted text up to the next lemma is run (``Load``)."""
        first = items[0].ctx
        per = [self._files(it.ctx, list(sen)) for it, sen in zip(items, sentences, strict=True)]
        for k, files in enumerate(per):
            for i, line in enumerate(files.lines[2:-1], start=3):
                if not line.lstrip().startswith("(") and not re.match(r"^[^(]*:\s*\(", line):
                    return f"{items[k].ctx.name}: sentence {i} is not a parenthesised tactic: {line[:200]!r}"
        proc = ManagedProcess(
            IdeTop.argv(self._bin("coqidetop.opt"), *first.args, "-l", "header.v"),
            private_tmpdir=True,
            sandbox=sandbox,
            stderr_file=True,
            read_only=(first.root,),
        )
        workdir = proc.workdir
        assert workdir is not None
        with open(os.path.join(workdir, "header.v"), "w", encoding="utf-8") as fh:
            fh.write(per[0].header)
        ide = IdeTop(proc)
        try:
            base = ide.start(deadline)
            for k, files in enumerate(per):
                tip = base
                for i, line in enumerate(files.lines):
                    if not line.endswith("."):
                        return f"{items[k].ctx.name}: sentence {i + 1} does not end with a period"
                    problem = ide.parses_to_end(line[:-1], tip, deadline)
                    if problem is not None:
                        return (f"{items[k].ctx.name}: Coq's parser does not read sentence {i + 1} as one "
                                f"({problem.message}): {line[:300]!r}")
                    added = ide.add(line, tip, deadline)
                    if not isinstance(added, Added):
                        return f"{items[k].ctx.name}: Coq's parser refuses sentence {i + 1}: {added.message}"
                    tip = added.state_id
                if k + 1 == len(per):
                    break
                failure = ide.edit_at(base, deadline)
                if failure is not None:
                    return f"cannot go back: {failure.message}"
                # the file's trusted text up to the next lemma, run by ``Load`` (as ``-l`` runs the
                # header): one request instead of one per sentence
                chunk = os.path.join(workdir, f"chunk{k}.v")
                with open(chunk, "w", encoding="utf-8") as fh:
                    fh.write(items[k + 1].ctx.prefix[len(items[k].ctx.prefix):])
                loaded = ide.add(f'Load "{chunk}".', base, deadline)
                failure = loaded if not isinstance(loaded, Added) else ide.observe(deadline)
                if failure is not None:
                    return f"the file's text before {items[k + 1].ctx.name} does not run: {failure.message}"
                assert isinstance(loaded, Added)
                base = loaded.state_id
        except ProcessError as exc:
            return f"coqidetop failed: {exc} {proc.stderr_tail()[-500:]}"
        finally:
            ide.close()
        return None

    # -- the reference cache ------------------------------------------------------------------------
    def _reference_key(self, ctx: LemmaContext, reference: str, sandbox: Sandbox) -> str:
        """sha256 of everything the reference's facts depend on: its text (automation, prefix,
        statement, ends), the file's arguments, the library and its root, the Coq version and the
        files hidden from it."""
        h = hashlib.sha256(f"{REFERENCE_CACHE_FORMAT}\0{self.graph(ctx).coq_version}".encode())
        for part in (ctx.library, ctx.logical, ctx.root, ctx.rel, *ctx.args, reference, *sandbox.hidden):
            h.update(b"\0" + part.encode())
        return h.hexdigest()

    def _cached_reference(self, key: str) -> ReferenceFacts | None:
        cached = self.reference_cache.get(key)
        if cached is not None or self.cache_dir is None:
            return cached
        try:
            with open(os.path.join(self.cache_dir, f"{key}.json"), encoding="utf-8") as fh:
                data = json.load(fh)
            cached = ReferenceFacts(
                allowed_axioms=frozenset(str(a) for a in data["allowed_axioms"]),
                unsafe=frozenset(str(u) for u in data["unsafe"]),
                printed=str(data["printed"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or damaged: compiled again
        if data.get("key") != key:
            return None
        self.reference_cache[key] = cached
        return cached

    def _store_reference(self, key: str, facts: ReferenceFacts) -> None:
        """Kept in memory and written atomically to the disk cache (only our process writes it, from
        the trusted reference compile: no model text reaches a reference)."""
        self.reference_cache[key] = facts
        self.times["references"] += 1
        if self.cache_dir is None:
            return
        data = {"key": key, "allowed_axioms": sorted(facts.allowed_axioms),
                "unsafe": sorted(facts.unsafe), "printed": facts.printed}
        try:
            os.makedirs(self.cache_dir, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", dir=self.cache_dir)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, os.path.join(self.cache_dir, f"{key}.json"))
        except OSError:
            pass  # the cache is an optimisation; the in-memory copy stands

    # -- step 1 -------------------------------------------------------------------------------------
    def _structure(self, ctx: LemmaContext, files: _Files, sandbox: Sandbox, deadline: float) -> str | None:
        """``None`` when Coq's parser, after automation + prefix, reads each line as one sentence."""
        for i, line in enumerate(files.lines[2:-1], start=3):
            if not line.lstrip().startswith("(") and not re.match(r"^[^(]*:\s*\(", line):
                return f"sentence {i} is not a parenthesised tactic: {line[:200]!r}"
        proc = ManagedProcess(
            IdeTop.argv(self._bin("coqidetop.opt"), *ctx.args, "-l", "header.v"),
            private_tmpdir=True,
            sandbox=sandbox,
            stderr_file=True,
            read_only=(ctx.root,),
        )
        workdir = proc.workdir
        assert workdir is not None
        with open(os.path.join(workdir, "header.v"), "w", encoding="utf-8") as fh:
            fh.write(files.header)
        ide = IdeTop(proc)
        try:
            tip = ide.start(deadline)
            for i, line in enumerate(files.lines):
                if not line.endswith("."):
                    return f"sentence {i + 1} does not end with a period: {line[:200]!r}"
                problem = ide.parses_to_end(line[:-1], tip, deadline)
                if problem is not None:
                    why = problem.message
                    return f"Coq's parser does not read sentence {i + 1} as one ({why}): {line[:300]!r}"
                added = ide.add(line, tip, deadline)
                if not isinstance(added, Added):
                    return f"Coq's parser refuses sentence {i + 1}: {added.message}"
                tip = added.state_id
        except ProcessError as exc:
            return f"coqidetop failed: {exc} {proc.stderr_tail()[-500:]}"
        finally:
            ide.close()
        return None

    # -- processes ----------------------------------------------------------------------------------
    def _compile(self, ctx: LemmaContext, workdir: str, source: str) -> _Job:
        return _Job(
            (self._bin("coqc"), "-q", *ctx.args, f"{CHECK_MODULE}.v"),
            workdir,
            files=((f"{CHECK_MODULE}.v", source),),
            read_only=(ctx.root,),
        )

    def _coqchk(self, ctx: LemmaContext, workdir: str, lib: str) -> _Job:
        return _Job(
            (
                self._bin("coqchk"),
                "-silent",
                "-o",
                "-norec",
                CHECK_MODULE,
                *_load_args(ctx.args),
                "-Q",
                lib,
                "",
            ),
            workdir,
            read_only=(lib, ctx.root),
        )

    def _print(self, ctx: LemmaContext, workdir: str, lib: str, source: str) -> _Job:
        return _Job(
            (self._bin("coqc"), "-q", *ctx.args, "-Q", lib, "", _PRINT_FILE),
            workdir,
            files=((_PRINT_FILE, source),),
            read_only=(lib, ctx.root),
            max_output=MAX_PRINT_OUTPUT,
        )

    def _run(self, jobs: Sequence[_Job], sandbox: Sandbox, deadline: float) -> list[tuple[int, str] | str]:
        procs = self._start(jobs, sandbox)
        try:
            return self._collect(jobs, procs, deadline)
        finally:
            for proc in procs:
                proc.close()

    def _start(self, jobs: Sequence[_Job], sandbox: Sandbox) -> list[ManagedProcess]:
        procs: list[ManagedProcess] = []
        try:
            for job in jobs:
                for fname, content in job.files:
                    with open(os.path.join(job.workdir, fname), "w", encoding="utf-8") as fh:
                        fh.write(content)
                proc = ManagedProcess(
                    job.argv,
                    private_tmpdir=False,
                    cwd=job.workdir,
                    env_extra={"HOME": job.workdir, "TMPDIR": job.workdir},
                    sandbox=sandbox,
                    read_only=job.read_only,
                    max_output_chars=job.max_output,
                )
                procs.append(proc)
                proc.start()
        except ProcessError as exc:
            for proc in procs:
                proc.close()
            raise _Failed(f"could not start {exc}") from exc
        return procs

    @staticmethod
    def _collect(
        jobs: Sequence[_Job], procs: Sequence[ManagedProcess], deadline: float
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


@dataclass(frozen=True)
class _Src:
    library: str
    root: str
    logical: str


def _transparent_constraint(prefix: str, start: int) -> bool:
    """Whether the module opened by the trusted sentence at ``start`` is a plain module with only a
    transparent constraint (``Module Z <: ZAxiomsSig.``): closed as the file closes it, its lemmas keep
    their names and coqchk lists their axioms (a lemma that lost its name fails the print's ``Check``)."""
    for a, _, sentence in trusted_sentences(prefix):
        if a != start:
            continue
        m = _MODULE_RE.match(_strip_bullets(sentence))
        if m is None or m.group(1):
            return False
        head = _module_head(m.group(4))
        binders = _binders(head) if head is not None else None
        return head is not None and not binders and m.group(4)[len(head):].lstrip().startswith("<:")
    return False


def _load_args(args: Sequence[str]) -> list[str]:
    """The ``-R``/``-Q`` pairs of a file's arguments (what coqchk understands of them)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in ("-R", "-Q") and i + 2 < len(args) + 1:
            out += list(args[i : i + 3])
            i += 3
        else:
            i += 1
    return out


def _print_file(kernel_name: str) -> str:
    return (
        "\n".join(
            [
                f"Require {CHECK_MODULE}.",
                "Set Printing All.",
                "Set Printing Width 1000000.",
                "Print ML Modules.",
                f"Print Module {CHECK_MODULE}.",
                f"Check @{kernel_name}.",
                "Print Libraries.",
            ]
        )
        + "\n"
    )


def _assumptions(kernel_name: str) -> str:
    return f"Print Assumptions {kernel_name}.\n"


def _loaded_libraries(text: str) -> list[str]:
    """The module names ``Print Libraries`` listed (the print file's last answer before the assumptions)."""
    lines = text.split("\n")
    try:
        start = max(i for i, line in enumerate(lines) if line.strip() == "Loaded library files:")
    except ValueError:
        return []
    out: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("  ") or len(line.split()) != 1:
            break
        out.append(line.strip())
    return out


def _user_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "llemma-prover")


def _result(
    ok: bool, t0: float, message: str, axioms: Sequence[str] = (), bad: Sequence[str] = ()
) -> CheckResult:
    return CheckResult(
        ok=ok,
        checker="coqchk-library",
        elapsed=time.monotonic() - t0,
        message=message,
        axioms=tuple(axioms),
        bad_axioms=tuple(bad),
    )
