"""``replay``: tactic candidates read from a file, for re-running known proofs and for tests.

Two formats, told apart by content (the first non-blank, non-comment line):

* **text**: one tactic per line. The same candidates, in file order, are offered at every
  expansion, scored ``0, -1, -2, ...`` so that the search keeps the file's order. Blank lines and
  lines whose first non-space character is ``#`` are skipped.
* **JSONL**: one JSON object per line, ``{"theorem": NAME, "tactics": [...]}``. A
  ``results.jsonl`` of an earlier run works as well: ``"proof"`` is read when ``"tactics"`` is
  absent, and records whose proof is ``null`` are skipped. For the current theorem (set by
  ``start_theorem``) its tactics are offered at every expansion, in order, scored ``0, -1, ...``
  (several lines for one theorem are concatenated, first occurrence kept). Every tactic of a known
  proof is offered at every node on its path, so re-running it finds the proof (given the budget; a
  proof of n tactics typically needs about n expansions). A theorem the file does not mention gets
  no candidates (its search ends at once with ``search_exhausted``; a warning is logged).

The file is read when the generator is constructed: errors (missing file, malformed line) are
``DataError`` naming ``file:line``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..core.errors import DataError
from ..core.types import Candidate, Theorem
from .base import TacticGenerator

log = logging.getLogger(__name__)


def _ranked(tactics: list[str]) -> list[Candidate]:
    seen: set[str] = set()
    out: list[Candidate] = []
    for t in tactics:
        key = " ".join(t.split())
        if not key or key in seen:
            continue
        seen.add(key)
        out.append(Candidate(tactic=t.strip(), score=-float(len(out))))
    return out


class ReplayGenerator(TacticGenerator):
    """Candidates from a replay file (see the module docstring for the formats)."""

    name = "replay"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError("replay file not found", path=str(self.path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read replay file: {exc}", path=str(self.path)) from exc
        lines = text.splitlines()
        first = next((ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), None)
        if first is None:
            raise DataError("replay file has no tactics", path=str(self.path))
        self.format = "jsonl" if _is_json_object(first) else "text"
        self._all: list[Candidate] = []
        self._by_theorem: dict[str, list[Candidate]] = {}
        if self.format == "text":
            self._all = _ranked([ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")])
        else:
            self._by_theorem = self._parse_jsonl(lines)
        self._current: list[Candidate] = self._all

    def _parse_jsonl(self, lines: list[str]) -> dict[str, list[Candidate]]:
        raw: dict[str, list[str]] = {}
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            path = str(self.path)
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"not a JSON object: {exc.msg}", path=path, line=i) from None
            if not isinstance(obj, dict):
                raise DataError("not a JSON object", path=path, line=i)
            name = obj.get("theorem")
            if not isinstance(name, str) or not name:
                raise DataError('missing "theorem" (a non-empty string)', path=path, line=i)
            if "tactics" in obj:
                tactics = obj["tactics"]
            elif "proof" in obj:
                tactics = obj["proof"]
                if tactics is None:
                    continue
            else:
                raise DataError('missing "tactics" (a list of strings)', path=path, line=i)
            if not isinstance(tactics, list) or not all(isinstance(t, str) for t in tactics):
                raise DataError('"tactics" must be a list of strings', path=path, line=i)
            raw.setdefault(name, []).extend(tactics)
        return {name: _ranked(ts) for name, ts in raw.items()}

    @property
    def theorems(self) -> list[str]:
        """Theorems with per-theorem lists (JSONL format); empty for a text file."""
        return sorted(self._by_theorem)

    def start_theorem(self, theorem: Theorem) -> None:
        if self.format == "text":
            return
        self._current = self._by_theorem.get(theorem.name, [])
        if not self._current:
            log.warning("replay file %s has no tactics for %s", self.path, theorem.name)

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        return list(self._current[:k])

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "replay_file": str(self.path),
            "format": self.format,
            "tactics": len(self._all) if self.format == "text" else None,
            "theorems": len(self._by_theorem) if self.format == "jsonl" else None,
        }


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False
