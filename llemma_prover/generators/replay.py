"""``replay``: tactic candidates read from a file, for re-running known proofs and for tests.

Two formats, told apart by content (the first non-blank, non-comment line):

* **text**: one tactic per line. The same candidates, in file order, are offered at every
  expansion, scored ``0, -1, -2, ...`` so that the search keeps the file's order. Blank lines and
  lines whose first non-space character is ``#`` are skipped.
* **JSONL**: one JSON object per line, ``{"theorem": NAME, "tactics": [...]}``: a known proof (or
  any tactic list) for one theorem. A ``results.jsonl`` of an earlier run works as well: ``"proof"``
  is read when ``"tactics"`` is absent, and records whose proof is ``null`` are skipped. Several lines
  for one theorem are several proofs. For the current theorem (set by ``start_theorem``), at depth
  ``d`` (the search calls ``generate_at``) the ``d``-th tactic of each of its proofs is offered first,
  then every other tactic of the theorem in file order; scores ``0, -1, -2, ...``. So the steps of
  the first proof all score 0, their path is the only one with priority 0, and re-running a known
  proof of ``n`` tactics takes ``n`` expansions. Without a depth (``generate``), all tactics are
  offered in file order. A theorem the file does not mention gets no candidates (its search ends at
  once with ``search_exhausted``; a warning is logged).

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
        self._proofs: dict[str, list[list[str]]] = {}
        if self.format == "text":
            self._all = _ranked([ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")])
        else:
            self._proofs = self._parse_jsonl(lines)
        self._current: list[Candidate] = self._all
        self._current_proofs: list[list[str]] = []

    def _parse_jsonl(self, lines: list[str]) -> dict[str, list[list[str]]]:
        proofs: dict[str, list[list[str]]] = {}
        path = str(self.path)
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
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
            proofs.setdefault(name, []).append([t for t in tactics if t.strip()])
        return proofs

    @property
    def theorems(self) -> list[str]:
        """Theorems with per-theorem lists (JSONL format); empty for a text file."""
        return sorted(self._proofs)

    def start_theorem(self, theorem: Theorem) -> None:
        if self.format == "text":
            return
        self._current_proofs = self._proofs.get(theorem.name, [])
        self._current = _ranked([t for p in self._current_proofs for t in p])
        if not self._current:
            log.warning("replay file %s has no tactics for %s", self.path, theorem.name)

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        return list(self._current[:k])

    def generate_at(self, goal_text: str, k: int, depth: int) -> list[Candidate]:
        if self.format == "text":
            return self.generate(goal_text, k)
        first = [p[depth] for p in self._current_proofs if depth < len(p)]
        return _ranked(first + [c.tactic for c in self._current])[:k]

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "replay_file": str(self.path),
            "format": self.format,
            "tactics": len(self._all) if self.format == "text" else None,
            "theorems": len(self._proofs) if self.format == "jsonl" else None,
        }


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False
