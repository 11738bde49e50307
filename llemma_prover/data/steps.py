"""Proof-step data (``extract``'s ``steps.jsonl``): reading records and rendering goals as provers print them.

One JSON object per line (docs/FORMATS.md, "Proof-step data"): ``library, file, theorem, statement,
step, goals_before, tactic, goals_after`` or ``error``, ``split``. A goal is ``{"hyps": [str],
"concl": str}`` where each hypothesis is printed as Coq prints it (``H, H0 : x > 0``). This module
imports nothing heavy: the retrieval generator and the trainer read the data through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import DataError

STEPS = "steps.jsonl"
CARD = "card.json"
#: the separator line coqtop prints between hypotheses and conclusion
COQ_SEPARATOR = "============================"

_SEP_RE = re.compile(r"^=+\s*$", re.MULTILINE)
#: start of a hypothesis line: ``H``, ``H, H0``, ``x := v`` followed by `` : `` or `` := ``
_HYP_START_RE = re.compile(r"^([A-Za-z_][\w']*(?:\s*,\s*[A-Za-z_][\w']*)*)\s*(:=|:)\s")


def iter_steps(path: str | Path, splits: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Records of ``steps.jsonl`` (a file, or an ``extract`` output folder holding one), in file order.

    ``splits``: keep only records whose ``split`` is one of these (None: all). A line that is not a
    JSON object raises ``DataError`` with its line number.
    """
    p = Path(path)
    if p.is_dir():
        p = p / STEPS
    if not p.is_file():
        raise DataError(f"no proof-step data at {p} (expected an `extract` output folder or a steps.jsonl)")
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{lineno}: not JSON ({exc.msg})") from exc
            if not isinstance(rec, dict):
                raise DataError(f"{p}:{lineno}: expected a JSON object")
            if splits is not None and rec.get("split") not in splits:
                continue
            yield rec


def coq_goal_text(goals: Sequence[dict[str, Any]]) -> str:
    """Goals in the text shape the Coq backend hands to generators: the first goal with its hypotheses,
    the separator and its conclusion; the other goals as conclusions; goals separated by a blank line."""
    parts = []
    for i, g in enumerate(goals):
        concl = " ".join(str(g.get("concl", "")).split())
        if i == 0:
            hyps = [" ".join(str(h).split()) for h in g.get("hyps", [])]
            parts.append("\n".join([*hyps, COQ_SEPARATOR, concl]))
        else:
            parts.append(concl)
    return "\n\n".join(parts)


def parse_coq_goal_text(goal_text: str) -> tuple[list[str], str]:
    """(hypotheses, conclusion) of the first goal of a Coq goal text. Continuation lines of a hypothesis
    printed over several lines are joined to it."""
    first = goal_text.split("\n\n", 1)[0]
    parts = _SEP_RE.split(first, maxsplit=1)
    if len(parts) != 2:
        return [], " ".join(first.split())
    hyps: list[str] = []
    for line in parts[0].splitlines():
        line = line.strip()
        if not line:
            continue
        if _HYP_START_RE.match(line) or not hyps:
            hyps.append(line)
        else:
            hyps[-1] += " " + line
    return hyps, " ".join(parts[1].split())


def split_hyp(hyp: str) -> tuple[list[str], str]:
    """``"x, y : R"`` -> (["x", "y"], "R"); ``"n := 3 : nat"`` -> (["n"], "3 : nat"); else ([], hyp)."""
    m = _HYP_START_RE.match(hyp.strip() + " ")
    if m is None:
        return [], hyp.strip()
    names = [n.strip() for n in m.group(1).split(",")]
    return names, hyp.strip()[m.end() :].strip()


def read_card(folder: str | Path) -> dict[str, Any]:
    """``card.json`` of an ``extract`` output folder (``DataError`` when missing or malformed)."""
    p = Path(folder) / CARD
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{p} does not exist (not an `extract` output folder?)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{p}: cannot read ({exc})") from exc
    if not isinstance(data, dict):
        raise DataError(f"{p}: expected a JSON object")
    return data


def contamination_problems(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The overlap a data user must refuse: the unexpected hits (all hits for a card written before
    ``expected`` existed)."""
    rows = result.get("unexpected")
    if rows is None:
        rows = result.get("contaminated") or []
    return list(rows)
