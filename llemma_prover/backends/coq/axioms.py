"""The ``coqc`` re-check of a whole proof file, with its ``Print Assumptions`` audit.

``check_source(text, name=..., header=...)`` compiles ``text + "Print Assumptions <name>."`` with
``coqc`` in a fresh private directory (killed as a process group on timeout) and accepts the proof
only when coqc exits 0 and every axiom it depends on is *brought in by the header*:

* an axiom the header declares itself (``Axiom``/``Parameter``/``Hypothesis``/``Variable``/
  ``Conjecture``, e.g. ``Parameter Rfloor``/``Axiom Rfloor_spec`` in valid/amc12a_2016_p3), or
* an axiom of a library the header loads (``ClassicalDedekindReals.sig_forall_dec``,
  ``FunctionalExtensionality.functional_extensionality_dep``, ``classic`` after ``Require Classical``).

The second case is decided by Coq, not by a list: every reported name that the header text does not
declare is looked up with ``Locate`` in a file that contains *only the header*; a name that resolves
there is something the header brings in. A name that does not resolve (an axiom smuggled in by the
proof part of the file) is a ``bad_axiom``. Print Assumptions sections other than ``Axioms:``
(type-in-type, unsafe fixpoints, non-positive inductives) are always bad. The look-ups are cached per
header (``allowed_cache``), so the second coqc run happens once per header and new axiom.
"""

from __future__ import annotations

import re
import time
from collections.abc import MutableMapping

from ...core.types import CheckResult
from ..process import ManagedProcess, ProcessError, ProcessTimeout
from ..sandbox import Sandbox

__all__ = ["check_source", "header_declared_names", "parse_assumptions", "theorem_name"]

_THEOREM_RE = re.compile(
    r"^\s*(?:Theorem|Lemma|Fact|Remark|Corollary|Proposition|Example)\s+([A-Za-z_][\w']*)", re.MULTILINE
)
_DECL_RE = re.compile(
    r"\b(?:Axiom|Axioms|Parameter|Parameters|Hypothesis|Hypotheses|Variable|Variables|Conjecture)\s+"
    r"((?:\(?\s*[A-Za-z_][\w']*\s*)+)"
)
_SECTION_RE = re.compile(r"^([A-Z][A-Za-z -]*):\s*$")


def theorem_name(statement: str) -> str | None:
    """The name declared by a ``Theorem name ...`` statement."""
    m = _THEOREM_RE.search(statement)
    return m.group(1) if m else None


def header_declared_names(header: str) -> frozenset[str]:
    """Names the header text itself declares as axioms/parameters/hypotheses/variables."""
    names: set[str] = set()
    for m in _DECL_RE.finditer(_strip_comments(header)):
        names.update(w for w in re.findall(r"[A-Za-z_][\w']*", m.group(1)))
    return frozenset(names)


def parse_assumptions(output: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(axioms, other unsafe entries, closed) from the output of ``Print Assumptions``."""
    if "Closed under the global context" in output:
        return (), (), True
    axioms: list[str] = []
    unsafe: list[str] = []
    section = None
    for line in output.splitlines():
        sec = _SECTION_RE.match(line)
        if sec:
            section = sec.group(1)
            continue
        # an entry starts at column 0 ("name : type" or "name" with the type on indented lines)
        if section is None or not line or line[0].isspace():
            continue
        entry = line.split()[0]
        (axioms if section == "Axioms" else unsafe).append(
            entry if section == "Axioms" else f"{section}: {entry}"
        )
    return tuple(axioms), tuple(unsafe), bool(axioms or unsafe)


def _run_coqc(
    source: str,
    module: str,
    *,
    coqc: str,
    deadline: float,
    memory_limit_mb: int,
    sandbox: Sandbox | None = None,
) -> tuple[int, str, str]:
    """(exit status, stdout, stderr). Kept apart: Coq prints warnings (e.g. Coquelicot's coercion
    paths) on stderr, and through pipes they may land anywhere in stdout, inside the answer of
    ``Print Assumptions`` too, where a warning line read as an entry would reject a sound proof."""
    proc = ManagedProcess(
        [coqc, "-q", f"{module}.v"],
        memory_limit_mb=memory_limit_mb,
        private_tmpdir=True,
        sandbox=sandbox,
        stderr_file=True,
    )
    try:
        workdir = proc.workdir
        assert workdir is not None
        with open(f"{workdir}/{module}.v", "w", encoding="utf-8") as fh:
            fh.write(source)
        proc.start()
        status, out = proc.wait(deadline)
        return status, out, proc.stderr_tail(1 << 16)
    finally:
        proc.close()


def check_source(
    text: str,
    *,
    name: str,
    header: str,
    timeout: float,
    memory_limit_mb: int = 0,
    coqc: str = "coqc",
    allowed_cache: MutableMapping[str, frozenset[str]] | None = None,
    started: float | None = None,
    module: str = "LlemmaCheck",
    sandbox: Sandbox | None = None,
) -> CheckResult:
    """Compile ``text`` (a whole proof file for theorem ``name``) and audit its axioms."""
    t0 = time.monotonic() if started is None else started
    deadline = t0 + timeout
    source = text.rstrip("\n") + f"\nPrint Assumptions {name}.\n"
    try:
        status, out, err = _run_coqc(
            source, module, coqc=coqc, deadline=deadline, memory_limit_mb=memory_limit_mb, sandbox=sandbox
        )
    except ProcessTimeout:
        return CheckResult(
            ok=False,
            checker="coqc",
            elapsed=time.monotonic() - t0,
            message=f"coqc timed out after {timeout:.0f}s",
        )
    except ProcessError as exc:
        return CheckResult(
            ok=False, checker="coqc", elapsed=time.monotonic() - t0, message=f"coqc failed to run: {exc}"
        )
    if status != 0:
        msg = " ".join(f"{out}\n{err}".split())[-800:]
        return CheckResult(
            ok=False, checker="coqc", elapsed=time.monotonic() - t0, message=f"coqc exit {status}: {msg}"
        )
    axioms, unsafe, _ = parse_assumptions(out)
    declared = header_declared_names(header)
    unknown = [a for a in axioms if a.rsplit(".", 1)[-1] not in declared]
    bad: list[str] = list(unsafe)
    if unknown:
        cache = allowed_cache if allowed_cache is not None else {}
        known = cache.get(header, frozenset())
        to_locate = [a for a in unknown if a not in known]
        if to_locate:
            located = _locate_in_header(
                header, to_locate, coqc=coqc, deadline=deadline, memory_limit_mb=memory_limit_mb
            )
            if located is None:
                return CheckResult(
                    ok=False,
                    checker="coqc",
                    elapsed=time.monotonic() - t0,
                    axioms=axioms,
                    message="could not look up axioms in the header environment",
                )
            known = known | located
            cache[header] = known
        bad.extend(a for a in unknown if a not in known)
    ok = not bad
    return CheckResult(
        ok=ok,
        checker="coqc",
        elapsed=time.monotonic() - t0,
        message="" if ok else "depends on axioms the header does not bring in",
        axioms=axioms,
        bad_axioms=tuple(bad),
    )


def _locate_in_header(
    header: str, names: list[str], *, coqc: str, deadline: float, memory_limit_mb: int
) -> frozenset[str] | None:
    """Which of ``names`` resolve to a constant in an environment made of the header alone."""
    # ``Locate x`` prints one or more lines ("Constant Coq.Logic.Classical_Prop.classic", ...) or
    # "No object of basename x"; a ``Locate`` of a name that cannot exist separates the answers.
    lines = [header.rstrip("\n")]
    for i, n in enumerate(names):
        lines.append(f"Locate {_SEPARATOR}{i}.")
        lines.append(f"Locate {n}.")
    try:
        status, out, err = _run_coqc(
            "\n".join(lines) + "\n",
            "LlemmaLocate",
            coqc=coqc,
            deadline=deadline,
            memory_limit_mb=memory_limit_mb,
        )
    except ProcessError:
        return None
    if status != 0:
        return None
    out = f"{out}\n{err}"
    found = set()
    for i, n in enumerate(names):
        marker = f"No object of basename {_SEPARATOR}{i}"
        if marker not in out:
            return None
        block = out.split(marker, 1)[1]
        nxt = block.find(f"No object of basename {_SEPARATOR}{i + 1}")
        block = block if nxt < 0 else block[:nxt]
        if re.search(r"^Constant\s+\S+", block, re.MULTILINE):
            found.add(n)
    return frozenset(found)


_SEPARATOR = "LlemmaLocateSeparator"


def _strip_comments(text: str) -> str:
    out, depth, i = [], 0, 0
    while i < len(text):
        if text.startswith("(*", i):
            depth += 1
            i += 2
        elif depth and text.startswith("*)", i):
            depth -= 1
            i += 2
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)
