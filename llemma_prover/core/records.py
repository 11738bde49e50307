"""The per-theorem result record: one JSON line of ``results.jsonl``.

The schema is the contract between ``prove``/``autoformalize`` (writers) and ``trace``/``report``/
``import`` (readers). Fields are only ever added; readers ignore what they do not know.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import RunDirError
from .types import CheckResult, Reason, Status, TimeSplit


@dataclass(frozen=True)
class TheoremRecord:
    theorem: str
    split: str
    family: str
    backend: str
    generator: str
    status: Status
    reason: Reason
    #: the tactics of the proof found by the search, in order (None if none was found)
    proof: tuple[str, ...] | None
    expansions: int = 0
    nodes: int = 0
    time: TimeSplit = field(default_factory=TimeSplit)
    #: the independent re-check of the found proof (None when there was nothing to check)
    check: CheckResult | None = None
    #: prover processes replaced during this theorem
    restarts: int = 0
    #: 1 + how many times the theorem was retried after its worker died
    attempts: int = 1
    #: relative path of the search trace inside the run directory ("" if none)
    trace: str = ""
    #: one-line error for ``Status.ERROR`` records
    error: str = ""
    #: anything else a writer wants to keep (e.g. imported runs' original fields)
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``prove --library``: the library, the file (relative to its root) and the statement's line;
    #: empty / 0 for a benchmark problem (and then left out of the JSON line)
    library: str = ""
    file: str = ""
    line: int = 0

    @property
    def proved(self) -> bool:
        return self.status is Status.PROVED

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["status"] = self.status.value
        d["reason"] = self.reason.value
        d["proof"] = list(self.proof) if self.proof is not None else None
        if not self.library:
            for key in ("library", "file", "line"):
                d.pop(key)
        return json.dumps(d, ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TheoremRecord:
        try:
            check = d.get("check")
            return cls(
                theorem=d["theorem"],
                split=d.get("split", ""),
                family=d.get("family", "other"),
                backend=d.get("backend", ""),
                generator=d.get("generator", ""),
                status=Status(d["status"]),
                reason=Reason(d["reason"]),
                proof=tuple(d["proof"]) if d.get("proof") is not None else None,
                expansions=int(d.get("expansions", 0)),
                nodes=int(d.get("nodes", 0)),
                time=TimeSplit(**d.get("time", {})),
                check=(
                    CheckResult(
                        **{
                            **check,
                            "axioms": tuple(check.get("axioms", ())),
                            "bad_axioms": tuple(check.get("bad_axioms", ())),
                        }
                    )
                    if check
                    else None
                ),
                restarts=int(d.get("restarts", 0)),
                attempts=int(d.get("attempts", 1)),
                trace=d.get("trace", ""),
                error=d.get("error", ""),
                extra=dict(d.get("extra", {})),
                library=str(d.get("library", "")),
                file=str(d.get("file", "")),
                line=int(d.get("line", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RunDirError(f"malformed result record: {exc}") from exc

    @classmethod
    def from_json(cls, line: str) -> TheoremRecord:
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RunDirError(f"malformed result line: {exc}") from exc
        if not isinstance(d, dict):
            raise RunDirError("malformed result line: not a JSON object")
        return cls.from_dict(d)
