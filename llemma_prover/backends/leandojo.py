"""LeanDojo adapter (``--backend leandojo``): ``lean_dojo.Dojo`` behind ``ProverBackend``.

For users who have traced a repository with LeanDojo (the Llemma evaluation ran this way). The
theorem's ``source`` field (``owner/repo/path/File.lean@commit``, as in the miniF2F data) names the
traced repository, file and commit; ``LeanDojoSettings.repo_url``/``commit`` override them.
``lean_dojo`` is imported inside ``start()`` only: importing it reconfigures loguru and reads
environment variables, and constructing a ``LeanGitRepo`` contacts GitHub.

``Dojo.run_tac`` outcomes -> our step results:

=============================  ===============================================================
``TacticState``                ``Advanced`` (goals: ``pp`` split at blank lines, as LeanDojo prints)
``ProofFinished``              ``ProofFinished``
``LeanError``                  ``TacticError(error)``
``ProofGivenUp``               ``TacticError`` (the tactic produced ``sorry``)
``DojoTacticTimeoutError``     ``TacticTimeout``; the Dojo (its Lean process tree) is closed and
                               re-entered on the next call, states restored by replaying paths
``DojoCrashError``             ``ProverCrashed`` raised; restarted the same way on the next call
anything raised entering       ``ProverStartError`` (``DojoInitError``, the ``AssertionError`` of
                               ``Dojo.__enter__``, whatever it re-raises); the half-started Dojo
                               and its process tree are torn down first
=============================  ===============================================================

**Install.** ``lean-dojo`` is the optional extra ``leandojo`` (``pip install 'llemma-prover[leandojo]'``):
4.20 is the first release with everything used here (``check_proof``, ``DojoTacticTimeoutError``,
``Dojo(timeout=...)``), and no release installs on Python 3.13 or later (4.20.0 says ``>=3.9,<3.13``).
Without it ``start()`` raises ``ProverUnavailable`` with ``INSTALL_HINT``.

**Timeouts** (``lean_dojo/interaction/dojo.py`` at 4.20.0). ``Dojo(timeout=T)`` spawns Lean with
``pexpect.spawn(..., timeout=T)`` and every read, *including the first one that waits for the whole file
with ``import Mathlib`` to elaborate*, uses ``proc.timeout``. So the Dojo is built with the policy's
start timeout (``ProverConfig.start_timeout``, generous for Mathlib) and, once entered, ``proc.timeout``
and ``Dojo.timeout`` are set to the tactic timeout.

**Sorry.** ``check_proof`` looks for ``declaration uses 'sorry'`` (straight quotes) only; Lean prints it
with backticks since v4.28.0-rc1, which that regex misses. ``start()`` replaces LeanDojo's module-level
``_SORRY_WARNING_REGEX`` with one accepting both spellings; if that name is gone (a changed LeanDojo),
``check()`` says "not verified" instead of trusting it.

Tactics go through the same refusal list as the REPL backend (``lean4.tactics.check_tactic``).
The re-check is ``lean_dojo.check_proof`` (the whole file compiled by ``lake env lean``, rejected on
errors or a ``sorry`` warning); it does not list axioms, so ``CheckResult.axioms`` stays empty and
the message says so.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import math
import os
import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.config import LEAN_TACTIC_TIMEOUT, ProverConfig
from ..core.errors import (
    ProverCrashed,
    ProverError,
    ProverStartError,
    ProverUnavailable,
    RestartLimitExceeded,
)
from ..core.types import (
    Advanced,
    CheckResult,
    ProofFinished,
    RootState,
    StepResult,
    TacticError,
    TacticTimeout,
    Theorem,
)
from .base import ProverBackend, register_backend
from .lean4.tactics import check_tactic
from .lean4.text import LeanData, LeanDialect, LeanSketches, proof_body
from .parts import ProverSetup

log = logging.getLogger(__name__)

BACKEND = "leandojo"

#: the oldest lean-dojo with the API used here (``check_proof``, ``DojoTacticTimeoutError``, ``timeout=``)
MIN_LEAN_DOJO = (4, 20)
#: the one-line remedy when lean-dojo is missing (also what ``doctor --backend leandojo`` prints)
INSTALL_HINT = (
    "pip install 'llemma-prover[leandojo]' (lean-dojo>=4.20; no release supports Python >= 3.13)"
)
#: LeanDojo's own sorry-warning regex, widened to both spellings (``'sorry'`` before Lean v4.28.0-rc1,
#: `` `sorry` `` since); the ``line`` group is what ``check_proof`` reads
SORRY_WARNING_REGEX = re.compile(r"(?P<line>\d+)\:\d+\:\s+warning\:\s+declaration uses [`']sorry[`']")


def lean_dojo_version() -> tuple[int, ...] | None:
    """The installed lean-dojo version as numbers (None when it is not installed)."""
    try:
        text = importlib.metadata.version("lean-dojo")
    except importlib.metadata.PackageNotFoundError:
        return None
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


@dataclass(frozen=True)
class LeanDojoSettings:
    #: override the repository URL from ``Theorem.source`` (e.g. your fork)
    repo_url: str | None = None
    #: override the commit from ``Theorem.source``
    commit: str | None = None
    tactic_timeout: float = LEAN_TACTIC_TIMEOUT
    #: entering a Dojo elaborates the whole file, ``import Mathlib`` included (``ProverConfig.start_timeout``)
    start_timeout: float = 600.0
    max_restarts: int = 25


def parse_source(source: str) -> tuple[str, str, str]:
    """``owner/repo/path/File.lean@commit`` -> (``https://github.com/owner/repo``, path, commit)."""
    if "@" not in source:
        raise ProverStartError(f"theorem source {source!r} has no '@commit'", backend=BACKEND)
    where, commit = source.rsplit("@", 1)
    parts = where.split("/")
    if len(parts) < 3 or not parts[-1].endswith(".lean"):
        raise ProverStartError(
            f"theorem source {source!r} is not owner/repo/path.lean@commit", backend=BACKEND
        )
    return f"https://github.com/{parts[0]}/{parts[1]}", "/".join(parts[2:]), commit


def split_goals(pp: str) -> tuple[str, ...]:
    return tuple(g for g in pp.split("\n\n") if g.strip())


@dataclass
class _Node:
    parent: int | None
    tactic: str | None
    goals: tuple[str, ...]
    finished: bool = False
    generation: int = -1
    state: Any = None  # lean_dojo.TacticState in ``generation``


class LeanDojoData(LeanData):
    """The Lean 4 bank and step data; it reads Lean 4 REPL data too (the same Lean)."""

    def reads_steps_of(self, backend: str) -> bool:
        """Its own data, and Lean 4 REPL data (the same Lean)."""
        return backend in (self.backend, "lean4")


class LeanDojoSetup(ProverSetup):
    """LeanDojo's process policy; its Lean processes are its own (no confinement of ours applies)."""

    def default_config(self) -> ProverConfig:
        """Lean's tactic timeout, and a start timeout that fits elaborating a file with ``import Mathlib``."""
        return ProverConfig(tactic_timeout=LEAN_TACTIC_TIMEOUT, start_timeout=LeanDojoSettings.start_timeout)

    def sandbox_description(self, config: ProverConfig) -> dict[str, object]:
        # lean_dojo.Dojo starts and owns its Lean processes: none of our confinement applies to them
        return {
            "network_isolation": "none",
            "rlimits": {},
            "scrubbed_env": False,
            "private_tmpdir": False,
            "note": "lean_dojo starts its own Lean processes; llemma-prover does not confine them",
        }


@register_backend("leandojo")
class LeanDojoBackend(ProverBackend):
    dialect = LeanDialect("leandojo")
    sketches = LeanSketches("leandojo")
    data = LeanDojoData("leandojo")
    setup = LeanDojoSetup("leandojo")

    def __init__(
        self,
        config: ProverConfig,
        settings: LeanDojoSettings | None = None,
        *,
        dojo_factory: Callable[[Theorem], Any] | None = None,
        checker: Callable[[Theorem, str], bool] | None = None,
    ) -> None:
        super().__init__(config)
        self.settings = settings or LeanDojoSettings(
            tactic_timeout=config.tactic_timeout,
            start_timeout=config.start_timeout,
            max_restarts=config.max_restarts,
        )
        self._dojo_factory = dojo_factory
        self._checker = checker
        self._ld: Any = None
        self._dojo: Any = None
        self._generation = 0
        self._theorem: Theorem | None = None
        self._nodes: list[_Node] = []
        self._restarts = 0
        #: whether ``check_proof`` was given the two-spelling sorry regex (``start()``)
        self._sorry_regex_ok = False
        self._stats = {"restarts_total": 0.0, "replayed_tactics": 0.0, "timeouts": 0.0, "rejected": 0.0}

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._ld is not None:
            return
        version = lean_dojo_version()
        if version is not None and version < MIN_LEAN_DOJO:
            found = ".".join(map(str, version))
            raise ProverUnavailable(f"lean-dojo {found} is too old; {INSTALL_HINT}", backend=BACKEND)
        try:
            import lean_dojo  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ProverUnavailable(f"lean_dojo is not installed: {INSTALL_HINT}", backend=BACKEND) from exc
        self._sorry_regex_ok = _widen_sorry_regex()
        self._ld = lean_dojo

    def close(self) -> None:
        self._exit_dojo()

    def _exit_dojo(self) -> None:
        dojo, self._dojo = self._dojo, None
        if dojo is not None:
            _tear_down(dojo)

    @property
    def restarts(self) -> int:
        return self._restarts

    def stats(self) -> dict[str, float]:
        return dict(self._stats)

    # -- LeanDojo objects ---------------------------------------------------------------------------
    def entry(self, theorem: Theorem) -> Any:
        """The ``lean_dojo.Theorem`` for ``theorem`` (constructing ``LeanGitRepo`` contacts GitHub)."""
        self.start()
        url, path, commit = parse_source(theorem.source)
        repo = self._ld.LeanGitRepo(self.settings.repo_url or url, self.settings.commit or commit)
        return self._ld.Theorem(repo, path, theorem.name)

    def _enter(self, theorem: Theorem) -> Any:
        """Enter a Dojo for ``theorem`` under the start timeout, then give it the tactic timeout.

        Every failure is a ``ProverStartError`` (``from`` its cause), raised after the half-started Dojo
        and its Lean process tree have been torn down."""
        self.start()
        t0 = time.monotonic()
        start_timeout = max(1, math.ceil(self.settings.start_timeout))
        try:
            if self._dojo_factory is not None:
                dojo = self._dojo_factory(theorem)
            else:
                dojo = self._ld.Dojo(self.entry(theorem), timeout=start_timeout)
        except Exception as exc:
            raise ProverStartError(
                f"LeanDojo could not prepare {theorem.name}: {type(exc).__name__}: {exc}",
                backend=BACKEND,
                elapsed=time.monotonic() - t0,
            ) from exc
        try:
            entered, init = dojo.__enter__()
        except BaseException as exc:
            _tear_down(dojo)
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt / SystemExit: torn down, passed on
            raise ProverStartError(
                f"LeanDojo could not start {theorem.name}: {type(exc).__name__}: {exc}",
                backend=BACKEND,
                elapsed=time.monotonic() - t0,
            ) from exc
        _set_read_timeout(entered, max(1, math.ceil(self.settings.tactic_timeout)))
        self._dojo = entered
        self._generation += 1
        return init

    def _restart(self, why: str) -> None:
        log.warning("restarting LeanDojo environment: %s", why)
        self._exit_dojo()
        self._restarts += 1
        self._stats["restarts_total"] += 1
        if self._restarts > self.settings.max_restarts:
            raise RestartLimitExceeded(f"{self._restarts} restarts for one theorem", backend=BACKEND)

    # -- proving ----------------------------------------------------------------------------------
    def start_theorem(self, theorem: Theorem) -> RootState:
        t0 = time.monotonic()
        self._exit_dojo()
        self._theorem, self._restarts = theorem, 0
        init = self._enter(theorem)
        if not isinstance(init, self._ld.TacticState):
            raise ProverStartError(f"LeanDojo gave {type(init).__name__}, not a TacticState", backend=BACKEND)
        goals = split_goals(init.pp)
        self._nodes = [_Node(None, None, goals, generation=self._generation, state=init)]
        return RootState(0, goals, time.monotonic() - t0)

    def _run(self, state: Any, tactic: str) -> Any:
        return self._dojo.run_tac(state, tactic)

    def _materialize(self, state_id: int) -> Any:
        assert self._theorem is not None
        if self._dojo is None:
            init = self._enter(self._theorem)
            root = self._nodes[0]
            if split_goals(init.pp) != root.goals:
                raise ProverError("root goals differ after restart", backend=BACKEND)
            root.generation, root.state = self._generation, init
        path: list[int] = []
        i: int | None = state_id
        while i is not None and self._nodes[i].generation != self._generation:
            path.append(i)
            i = self._nodes[i].parent
        for j in reversed(path):
            n = self._nodes[j]
            assert n.parent is not None and n.tactic is not None
            res = self._run(self._nodes[n.parent].state, n.tactic)
            self._stats["replayed_tactics"] += 1
            if not isinstance(res, self._ld.TacticState) or split_goals(res.pp) != n.goals:
                self._restart("replay diverged")
                raise ProverError(f"replaying {n.tactic!r} gave a different result", backend=BACKEND)
            n.generation, n.state = self._generation, res
        return self._nodes[state_id].state

    def apply(self, state_id: int, tactic: str) -> StepResult:
        if self._theorem is None:
            raise ProverError("apply() before start_theorem()", backend=BACKEND)
        if not 0 <= state_id < len(self._nodes):
            raise KeyError(f"unknown state id {state_id}")
        node = self._nodes[state_id]
        if node.finished:
            return TacticError("the proof is already finished in this state", 0.0, rejected=True)
        why = check_tactic(tactic)
        if why is not None:
            self._stats["rejected"] += 1
            return TacticError(f"rejected: {why}", 0.0, rejected=True)
        ld = self._ld
        try:
            state = self._materialize(state_id)
            t0 = time.monotonic()
            res = self._run(state, tactic)
        except ld.DojoTacticTimeoutError:
            self._stats["timeouts"] += 1
            self._restart("tactic timeout")
            return TacticTimeout(self.settings.tactic_timeout, self.settings.tactic_timeout)
        except ld.DojoCrashError as exc:
            self._restart(f"crash: {exc}")
            raise ProverCrashed(f"LeanDojo crashed: {exc}", backend=BACKEND) from exc
        elapsed = time.monotonic() - t0
        if isinstance(res, ld.TacticState):
            goals = split_goals(res.pp)
            self._nodes.append(_Node(state_id, tactic, goals, generation=self._generation, state=res))
            return Advanced(len(self._nodes) - 1, goals, elapsed)
        if isinstance(res, ld.ProofFinished):
            self._nodes.append(
                _Node(state_id, tactic, (), finished=True, generation=self._generation, state=res)
            )
            return ProofFinished(len(self._nodes) - 1, elapsed)
        if isinstance(res, ld.LeanError):
            return TacticError(res.error, elapsed)
        if isinstance(res, ld.ProofGivenUp):
            return TacticError("proof given up: the tactic produced sorry", elapsed)
        raise ProverError(f"unexpected LeanDojo result {type(res).__name__}", backend=BACKEND)

    # -- checking ---------------------------------------------------------------------------------
    def check(self, theorem: Theorem, proof: Sequence[str]) -> CheckResult:
        t0 = time.monotonic()
        for tac in proof:
            why = check_tactic(tac)
            if why is not None:
                return CheckResult(
                    False, "leandojo.check_proof", time.monotonic() - t0, f"rejected {tac!r}: {why}"
                )
        if not proof:
            return CheckResult(False, "leandojo.check_proof", 0.0, "empty proof")
        text = " by" + proof_body(proof)
        try:
            if self._checker is not None:
                ok = self._checker(theorem, text)
            else:
                self.start()
                if not self._sorry_regex_ok:
                    return CheckResult(
                        False,
                        "leandojo.check_proof",
                        time.monotonic() - t0,
                        "not verified: this lean-dojo's check_proof cannot be given a sorry check that "
                        "accepts both spellings of Lean's warning",
                    )
                ok = bool(self._ld.check_proof(self.entry(theorem), text))
        except Exception as exc:  # noqa: BLE001 - any failure of the checker means "not verified"
            return CheckResult(
                False, "leandojo.check_proof", time.monotonic() - t0, f"check failed to run: {exc}"
            )
        msg = (
            "compiled without errors or sorry; axioms not audited (LeanDojo's check_proof does not list them)"
        )
        return CheckResult(
            ok, "leandojo.check_proof", time.monotonic() - t0, msg if ok else "rejected by Lean"
        )


def _widen_sorry_regex() -> bool:
    """Give ``lean_dojo.check_proof`` the two-spelling sorry regex; False when its module has no such name."""
    try:
        from lean_dojo.interaction import dojo as dojo_module  # type: ignore[import-untyped]
    except ImportError:
        return False
    if not isinstance(getattr(dojo_module, "_SORRY_WARNING_REGEX", None), re.Pattern):
        return False
    dojo_module._SORRY_WARNING_REGEX = SORRY_WARNING_REGEX
    return True


def _set_read_timeout(dojo: Any, seconds: int) -> None:
    """After the start, every read of an entered Dojo waits at most ``seconds`` (one tactic)."""
    with contextlib.suppress(AttributeError):
        dojo.timeout = seconds
    proc = getattr(dojo, "proc", None)
    if proc is not None and hasattr(proc, "timeout"):
        proc.timeout = seconds


def _tear_down(dojo: Any) -> None:
    """End a Dojo whatever state it is in; never raises.

    ``Dojo.__exit__`` kills the Lean process's descendants (psutil) and removes the modified file, but
    fails with ``AttributeError`` when ``__enter__`` broke before spawning and never reaps its pexpect
    child; so afterwards the child's process group (pexpect's child leads its own session) is killed and
    the child reaped through ``proc.close(force=True)``."""
    try:
        dojo.__exit__(None, None, None)
    except Exception as exc:  # noqa: BLE001 - closing must never raise
        log.debug("Dojo.__exit__ failed: %s: %s", type(exc).__name__, exc)
    proc = getattr(dojo, "proc", None)
    pid = getattr(proc, "pid", None)
    if isinstance(pid, int) and pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    close = getattr(proc, "close", None)
    if callable(close):
        try:
            close(force=True)
        except Exception as exc:  # noqa: BLE001 - closing must never raise
            log.debug("closing the Dojo's Lean process failed: %s", exc)
