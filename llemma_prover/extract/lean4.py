"""Lean 4 proof steps from the REPL's own traces, shaped like LeanDojo's traced data.

The Lean 4 REPL reports the tactics it elaborated, so Lean (not a splitter of ours) decides what a
tactic is and where it starts and ends:

* ``{"path": FILE, "allTactics": true}`` (or ``"cmd"``): ``tactics`` = one entry per tactic with its
  text, ``pos``/``endPos`` and ``goals`` -- the goals *before* it, pretty-printed;
* ``"infotree": "substantive"``: ``TacticInfo`` nodes with ``goalsBefore`` **and** ``goalsAfter``.

From ``allTactics`` the state after a tactic is the state before the next tactic of the same
declaration that starts at or after its end (``have h : p := by simp`` then ``exact h``: the nested
``simp`` is skipped); the last tactic of a declaration that Lean accepted without an error or a
``sorry`` ends with ``no goals``; otherwise the state after is unknown (``null``). From the infotree it
is Lean's own ``goalsAfter`` (the nodes that only wrap tactics -- ``by`` blocks, tactic sequences --
are skipped, as LeanDojo does).

Each step is one ``steps.jsonl`` record (the same fields as Coq's: ``library, file, theorem,
statement, step, goals_before, tactic, goals_after, split``) plus LeanDojo's traced-tactic fields
``state_before``, ``state_after`` (the pretty-printed goals, ``"no goals"`` when none), ``pos`` and
``end_pos`` ([line, column]). ``traced_theorems`` groups them like LeanDojo's ``TracedTheorem``
(``file_path``, ``full_name``, ``start``, ``end``, ``traced_tactics``). The declaration a tactic
belongs to is the last one that starts before it (``theorem``/``lemma``/``example``/``def``/``instance``
at the start of a line); its statement is the text from there up to ``:=``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["parse_goals", "steps_from_all_tactics", "steps_from_infotree", "traced_theorems"]

NO_GOALS = "no goals"
_DECL_RE = re.compile(
    r"^(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*"
    r"(theorem|lemma|example|def|instance|abbrev)\b\s*([^\s:({\[]*)", re.MULTILINE)
_HYP_RE = re.compile(r"^\S.*? : ")
#: infotree nodes that wrap tactics rather than being one (``by`` blocks, tactic sequences); LeanDojo
#: skips them too. A kind without a namespace (``by``, ``null``) is a token, not a tactic.
_CONTAINERS = frozenset({
    "Lean.Parser.Term.byTactic", "Lean.Parser.Tactic.tacticSeq", "Lean.Parser.Tactic.tacticSeq1Indented",
    "Lean.Parser.Tactic.tacticSeqBracketed",
})


def parse_goals(state: str | None) -> list[dict[str, Any]] | None:
    """Pretty-printed Lean goals (blank-line separated, ``hyps`` then ``⊢ concl``) as
    ``[{"hyps": [...], "concl": str}]`` (a ``case`` tag is kept as ``"case"``); ``[]`` for
    ``no goals``; None for None."""
    if state is None:
        return None
    if state.strip() in ("", NO_GOALS):
        return []
    goals = []
    for block in re.split(r"\n\s*\n", state.strip()):
        lines = block.split("\n")
        case = None
        if lines and lines[0].startswith("case "):
            case = lines[0][5:].strip()
            lines = lines[1:]
        hyps: list[str] = []
        concl_lines: list[str] = []
        in_concl = False
        for line in lines:
            if line.startswith("⊢"):
                in_concl = True
                concl_lines.append(line[1:].strip())
            elif in_concl:
                concl_lines.append(line.strip())
            elif hyps and not _HYP_RE.match(line):
                hyps[-1] += " " + line.strip()  # continuation of a long hypothesis
            else:
                hyps.append(line.strip())
        goal: dict[str, Any] = {"hyps": hyps, "concl": " ".join(concl_lines)}
        if case is not None:
            goal["case"] = case
        goals.append(goal)
    return goals


@dataclass(frozen=True)
class _Decl:
    kind: str
    name: str
    start: tuple[int, int]
    statement: str


def _declarations(source: str) -> list[_Decl]:
    out = []
    for m in _DECL_RE.finditer(source):
        line = source.count("\n", 0, m.start()) + 1
        rest = source[m.start():]
        stmt = rest.split(":=", 1)[0] if ":=" in rest else rest.split("\n", 1)[0]
        name = m.group(2) or ("example" if m.group(1) == "example" else "")
        out.append(_Decl(m.group(1), name, (line, 0), " ".join(stmt.split())))
    return out


def _decl_of(decls: Sequence[_Decl], pos: tuple[int, int]) -> _Decl | None:
    best = None
    for d in decls:
        if d.start <= pos:
            best = d
    return best


def _pos(p: dict[str, Any] | None) -> tuple[int, int]:
    if not p:
        return (0, 0)
    return (int(p.get("line", 0)), int(p.get("column", 0)))


def _bad_lines(reply: dict[str, Any]) -> list[tuple[int, int]]:
    """Positions of errors and sorries (a declaration containing one is not known to be finished)."""
    out = [_pos(m.get("pos")) for m in reply.get("messages", []) or [] if m.get("severity") == "error"]
    out += [_pos(s.get("pos")) for s in reply.get("sorries", []) or []]
    for m in reply.get("messages", []) or []:
        if "sorry" in str(m.get("data", "")) and m.get("severity") == "warning":
            out.append(_pos(m.get("pos")))
    return out


def _record(library: str, file: str, split: str, decl: _Decl | None, step: int, tactic: str,
            before: str, after: str | None, pos: tuple[int, int], end: tuple[int, int]) -> dict[str, Any]:
    return {
        "library": library,
        "file": file,
        "theorem": decl.name if decl else "",
        "statement": decl.statement if decl else "",
        "step": step,
        "goals_before": parse_goals(before),
        "tactic": tactic,
        "goals_after": parse_goals(after),
        "split": split,
        "state_before": before,
        "state_after": after,
        "pos": list(pos),
        "end_pos": list(end),
    }


def steps_from_all_tactics(reply: dict[str, Any], source: str, *, library: str, file: str,
                           split: str = "train") -> list[dict[str, Any]]:
    """Steps from an ``allTactics`` reply for ``source`` (the file or command the REPL read)."""
    decls = _declarations(source)
    tactics = sorted(reply.get("tactics", []) or [], key=lambda t: _pos(t.get("pos")))
    bad = _bad_lines(reply)
    by_decl: dict[int, list[dict[str, Any]]] = {}
    for t in tactics:
        d = _decl_of(decls, _pos(t.get("pos")))
        by_decl.setdefault(id(d) if d else 0, []).append(t)
    out: list[dict[str, Any]] = []
    for group in by_decl.values():
        decl = _decl_of(decls, _pos(group[0].get("pos")))
        nxt_decl_start = min((d.start for d in decls if decl and d.start > decl.start), default=(10**9, 0))
        finished = decl is not None and not any(decl.start <= b < nxt_decl_start for b in bad)
        for i, t in enumerate(group):
            end = _pos(t.get("endPos"))
            after: str | None = None
            later = [u for u in group[i + 1 :] if _pos(u.get("pos")) >= end]
            if later:
                after = str(later[0].get("goals", ""))
            elif finished and not any(_pos(u.get("pos")) < end for u in group[i + 1 :]):
                after = NO_GOALS
            out.append(_record(library, file, split, decl, i, str(t.get("tactic", "")),
                               str(t.get("goals", "")), after, _pos(t.get("pos")), end))
    return out


def steps_from_infotree(reply: dict[str, Any], source: str, *, library: str, file: str,
                        split: str = "train") -> list[dict[str, Any]]:
    """Steps from an ``infotree`` reply: every ``TacticInfo`` node, with Lean's goals before and after."""
    decls = _declarations(source)
    nodes: list[dict[str, Any]] = []

    def walk(tree: Sequence[dict[str, Any]]) -> None:
        for item in tree:
            node = item.get("node") or {}
            kind = (node.get("stx") or {}).get("kind", "")
            if item.get("kind") == "TacticInfo" and "goalsBefore" in node and kind not in _CONTAINERS \
                    and "." in kind:
                nodes.append(node)
            walk(item.get("children", []) or [])

    walk(reply.get("infotree", []) or [])
    out: list[dict[str, Any]] = []
    counters: dict[str, int] = {}
    for node in sorted(nodes, key=lambda n: _pos(((n.get("stx") or {}).get("range") or {}).get("start"))):
        rng = (node.get("stx") or {}).get("range") or {}
        pos, end = _pos(rng.get("start")), _pos(rng.get("finish"))
        decl = _decl_of(decls, pos)
        key = decl.name if decl else ""
        step = counters.get(key, 0)
        counters[key] = step + 1
        before = "\n\n".join(node.get("goalsBefore", [])) or NO_GOALS
        after = "\n\n".join(node.get("goalsAfter", [])) or NO_GOALS
        tactic = str((node.get("stx") or {}).get("pp", ""))
        out.append(_record(library, file, split, decl, step, tactic, before, after, pos, end))
    return out


def traced_theorems(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps grouped per declaration in LeanDojo's ``TracedTheorem`` shape."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for s in steps:
        key = (s["file"], s["theorem"])
        th = out.setdefault(key, {"file_path": s["file"], "full_name": s["theorem"],
                                  "statement": s["statement"], "start": s["pos"], "end": s["end_pos"],
                                  "traced_tactics": []})
        th["end"] = max(th["end"], s["end_pos"])
        th["traced_tactics"].append({"tactic": s["tactic"], "annotated_tactic": [s["tactic"], []],
                                     "state_before": s["state_before"], "state_after": s["state_after"],
                                     "pos": s["pos"], "end_pos": s["end_pos"]})
    return list(out.values())


def extract_file(repl: Any, path: str, source: str, *, library: str, file: str, split: str = "train",
                 timeout: float = 600.0, infotree: bool = False) -> list[dict[str, Any]]:
    """Ask a running REPL (``backends.lean4.repl_process.ReplProcess`` or anything with its
    ``request(req, timeout)``) to elaborate the file at ``path`` (as the REPL's working directory sees
    it) and return its steps. ``source`` is that file's text (for declarations and statements). A
    ``{"message": "Lean error: ..."}`` reply raises ``ValueError`` with that message."""
    req: dict[str, Any] = {"path": path, "allTactics": True}
    if infotree:
        req = {"path": path, "infotree": "substantive"}
    reply = repl.request(req, timeout)
    if "message" in reply and "env" not in reply:
        raise ValueError(f"the Lean REPL refused {path}: {reply['message']}")
    if infotree:
        return steps_from_infotree(reply, source, library=library, file=file, split=split)
    return steps_from_all_tactics(reply, source, library=library, file=file, split=split)
