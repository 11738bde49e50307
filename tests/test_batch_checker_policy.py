"""When the prove run's ``BatchChecker`` checks what (``workers/checker.py``), with a recording backend.

No prover runs here: ``check_many`` records the proofs it is given and passes them. The hostile cases
and the real kernel steps are in ``test_batch_checker_coq.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from llemma_prover.core.types import CheckResult, Theorem
from llemma_prover.workers.checker import BatchChecker, Pending


class Recording:
    """A backend whose ``check_many`` passes everything and remembers each call's theorem names."""

    name = "recording"

    def __init__(self, fail: bool = False, until: threading.Event | None = None) -> None:
        self.calls: list[list[str]] = []
        self.prepared: list[str] = []
        self.fail = fail
        self.called = threading.Event()
        self.until = until  # a call returns only once this is set (30 s at most)

    def close(self) -> None:
        self.closed = True

    def prepare_check(self, theorem: Theorem) -> None:
        self.prepared.append(theorem.name)

    def check_many(self, proofs: Sequence[tuple[Theorem, Sequence[str]]]) -> list[CheckResult]:
        self.calls.append([t.name for t, _ in proofs])
        self.called.set()
        if self.until is not None:
            self.until.wait(30)
        if self.fail:
            raise RuntimeError("coqchk could not start")
        return [CheckResult(ok=True, checker=self.name, elapsed=0.0) for _ in proofs]


batch_numbers: list[int] = []


def _pending(name: str, header: str) -> Pending:
    return Pending(Theorem(name=name, split="test", system="coq", header=header, statement="S."), ("auto",))


def _checker(backend: Recording, got: list[tuple[str, bool, int]], **kw: float) -> BatchChecker:
    def on_checked(p: Pending, verdict: CheckResult, size: int) -> None:
        got.append((p.theorem.name, verdict.ok, size))
        batch_numbers.append(p.batch)

    return BatchChecker(backend, on_checked, **kw)  # type: ignore[arg-type]


def test_ready_proofs_of_several_headers_are_checked_together() -> None:
    backend, got = Recording(), []
    batch_numbers.clear()
    with _checker(backend, got, batch_size=3, max_wait=600.0) as checker:
        checker.submit(_pending("a1", "A"))
        checker.header_done("A")
        checker.submit(_pending("b1", "B"))
        checker.submit(_pending("b2", "B"))
        time.sleep(0.2)
        assert backend.calls == []  # A's proof is ready alone, B is not done: nothing starts
        checker.header_done("B")  # three ready: one call for both headers
        assert backend.called.wait(30)
    assert backend.calls == [["a1", "b1", "b2"]]
    assert sorted(got) == [("a1", True, 3), ("b1", True, 3), ("b2", True, 3)]
    assert checker.batches == [3] and batch_numbers == [0, 0, 0]


def test_a_ready_proof_waits_at_most_max_wait() -> None:
    backend, got = Recording(), []
    checker = _checker(backend, got, batch_size=8, max_wait=0.3).start()
    try:
        t0 = time.monotonic()
        checker.submit(_pending("a1", "A"))
        checker.header_done("A")
        assert backend.called.wait(30)  # alone, it is checked once it has waited max_wait
        assert time.monotonic() - t0 >= 0.3
        assert backend.calls == [["a1"]]
        checker.submit(_pending("c1", "C"))  # C is never done: its proof waits for close
        time.sleep(0.6)
        assert backend.calls == [["a1"]]
    finally:
        checker.close()
    assert backend.calls == [["a1"], ["c1"]]
    assert [g[0] for g in got] == ["a1", "c1"]


def test_a_header_that_fills_is_ready_before_it_is_done_and_calls_are_capped() -> None:
    backend, got = Recording(), []
    with _checker(backend, got, batch_size=2, max_wait=600.0, max_batch=3) as checker, checker._cond:
        for k in range(5):  # the checker is held (its lock) while five proofs become ready
            checker.submit(_pending(f"a{k}", "A"))
    # full at two: ready in pairs; then at most three per call, the rest at close
    assert [len(c) for c in backend.calls] in ([3, 2], [2, 3], [2, 2, 1]), backend.calls
    assert sorted(g[0] for g in got) == [f"a{k}" for k in range(5)]


def test_close_without_flush_checks_nothing_more_and_a_failing_call_passes_nothing() -> None:
    backend, got = Recording(), []
    checker = _checker(backend, got, batch_size=8, max_wait=600.0).start()
    checker.submit(_pending("a1", "A"))
    checker.header_done("A")
    checker.close(flush=False)
    assert backend.calls == [] and got == []

    failing, got2 = Recording(fail=True), []
    with _checker(failing, got2, batch_size=1, max_wait=600.0) as checker:
        checker.submit(_pending("x", "X"))
    assert got2 == [("x", False, 1)]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        _checker(Recording(), [], batch_size=0)
    with pytest.raises(ValueError):
        _checker(Recording(), [], batch_size=8, max_batch=4)


def test_at_the_end_a_second_checker_with_its_own_backend_shares_the_rest() -> None:
    second = Recording()
    main, got = Recording(until=second.called), []  # busy until the second checker has taken a batch
    made: list[Recording] = []

    def helper() -> Recording:
        made.append(second)
        return second

    checker = _checker(main, got, batch_size=8, max_wait=600.0)
    checker.helper = helper  # type: ignore[assignment]
    checker.start()
    for k in range(4):
        checker.submit(_pending(f"h{k}", f"H{k}"))
        checker.header_done(f"H{k}")
    time.sleep(0.2)
    assert main.calls == []  # four ready, fewer than batch_size: waiting
    checker.close()
    assert made == [second] and main.calls and second.calls, (main.calls, second.calls)
    assert getattr(second, "closed", False)  # the helper's backend is closed with it
    assert sorted(n for c in main.calls + second.calls for n in c) == [f"h{k}" for k in range(4)]
    assert sorted(g[0] for g in got) == [f"h{k}" for k in range(4)]


def test_no_second_checker_when_nothing_is_left_or_it_cannot_start() -> None:
    main, got = Recording(), []
    checker = _checker(main, got, batch_size=1, max_wait=600.0)
    checker.helper = lambda: (_ for _ in ()).throw(AssertionError("not needed"))  # type: ignore[assignment]
    with checker:
        checker.submit(_pending("a", "A"))
        checker.header_done("A")
        assert main.called.wait(30)
    assert main.calls == [["a"]]

    def broken() -> Recording:
        raise RuntimeError("coqc is gone")

    main2, got2 = Recording(), []
    checker = _checker(main2, got2, batch_size=8, max_wait=600.0)
    checker.helper = broken  # type: ignore[assignment]
    with checker:
        checker.submit(_pending("b", "B"))
        checker.header_done("B")
    assert main2.calls == [["b"]] and got2 == [("b", True, 1)]


def test_searches_done_checks_what_waits_at_once() -> None:
    main, got = Recording(), []
    with _checker(main, got, batch_size=8, max_wait=600.0) as checker:
        checker.submit(_pending("a", "A"))
        checker.submit(_pending("b", "B"))  # B's header never said done: ready only at the end
        checker.header_done("A")
        time.sleep(0.2)
        assert main.calls == []
        checker.searches_done()  # no wait for max_wait or for close
        assert main.called.wait(30)
        checker.searches_done()  # twice is harmless
    assert sorted(n for c in main.calls for n in c) == ["a", "b"]


def test_once_a_core_is_idle_proofs_are_checked_as_they_come() -> None:
    """``core_idle`` (fewer searches left than workers): what waits is checked at once, and each later
    proof without waiting for its header or a batch to fill; no second checker starts before the end."""
    main, got = Recording(), []
    helpers: list[Recording] = []

    def helper() -> Recording:
        helpers.append(Recording())
        return helpers[-1]

    with _checker(main, got, batch_size=8, max_wait=600.0, helper=helper) as checker:  # type: ignore[arg-type]
        checker.submit(_pending("a", "A"))  # A is not done and the batch is far from full
        time.sleep(0.2)
        assert main.calls == []
        checker.core_idle()
        assert main.called.wait(30)
        assert main.calls == [["a"]]
        main.called.clear()
        checker.submit(_pending("b", "B"))  # B is not done either: checked at once all the same
        assert main.called.wait(30)
        assert main.calls == [["a"], ["b"]] and helpers == []
        checker.core_idle()  # twice is harmless
    assert sorted(got) == [("a", True, 1), ("b", True, 1)]


def test_while_nothing_is_due_each_header_is_prepared_once() -> None:
    """A submitted proof's header is prepared (``prepare_check``) while no batch is due, once per
    header, before its batch is checked."""
    main, got = Recording(), []
    with _checker(main, got, batch_size=8, max_wait=600.0) as checker:
        checker.submit(_pending("a1", "A"))
        checker.submit(_pending("a2", "A"))
        checker.submit(_pending("b1", "B"))
        deadline = time.monotonic() + 30
        while len(main.prepared) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert main.prepared == ["a1", "b1"] and main.calls == []  # one per header; nothing is due
    assert main.calls == [["a1", "a2", "b1"]] and main.prepared == ["a1", "b1"]
