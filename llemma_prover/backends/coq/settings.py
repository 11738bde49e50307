"""The Coq backend's fixed policies and the numbers it derives from ``ProverConfig`` (one place each).

Every timeout the backend uses is here or in the config: a tactic runs under Coq's own
``Timeout T`` (``tactic_seconds``) and a client deadline of ``T + TIMEOUT_GRACE_S``; bookkeeping calls
(``Edit_at``, a parse) get ``COMMAND_TIMEOUT_S``; the kernel's ``Qed`` on a finished state gets
``qed_seconds``. The counters ``CoqBackend.stats()`` reports are named in ``COUNTERS``.
"""

from __future__ import annotations

import math

from ...core.config import ProverConfig

__all__ = [
    "COMMAND_TIMEOUT_S",
    "COQ_TIMEOUT_MESSAGE",
    "COUNTERS",
    "QED_TACTIC_FACTOR",
    "RSS_SAMPLE_EVERY",
    "TIMEOUT_GRACE_S",
    "qed_seconds",
    "reset_counters",
    "sibling_tool",
    "tactic_seconds",
    "time_policy",
]

#: seconds the client waits beyond Coq's own ``Timeout`` before it declares the prover hung
TIMEOUT_GRACE_S = 2.0
#: seconds allowed for a bookkeeping call (``Edit_at``, a parse) that should be instantaneous
COMMAND_TIMEOUT_S = 30.0
#: how often (in requests) the resident memory of coqidetop is sampled for ``recycle_rss_mb``
RSS_SAMPLE_EVERY = 16
#: the ``Qed`` check of a finished proof may take this many tactic timeouts (plus the grace)
QED_TACTIC_FACTOR = 4
#: Coq's message when its own ``Timeout`` fires
COQ_TIMEOUT_MESSAGE = "Timeout!"

#: the counters of ``CoqBackend.stats()``, in the order they are reported (reset per theorem)
COUNTERS = (
    "requests",
    "tactics",
    "rejected",
    "coq_rejected",
    "kernel_rejected",
    "timeouts",
    "candidate_crashes",
    "backtos",
    "replays",
    "replayed_tactics",
    "replay_s",
    "process_starts",
    "spare_used",
    "recycles",
    "start_s",
)


def reset_counters(stats: dict[str, float]) -> None:
    """Every counter back to zero, in place (the pool and the step layer hold the same dict)."""
    stats.clear()
    stats.update(dict.fromkeys(COUNTERS, 0.0))


def tactic_seconds(config: ProverConfig) -> int:
    """``T`` of ``Timeout T``: the tactic timeout in whole seconds, at least 1."""
    return max(1, math.ceil(config.tactic_timeout))


def qed_seconds(config: ProverConfig) -> float:
    """The budget of the kernel's ``Qed`` on a finished state: a few tactic timeouts, never more than
    the final check's. The kernel re-checks what the tactic built, at a cost of the tactic's order, so
    a proof term made to be slow to check costs one candidate, not minutes."""
    return min(config.check_timeout, QED_TACTIC_FACTOR * tactic_seconds(config) + TIMEOUT_GRACE_S)


def time_policy(config: ProverConfig) -> dict[str, float]:
    """Every deadline the backend derives from ``config``, in seconds (``config.json["prover_settings"]
    ["time_policy"]``): what a tactic, a bookkeeping call, a ``Qed`` and a start may take."""
    return {
        "tactic_coq_timeout": tactic_seconds(config),
        "tactic_deadline": tactic_seconds(config) + TIMEOUT_GRACE_S,
        "grace": TIMEOUT_GRACE_S,
        "command": COMMAND_TIMEOUT_S,
        "qed": qed_seconds(config),
        "start": config.start_timeout,
        "check": config.check_timeout,
    }


def sibling_tool(coqtop: str, tool: str) -> str:
    """``coqc``/``coqchk`` beside a configured ``coqtop`` (the one on PATH otherwise)."""
    if coqtop.endswith("coqtop"):
        return coqtop[: -len("coqtop")] + tool
    return tool
