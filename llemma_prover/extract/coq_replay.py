"""Replay one Coq source file sentence by sentence in ``coqidetop`` and record every proof step.

Coq decides everything structural: ``IdeTop.split_sentences`` (``backends/coq/ide.py``) lets Coq's
parser cut the file into sentences and executes each before the next is parsed (a sentence can change
the grammar: ``Notation``, ``Tactic Notation``, ``Ltac``); after every sentence the ``Goal`` call says
whether a proof is open and what its goals are, and ``Status`` names the proof that just opened. So:

* a sentence after which a proof is open and before which none was is a proof's *statement*
  (``Lemma``, ``Theorem``, ``Definition f : T.``, ``Instance``, ``Next Obligation``, ...);
* inside a proof every sentence is run; the *tactic* sentences become steps (``goals_before``: the
  focused goals before it, ``goals_after``: after it, both as Coq reports them). Bullets and braces
  (``-``, ``+*``, ``{``, ``2: {``) and commands (``Proof``, ``Proof using``, ``Show``, ``Hint``:
  sentences that start with an upper-case letter) change focus but are not steps;
* the sentence after which no proof is open closes the proof: ``Qed``/``Defined``/``Save`` keep its
  steps (a *complete* proof, every step replayed), ``Admitted`` and ``Abort`` drop them (counted).

Which sentence is a tactic is read from the library's own text (the step data is not model output;
nothing here decides soundness). ``Variable``/``Context`` of sections appear as hypotheses of the goals,
files that define Ltac or notations before their proofs are handled by running the file in order, and
the file is loaded under its own logical name (``-topfile``; the Init files with ``-noinit``), so it
sees exactly the libraries it ``Require``s (their ``.vo`` must exist: installed, or compiled first by
``sources.compile_library``).

A file whose replay stops (a sentence Coq rejects, a timeout, a crashed process) keeps the proofs
completed before that point; the failure and its kind are part of the file's result.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.coq.ide import CoqFailure, Goal, Goals, IdeTop, Sentence
from ..backends.process import ManagedProcess, ProcessError, ProcessExited, ProcessTimeout
from ..backends.sandbox import Sandbox

__all__ = ["FileJob", "FileResult", "replay_file", "goal_record", "is_structural", "is_tactic"]

#: seconds for starting coqidetop and loading the prelude
START_TIMEOUT_S = 120.0
#: seconds for one ``Goal``/``Status`` call (execution of the sentence itself is bounded by the file's)
CALL_TIMEOUT_S = 120.0

_BULLET_RE = re.compile(r"^(?:\d+\s*:\s*|\[\s*\w+\s*\]\s*:\s*)?(?:[-+*]+|[{}])$")
_CLOSE_KEEP = ("Qed", "Defined", "Save")
_CLOSE_DROP = ("Admitted", "Abort")
_FIRST_WORD_RE = re.compile(r"^(?:#\[[^\]]*\]\s*)?([A-Za-z_][\w']*)")


@dataclass(frozen=True)
class FileJob:
    """One file to replay: where it is, its library, and how coqidetop must be started for it."""

    library: str
    #: path relative to the library root (what records and splits use)
    rel: str
    #: absolute path of the ``.v`` file coqidetop loads it as (``-topfile``)
    path: str
    #: extra coqidetop arguments (``-R dir Lib``, ``-noinit``)
    args: tuple[str, ...] = ()
    split: str = "train"

    @property
    def key(self) -> str:
        return f"{self.library}/{self.rel}"


@dataclass
class FileResult:
    """What replaying one file gave: the steps of its complete proofs and the counts the card adds up."""

    key: str
    library: str
    file: str
    split: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    #: the complete proofs where Coq found them: ``{"theorem", "line", "start", "stmt_end", "end",
    #: "closed_by", "steps"}`` (character offsets in the file: the statement sentence is
    #: ``[start, stmt_end)``, the proof after it ends at ``end``; ``steps``: how many of ``steps`` are its)
    proofs_at: list[dict[str, Any]] = field(default_factory=list)
    sentences: int = 0
    proofs: int = 0
    admitted: int = 0
    aborted: int = 0
    #: proofs open when the replay stopped (their steps are dropped)
    interrupted: int = 0
    #: None when the whole file replayed; else "coq_error" | "timeout" | "crash" | "protocol" | "start"
    failure: str | None = None
    message: str = ""
    line: int | None = None
    elapsed: float = 0.0

    def summary(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("steps", "proofs_at")}
        d["steps"] = len(self.steps)
        return d


def goal_record(goal: Goal) -> dict[str, Any]:
    """``{"hyps": [...], "concl": str}`` as Coq printed them (white space collapsed)."""
    return {"hyps": [" ".join(h.split()) for h in goal.hyps], "concl": " ".join(goal.concl.split())}


def is_structural(text: str) -> bool:
    """A bullet or brace sentence (optionally with a goal selector): focus, not a step."""
    return bool(_BULLET_RE.match(text.strip()))


def is_tactic(text: str) -> bool:
    """A tactic sentence: not structural, and not a command (Coq commands start with a capital)."""
    t = text.strip()
    if not t or is_structural(t):
        return False
    return not t[0].isupper() and not t.startswith("#[")


def _first_word(text: str) -> str:
    m = _FIRST_WORD_RE.match(text.strip())
    return m.group(1) if m else ""


def _tactic_text(sentence: str) -> str:
    t = sentence.strip()
    if t.endswith("...") and not t.endswith("...."):
        return t[:-3].rstrip()
    return t[:-1].rstrip() if t.endswith(".") else t


class _Proof:
    def __init__(self, name: str, statement: str, line: int, start: int = 0, stmt_end: int = 0) -> None:
        self.name = name
        self.statement = statement
        self.line = line
        self.start = start
        self.stmt_end = stmt_end
        self.steps: list[dict[str, Any]] = []


def replay_file(job: FileJob, *, coqidetop: str = "coqidetop.opt", sandbox: Sandbox | None = None,
                memory_limit_mb: int = 4096, file_timeout: float = 900.0) -> FileResult:
    """Replay ``job``'s file; never raises for a Coq or process problem (it is the result's failure)."""
    t0 = time.monotonic()
    res = FileResult(key=job.key, library=job.library, file=job.rel, split=job.split)
    try:
        source = Path(job.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        res.failure, res.message = "start", f"cannot read {job.path}: {exc}"
        return res
    argv = IdeTop.argv(coqidetop, *job.args, "-topfile", job.path)
    # the library roots (-R/-Q DIR LIB) may be a build folder under /tmp, which a bwrap sandbox hides:
    # make them (and the file's own folder) visible read-only
    roots = [job.args[i + 1] for i, a in enumerate(job.args[:-1]) if a in ("-R", "-Q")]
    proc = ManagedProcess(argv, memory_limit_mb=memory_limit_mb, scrub_env=True, private_tmpdir=True,
                          sandbox=sandbox, read_only=(*roots, str(Path(job.path).parent)))
    ide = IdeTop(proc)
    file_deadline = t0 + file_timeout
    stage = "start"
    try:
        root = ide.start(min(file_deadline, time.monotonic() + START_TIMEOUT_S))
        stage = "replay"
        _replay(ide, root, source, job, res, file_deadline)
    except ProcessTimeout as exc:
        res.failure = "start" if stage == "start" else "timeout"
        res.message = f"no answer within the file's {file_timeout:g} s ({exc})"
    except ProcessExited as exc:
        res.failure = "start" if stage == "start" else "crash"
        res.message = " ".join(f"coqidetop exited: {exc} {exc.tail[-300:]}".split())
    except ProcessError as exc:  # IdeProtocolError and other process failures
        res.failure = "start" if stage == "start" else "protocol"
        res.message = " ".join(str(exc).split())[:500]
    finally:
        ide.close()
        res.elapsed = time.monotonic() - t0
    return res


def _replay(ide: IdeTop, root: int, source: str, job: FileJob, res: FileResult, deadline: float) -> None:
    proof: _Proof | None = None
    before: Goals | None = None
    line, pos = 1, 0

    def call_deadline() -> float:
        return min(deadline, time.monotonic() + CALL_TIMEOUT_S)

    try:
        for item in ide.split_sentences(source, root, deadline):
            if isinstance(item, CoqFailure):
                res.failure, res.message = "coq_error", item.message[:500]
                if item.loc is not None:
                    res.line = source.count("\n", 0, item.loc[0]) + 1
                break
            assert isinstance(item, Sentence)
            line += source.count("\n", pos, item.start)
            pos = item.start
            res.sentences += 1
            goals = ide.goals(call_deadline())
            if isinstance(goals, CoqFailure):
                res.failure, res.message, res.line = "coq_error", goals.message[:500], line
                break
            text = item.text
            if proof is None:
                if goals is not None:  # this sentence opened a proof
                    status = ide.status(call_deadline())
                    name = "" if isinstance(status, CoqFailure) else (status.proof_name or "")
                    proof = _Proof(name or _first_word(text), " ".join(text.split()), line,
                                   item.start, item.end)
                    before = goals
                continue
            if goals is None:  # this sentence closed the proof
                word = _first_word(text)
                if word in _CLOSE_DROP:
                    if word == "Admitted":
                        res.admitted += 1
                    else:
                        res.aborted += 1
                else:
                    # Qed / Defined / Save, or a proof ended by a term (``exact``-free ``Proof t.``)
                    res.proofs += 1
                    res.steps.extend(proof.steps)
                    res.proofs_at.append({"theorem": proof.name, "line": proof.line, "start": proof.start,
                                          "stmt_end": proof.stmt_end, "end": item.end, "closed_by": word,
                                          "steps": len(proof.steps)})
                proof, before = None, None
                continue
            if is_tactic(text):
                assert before is not None
                proof.steps.append(_step(job, proof, text, before, goals, line))
            before = goals
    finally:
        if proof is not None:
            res.interrupted += 1


def _step(job: FileJob, proof: _Proof, text: str, before: Goals, after: Goals, line: int) -> dict[str, Any]:
    return {
        "library": job.library,
        "file": job.rel,
        "theorem": proof.name,
        "statement": proof.statement,
        "step": len(proof.steps),
        "goals_before": [goal_record(g) for g in before.foreground],
        "tactic": _tactic_text(text),
        "goals_after": [goal_record(g) for g in after.foreground],
        "split": job.split,
        "line": line,
        "background_goals": len(after.background),
        "shelved_goals": len(after.shelved),
    }


def count_proof_ends(source: str) -> dict[str, int]:
    """Rough counts of ``Qed.``/``Defined.``/``Admitted.`` at line starts (for the card's "expected")."""
    out = {}
    for word in ("Qed", "Defined", "Admitted"):
        out[word] = len(re.findall(rf"(?m)^\s*{word}\s*\.", source))
    return out


def statement_names(steps: Sequence[dict[str, Any]]) -> set[str]:
    return {str(s.get("theorem")) for s in steps}
