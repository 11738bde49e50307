"""The kernel layer of the Lean re-check: the checked file compiled to an ``.olean`` by ``lean``, then
every constant in it replayed through Lean's kernel by ``leanchecker``, a process that reads
``.olean`` files and never elaborates a character of text.

Why this and not the REPL's ``unpickleEnvFrom``: at the pinned REPL (tag ``v4.32.0``) unpickling goes
through ``replayToElabEnv`` (``REPL/Snapshots.lean``, ``CommandSnapshot.unpickle``), which inserts each
pickled constant with Lake's ``lake_environment_add`` and **no kernel check**; the REPL's own
``REPL/Lean/Replay.lean`` says pickles "are trusted artifacts; this is not a verifier boundary". So the
audit process that unpickles (``audit.py``) checks the statement and the axioms of constants the kernel
never saw there; this module is where they are kernel-checked, apart from the process that made them.

Steps (each a fresh process under the backend's sandbox, killed and reaped by ``ManagedProcess``):

1. **compile** -- ``lean -R DIR -o DIR/M.olean DIR/M.lean`` (through ``lake env`` in the Lake project,
   so that ``import Mathlib`` resolves), where ``M.lean`` is the same text the REPL compiled (header,
   then ``<statement> by <proof>``) and ``M`` a fresh random module name. This process elaborates model
   text, like the REPL compile process; its exit status must be 0 (Lean exits 1 on any error) and it
   must write the ``.olean``. Its output is not read for anything else.
2. **replay** -- ``leanchecker M`` (shipped in the Lean toolchain's ``bin/`` since v4.28: Lean's
   ``src/LeanChecker.lean``), with ``DIR`` on ``LEAN_PATH`` and ``DIR`` visible read-only. For the module
   it reads ``M.olean`` (``readModuleData``), imports only ``M``'s *imports* (the header's modules, not
   ``M`` itself: none of the proof's macros, attributes or initializers exist there), and adds every
   constant of ``M`` through ``Lean.Kernel.Environment.replay`` (Lean's ``src/Lean/Replay.lean``:
   ``addDecl`` per constant, the kernel's type check; no option of the proof's file is consulted).
   The ``.lean`` file is deleted before it starts: it is given a module name and nothing else.
   Exit status 0 means the kernel accepted every constant; anything else is a rejection.

Provenance of these facts: the REPL files were read at tag ``v4.32.0``. ``src/LeanChecker.lean`` was
read at a later commit of Lean's ``master`` (it checks the module's server/private ``.olean`` parts too);
that the ``v4.32.0`` toolchain ships ``leanchecker`` in ``bin/`` is what public projects pinned to Lean
4.32 use (``lake env leanchecker``), not re-verified here; ``Lake.Env.path`` (``lake env`` puts the
toolchain's ``bin/`` first on ``PATH``) was read in ``src/lake/Lake/Config/Env.lean``. If the toolchain
has no ``leanchecker``, step 2 fails and the re-check says "not verified" (never "proved").

Residual risk, stated plainly: the ``.olean`` here and the REPL's pickle that ``audit.py`` inspects come
from two compilations of the same text. Elaboration is deterministic, so they hold the same constants
unless the proof reaches code execution in a compile process (the residual risk ``audit.py`` already
names); such a proof could make the two differ. ``leanchecker`` trusts the ``.olean`` *format*
(a compacted region), as every Lean import does.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..process import ManagedProcess, ProcessError, ProcessTimeout
from ..sandbox import Sandbox

__all__ = ["KernelTools", "kernel_replay", "kernel_tools_for"]

#: characters of a process's output quoted in a rejection
QUOTE_CHARS = 600


@dataclass(frozen=True)
class KernelTools:
    """How to run ``lean`` and ``leanchecker`` for the project the REPL runs in."""

    lean: tuple[str, ...]
    leanchecker: tuple[str, ...]
    #: the Lake project directory the commands run in (None: as they are)
    cwd: str | None = None


def kernel_tools_for(repl_argv: Sequence[str], cwd: str | None) -> KernelTools | None:
    """The kernel tools beside a REPL command: ``lake env lean``/``lake env leanchecker`` in the REPL's
    project when it runs under ``lake env`` (Lake puts the toolchain's ``bin`` first on ``PATH``:
    ``Lake.Env.path`` in Lean's ``src/lake/Lake/Config/Env.lean``), else ``lean``/``leanchecker`` found
    on ``PATH``. None when they cannot be found (the re-check then says "not verified")."""
    argv = list(repl_argv)
    if len(argv) >= 3 and Path(argv[0]).name == "lake" and argv[1] == "env":
        return KernelTools((argv[0], "env", "lean"), (argv[0], "env", "leanchecker"), cwd)
    lean, checker = shutil.which("lean"), shutil.which("leanchecker")
    if lean is None or checker is None:
        return None
    return KernelTools((lean,), (checker,), cwd)


def kernel_replay(tools: KernelTools, text: str, *, sandbox: Sandbox, timeout: float) -> str | None:
    """Compile ``text`` to an ``.olean`` and replay its constants through the kernel (module docstring).

    None when the kernel accepted every constant; else why not (a failure to run is a rejection)."""
    root = Path(os.path.realpath(tempfile.mkdtemp(prefix="llemma_lean_kernel_")))
    out = root / "out"
    out.mkdir()
    module = f"LlemmaCheck_{secrets.token_hex(8)}"
    source, olean = out / f"{module}.lean", out / f"{module}.olean"
    deadline = time.monotonic() + timeout
    try:
        source.write_text(text, encoding="utf-8")
        argv = [*tools.lean, "-R", str(out), "-o", str(olean), str(source)]
        status, output = _run(tools, argv, sandbox=sandbox, deadline=deadline)
        if status != 0:
            return f"lean could not compile the proof file (exit {status}): {_quote(output)}"
        if not olean.is_file():
            return "lean exited 0 but wrote no .olean"
        source.unlink()  # the checker reads only the .olean
        status, output = _run(
            tools,
            [*tools.leanchecker, module],
            sandbox=sandbox,
            deadline=deadline,
            lean_path=str(out),
        )
        if status != 0:
            return f"the kernel rejected a constant (leanchecker exit {status}): {_quote(output)}"
        return None
    except ProcessTimeout:
        return f"kernel check did not finish within {timeout:.0f} s"
    except ProcessError as exc:
        return f"kernel check could not run: {exc}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(
    tools: KernelTools, argv: list[str], *, sandbox: Sandbox, deadline: float, lean_path: str | None = None
) -> tuple[int, str]:
    # Run like the REPL: no private working directory, so under bwrap the root is read-only and the
    # host's /tmp (where the .olean is written and read) writable; the Lake project is entered with
    # ``env -C`` so that ``lake env`` finds its lakefile and toolchain.
    full = ["env", "-C", tools.cwd, *argv] if tools.cwd else argv
    extra = {"LEAN_PATH": lean_path} if lean_path else {}
    proc = ManagedProcess(full, private_tmpdir=False, sandbox=sandbox, env_extra=extra)
    try:
        proc.start()
        return proc.wait(deadline)
    finally:
        proc.close()


def _quote(output: str) -> str:
    text = output.strip()
    return text if len(text) <= QUOTE_CHARS else "..." + text[-QUOTE_CHARS:]
