"""Shared test fixtures: the benchmark directory, the repository root, process helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """``$LLEMMA_PROVER_DATA``, else ``../shared/benchmarks/minif2f`` beside the checkout, else (a fresh
    clone with neither) the package's shipped copy unpacked into ``test-artifacts/minif2f``."""
    env = os.environ.get("LLEMMA_PROVER_DATA")
    if env:
        return Path(env)
    shared = REPO.parent / "shared" / "benchmarks" / "minif2f"
    return shared if shared.is_dir() else _unpacked_shipped_copy()


def _unpacked_shipped_copy() -> Path:
    """Plain ``<system>/<split>.jsonl`` files (and README.md) from the shipped ``.jsonl.gz`` copy, for
    the tests that read the files themselves; rewritten only when they differ."""
    import gzip

    shipped = REPO / "llemma_prover" / "data" / "benchmarks" / "minif2f"
    target = REPO / "test-artifacts" / "minif2f"
    for packed in sorted(shipped.glob("*/*.jsonl.gz")):
        plain = target / packed.parent.name / packed.name.removesuffix(".gz")
        data = gzip.decompress(packed.read_bytes())
        if not plain.is_file() or plain.read_bytes() != data:
            plain.parent.mkdir(parents=True, exist_ok=True)
            plain.write_bytes(data)
    readme = (shipped / "PROVENANCE.md").read_bytes()
    if not (target / "README.md").is_file() or (target / "README.md").read_bytes() != readme:
        (target / "README.md").write_bytes(readme)
    return target


@pytest.fixture(scope="session")
def minif2f_dir() -> Path:
    d = data_dir()
    if not (d / "coq" / "test.jsonl").is_file():
        pytest.fail(f"miniF2F data not found at {d}; set LLEMMA_PROVER_DATA")
    return d


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


# ---------------------------------------------------------------------------------------------
# process helpers for tests that run the CLI in a subprocess
# ---------------------------------------------------------------------------------------------
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from llemma_prover.core import procfs  # noqa: E402


def proc_stat(pid: int) -> tuple[int, str, str] | None:
    """(ppid, start time, comm) of a live, non-zombie process, or None."""
    st = procfs.stat(pid)
    if st is None or st.state == "Z":
        return None
    return st.ppid, st.start, st.comm


def cmdline(pid: int) -> str:
    return procfs.cmdline(pid)


def descendants(root: int) -> set[int]:
    return procfs.descendants(root)


class ProcessWatcher:
    """Records every descendant of ``root`` (pid -> (start time, comm, cmdline)) while it runs, so a test
    can assert afterwards that none of them is left behind. A process renamed while it runs keeps every
    title it had, joined by `` | `` (``matching`` finds any of them)."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.seen: dict[int, tuple[str, str, str]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(0.1)

    def poll(self) -> None:
        for pid in descendants(self.root):
            st = proc_stat(pid)
            if st is not None:
                with self._lock:
                    if pid not in self.seen or self.seen[pid][0] != st[1]:
                        self.seen[pid] = (st[1], st[2], cmdline(pid))
                    else:  # same process, perhaps renamed since (Ray: default_worker.py -> ray::Worker.run)
                        start, comm, cmd = self.seen[pid]
                        now = cmdline(pid)
                        if now and now not in cmd.split(" | "):
                            cmd = f"{cmd} | {now}"
                        if st[2] not in comm.split(" | "):
                            comm = f"{comm} | {st[2]}"
                        self.seen[pid] = (start, comm, cmd)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def matching(self, needle: str) -> dict[int, tuple[str, str, str]]:
        with self._lock:
            return {p: v for p, v in self.seen.items() if needle in v[1] or needle in v[2]}

    def alive(self, needle: str = "", timeout: float = 20.0) -> list[str]:
        """Recorded processes (matching ``needle``) still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = []
            for pid, (start, comm, cmd) in self.matching(needle).items():
                st = proc_stat(pid)
                if st is not None and st[1] == start:
                    left.append(f"{pid} {comm} {cmd[:80]}")
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)


def cli_command(*args: str) -> list[str]:
    """The ``prove`` console script of this venv (falls back to ``python -m``)."""
    script = Path(sys.executable).parent / "prove"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "llemma_prover.cli.main", "prove", *args]


def default_sigint() -> None:
    """``preexec_fn`` for a CLI run a test will Ctrl-C: SIGINT back to its default disposition. A
    background job of a non-interactive shell (``pytest ... &`` in a script) starts with SIGINT
    ignored, the ignore is inherited across exec, and Python then installs no KeyboardInterrupt
    handler: the run would finish as if never interrupted (exit 0 instead of 130)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LLEMMA_PROVER_DATA", str(data_dir()))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 600, env: dict[str, str] | None = None,
            cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout,
                          env=env or cli_env(), cwd=cwd)


# ---------------------------------------------------------------------------------------------
# CI: a skipped test is a failure (a missing prover, browser or data set must not pass silently),
# except for components that are optional by design.
# ---------------------------------------------------------------------------------------------
#: skip reasons that stay skips under LLEMMA_PROVER_NO_SKIPS=1 (optional extras, not requirements)
OPTIONAL_SKIPS = ("CoqHammer", "datasets")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get("LLEMMA_PROVER_NO_SKIPS") != "1":
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if any(opt in reason for opt in OPTIONAL_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under LLEMMA_PROVER_NO_SKIPS=1 (CI requires it to run): {reason}"
