"""What a doctor check is, and the checklist that runs them against a deadline.

A check compares what a component does with what this package expects of it and says what to do when
they differ. Checks run one after another; a check that raises fails with the exception as what was
seen; a check whose prerequisite failed is skipped (and says which); once the deadline has passed the
remaining checks fail as "not run". Nothing here imports a heavy library.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Check", "Checklist", "Outcome", "Report", "Verdict"]


class Outcome(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    #: a finding that does not stop a run (e.g. no network isolation where the OS forbids it)
    WARN = "warn"
    #: not run: a prerequisite failed, or the component was not asked for
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    component: str
    name: str
    expected: str
    seen: str
    outcome: Outcome
    remedy: str = ""
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcome"] = self.outcome.value
        d["elapsed"] = round(self.elapsed, 3)
        return d


@dataclass(frozen=True)
class Verdict:
    """What a check function returns: passed or not, what it saw, and a value later checks may use."""

    ok: bool
    seen: str
    value: Any = None
    #: outcome when not ok (FAIL unless the finding is only a warning)
    otherwise: Outcome = Outcome.FAIL


class Checklist:
    """Runs the checks of one component in order, with a shared deadline (``time.monotonic``)."""

    def __init__(self, component: str, deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.component = component
        self.deadline = deadline
        self.clock = clock
        self.checks: list[Check] = []
        self._passed: dict[str, Any] = {}

    def passed(self, name: str) -> bool:
        return name in self._passed

    def value(self, name: str) -> Any:
        return self._passed.get(name)

    def add(
        self, name: str, expected: str, seen: str, outcome: Outcome, remedy: str = "", elapsed: float = 0.0
    ) -> None:
        self.checks.append(
            Check(
                self.component,
                name,
                expected,
                seen,
                outcome,
                remedy if outcome is not Outcome.PASS else "",
                elapsed,
            )
        )

    def run(
        self,
        name: str,
        expected: str,
        remedy: str,
        fn: Callable[[], Verdict],
        *,
        needs: Sequence[str] = (),
    ) -> Any:
        """Run ``fn``; returns its ``Verdict.value`` when it passed, else None."""
        missing = [n for n in needs if n not in self._passed]
        if missing:
            self.add(
                name,
                expected,
                f"not run: {', '.join(missing)} did not pass",
                Outcome.SKIP,
                "fix the failed check above first",
            )
            return None
        if self.clock() > self.deadline:
            self.add(
                name,
                expected,
                "not run: the doctor's time budget was spent",
                Outcome.FAIL,
                "the checks above were too slow; see their timings",
            )
            return None
        t0 = self.clock()
        try:
            v = fn()
        except Exception as exc:  # noqa: BLE001 - a failing component is what a doctor reports
            text = " ".join(f"{type(exc).__name__}: {exc}".split())
            self.add(name, expected, text[:600], Outcome.FAIL, remedy, self.clock() - t0)
            return None
        outcome = Outcome.PASS if v.ok else v.otherwise
        self.add(name, expected, v.seen, outcome, remedy, self.clock() - t0)
        if v.ok:
            self._passed[name] = v.value
            return v.value
        return None


@dataclass
class Report:
    """Every check that ran, plus the environment they ran in (for bug reports)."""

    checks: list[Check] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.outcome is Outcome.FAIL]

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for c in self.checks:
            out[c.outcome.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts(),
            "elapsed_s": round(self.elapsed, 3),
            "environment": self.environment,
            "checks": [c.to_dict() for c in self.checks],
        }
