"""The doctor's one way to run a short probe command (``lean --version``, ``isabelle version``, ...).

Every probe is a ``backends/process.py`` ``ManagedProcess``, the helper under every prover process: its
own process group (killed as a whole and reaped however the probe ends), output read against one
deadline and capped, stdout and stderr in one stream. The user's environment is kept (a probe reports
on this machine as the user has set it up) and the probe runs in ``cwd`` or a private directory.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..backends.process import ManagedProcess, ProcessTimeout

__all__ = ["run_probe"]

#: characters of output a probe may print (a version line is a few dozen)
MAX_PROBE_OUTPUT = 1024 * 1024


def run_probe(argv: Sequence[str], *, cwd: str | None = None, timeout: float = 60.0) -> tuple[int, str]:
    """Run ``argv`` to completion: (exit status, stdout and stderr). ``TimeoutError`` past ``timeout``
    (the group is killed); ``ProcessError`` when it cannot be started."""
    proc = ManagedProcess(
        argv, cwd=cwd, private_tmpdir=cwd is None, scrub_env=False, max_output_chars=MAX_PROBE_OUTPUT
    )
    try:
        proc.start()
        try:
            return proc.wait(time.monotonic() + timeout)
        except ProcessTimeout as exc:
            raise TimeoutError(f"{argv[0]} did not finish within {timeout:.0f} s") from exc
    finally:
        proc.close()
