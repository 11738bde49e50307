"""The exception hierarchy.

Two tiers of failure:

* a tactic that fails is a *value* (``TacticError``/``TacticTimeout`` in ``core.types``);
* infrastructure that breaks is an *exception*: a ``ProverError`` when a prover process dies,
  hangs outside a tactic, or stops speaking its protocol; ``ConfigError``/``DataError`` for bad
  input the user can fix. ``UserError`` subclasses are printed by the CLI as one line.
"""

from __future__ import annotations


class LlemmaProverError(Exception):
    """Base class of every error this package raises on purpose."""


class UserError(LlemmaProverError):
    """Bad input the user can fix; the CLI prints it as one line and exits non-zero."""


class ConfigError(UserError):
    """An invalid setting or combination of settings."""


class DataError(UserError):
    """A benchmark file that is missing or malformed. ``path``/``line`` say where."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class RunDirError(UserError):
    """A run directory that cannot be used (unwritable, incompatible version, other config)."""


class GeneratorError(LlemmaProverError):
    """A tactic generator could not be built or could not run."""


class GeneratorUnavailable(GeneratorError, UserError):
    """An explicitly requested generator cannot load; the message says why and what to do."""


class ProverError(LlemmaProverError):
    """A prover *process* failed (not a tactic). Carries context for the log and the record."""

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        elapsed: float = 0.0,
        output_tail: str = "",
    ) -> None:
        detail = message
        if output_tail:
            detail += f" [last output: {output_tail[-300:]!r}]"
        super().__init__(f"{backend}: {detail}")
        self.backend = backend
        self.elapsed = elapsed
        self.output_tail = output_tail

    def __reduce__(self) -> tuple[object, ...]:
        # picklable although __init__ takes keyword-only arguments (errors cross Ray's process boundary)
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(cls: type[BaseException], args: tuple[object, ...],
                   state: dict[str, object]) -> BaseException:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class ProverStartError(ProverError):
    """The prover could not be started, or the theorem header/statement did not load."""


class ProverCrashed(ProverError):
    """The prover process exited (or was killed) while we were talking to it."""


class ProverHung(ProverError):
    """The prover did not answer a non-tactic request in time (startup, restore, check)."""


class ProverDesync(ProverError):
    """The prover's replies no longer match what we sent (protocol out of step)."""


class ProverUnavailable(ProverError, UserError):
    """The prover's executable is not installed / not found; the message says how to get it."""


class RestartLimitExceeded(ProverError):
    """A backend needed more restarts than its policy allows for one theorem."""
