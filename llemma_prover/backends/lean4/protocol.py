"""The community Lean 4 REPL's JSON protocol (github.com/leanprover-community/repl), as typed values.

Wire format: a request is one JSON object followed by a blank line; the REPL answers with one
(pretty-printed, possibly multi-line) JSON object followed by a blank line. Strings are JSON-escaped,
so a blank line never occurs inside an object.

Three request kinds are used here:

* command: ``{"cmd": SRC}`` (fresh environment; only then may SRC start with ``import``) or
  ``{"cmd": SRC, "env": N}`` -> ``CommandResponse`` (new ``env``, ``messages``, ``sorries``);
* tactic: ``{"tactic": TAC, "proofState": N}`` -> ``TacticResponse`` (new ``proofState``, ``goals``,
  ``proofStatus``, ``messages``, ``sorries``);
* either may instead be answered with ``{"message": TEXT}`` -> ``ReplError`` (e.g. ``"Lean error:\\n..."``,
  ``"Unknown proof state."``, ``"Unknown environment."``).

Every shape below is taken from real REPL output (``../shared/lean4_repl/transcripts``). Parsing is
strict about types and lenient about unknown keys (``traces``, ``tactics``, ``infotree`` are ignored or
kept verbatim), so that a newer REPL that adds fields still works, and a reply that is not this
protocol raises ``ProtocolError`` instead of being guessed at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COMPLETED",
    "OPEN_GOALS",
    "CommandResponse",
    "Message",
    "Pos",
    "ProtocolError",
    "ReplError",
    "Sorry",
    "TacticResponse",
    "command_request",
    "encode_request",
    "parse_command_response",
    "parse_tactic_response",
    "pickle_env_request",
    "tactic_request",
    "unpickle_env_request",
]

#: ``proofStatus`` of a proof the REPL has kernel-checked with no sorry. The only success value.
COMPLETED = "Completed"
#: ``proofStatus`` of a state that still has goals (the only status under which goals are progress).
OPEN_GOALS = "Incomplete: open goals remain"

#: ``ReplError`` texts that mean the client referred to an id the REPL does not have (a desync).
UNKNOWN_PROOF_STATE = "Unknown proof state."
UNKNOWN_ENVIRONMENT = "Unknown environment."


class ProtocolError(ValueError):
    """A reply that is not valid JSON or does not have the shape of a REPL response."""


@dataclass(frozen=True)
class Pos:
    line: int
    column: int


@dataclass(frozen=True)
class Message:
    """One Lean message (``severity`` is ``"error"``, ``"warning"`` or ``"info"``)."""

    severity: str
    data: str
    pos: Pos | None = None
    end_pos: Pos | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass(frozen=True)
class Sorry:
    """A ``sorry`` the REPL found; ``proof_state`` is the id of its goal (may be absent)."""

    goal: str
    proof_state: int | None = None
    pos: Pos | None = None
    end_pos: Pos | None = None


@dataclass(frozen=True)
class ReplError:
    """A ``{"message": ...}`` reply: the REPL could not run the request at all."""

    message: str

    @property
    def unknown_id(self) -> bool:
        """The request named a ``proofState``/``env`` the REPL does not know (client out of step)."""
        return self.message.strip() in (UNKNOWN_PROOF_STATE, UNKNOWN_ENVIRONMENT)


@dataclass(frozen=True)
class CommandResponse:
    env: int
    messages: tuple[Message, ...] = ()
    sorries: tuple[Sorry, ...] = ()

    @property
    def errors(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.is_error)


@dataclass(frozen=True)
class TacticResponse:
    proof_state: int
    goals: tuple[str, ...]
    #: ``None`` when the REPL did not send the field (REPL versions before proof-status checking)
    proof_status: str | None
    messages: tuple[Message, ...] = ()
    sorries: tuple[Sorry, ...] = ()
    traces: tuple[str, ...] = ()

    @property
    def errors(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.is_error)

    @property
    def completed(self) -> bool:
        """The REPL kernel-checked the whole proof and found no sorry. Empty ``goals`` alone is NOT this."""
        return self.proof_status == COMPLETED


# ------------------------------------------------------------------------------------------------
# requests
# ------------------------------------------------------------------------------------------------


def command_request(cmd: str, env: int | None = None) -> dict[str, Any]:
    req: dict[str, Any] = {"cmd": cmd}
    if env is not None:
        req["env"] = env
    return req


def tactic_request(tactic: str, proof_state: int) -> dict[str, Any]:
    return {"tactic": tactic, "proofState": proof_state}


def pickle_env_request(env: int, path: str) -> dict[str, Any]:
    """Save environment ``env`` to ``path``: its imports, the constants added after them, and the
    command scopes. Environment extensions (macros, notations, elaborators, attributes) are not saved."""
    return {"pickleTo": path, "env": env}


def unpickle_env_request(path: str) -> dict[str, Any]:
    """Restore a pickled environment in this process: the imports are imported afresh and every saved
    constant is added with ``replayToElabEnv`` -- **without** a kernel check at REPL ``v4.32.0``
    (``REPL/Snapshots.lean``, ``REPL/Lean/Replay.lean``). Answered like a command; a missing or
    unreadable file is not answered: the REPL exits with an uncaught exception (``REPL/Main.lean``)."""
    return {"unpickleEnvFrom": path}


def encode_request(req: dict[str, Any]) -> bytes:
    """One request on the wire: a single-line JSON object and the blank line that ends it.

    Raises ``ProtocolError`` for text that has no UTF-8 encoding (a lone surrogate)."""
    try:
        return (json.dumps(req, ensure_ascii=False) + "\n\n").encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ProtocolError(f"request is not encodable as UTF-8: {exc}") from exc


# ------------------------------------------------------------------------------------------------
# responses
# ------------------------------------------------------------------------------------------------


def decode_block(text: str) -> dict[str, Any]:
    """Parse one reply block (the text between blank lines) into a JSON object."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"reply is not JSON: {exc}: {text[:200]!r}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"reply is not a JSON object: {text[:200]!r}")
    return obj


def _int(obj: dict[str, Any], key: str) -> int:
    v = obj.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError(f"field {key!r} must be an integer, got {v!r}")
    return v


def _pos(v: Any) -> Pos | None:
    if not isinstance(v, dict):
        return None
    line, col = v.get("line"), v.get("column")
    if isinstance(line, int) and isinstance(col, int):
        return Pos(line, col)
    return None


def _messages(obj: dict[str, Any]) -> tuple[Message, ...]:
    raw = obj.get("messages", [])
    if not isinstance(raw, list):
        raise ProtocolError(f"'messages' must be a list, got {raw!r}")
    out = []
    for m in raw:
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("severity"), str)
            or not isinstance(m.get("data"), str)
        ):
            raise ProtocolError(f"malformed message {m!r}")
        out.append(Message(m["severity"], m["data"], _pos(m.get("pos")), _pos(m.get("endPos"))))
    return tuple(out)


def _sorries(obj: dict[str, Any]) -> tuple[Sorry, ...]:
    raw = obj.get("sorries", [])
    if not isinstance(raw, list):
        raise ProtocolError(f"'sorries' must be a list, got {raw!r}")
    out = []
    for s in raw:
        if not isinstance(s, dict) or not isinstance(s.get("goal"), str):
            raise ProtocolError(f"malformed sorry {s!r}")
        ps = s.get("proofState")
        if ps is not None and (not isinstance(ps, int) or isinstance(ps, bool)):
            raise ProtocolError(f"malformed sorry proofState {ps!r}")
        out.append(Sorry(s["goal"], ps, _pos(s.get("pos")), _pos(s.get("endPos"))))
    return tuple(out)


def _repl_error(obj: dict[str, Any]) -> ReplError | None:
    if "message" in obj and "env" not in obj and "proofState" not in obj:
        msg = obj["message"]
        if not isinstance(msg, str):
            raise ProtocolError(f"'message' must be a string, got {msg!r}")
        return ReplError(msg)
    return None


def parse_command_response(obj: dict[str, Any]) -> CommandResponse | ReplError:
    err = _repl_error(obj)
    if err is not None:
        return err
    if "env" not in obj:
        raise ProtocolError(f"command reply without 'env': {sorted(obj)}")
    return CommandResponse(env=_int(obj, "env"), messages=_messages(obj), sorries=_sorries(obj))


def parse_tactic_response(obj: dict[str, Any]) -> TacticResponse | ReplError:
    err = _repl_error(obj)
    if err is not None:
        return err
    if "proofState" not in obj:
        raise ProtocolError(f"tactic reply without 'proofState': {sorted(obj)}")
    goals = obj.get("goals", [])
    if not isinstance(goals, list) or not all(isinstance(g, str) for g in goals):
        raise ProtocolError(f"'goals' must be a list of strings, got {goals!r}")
    status = obj.get("proofStatus")
    if status is not None and not isinstance(status, str):
        raise ProtocolError(f"'proofStatus' must be a string, got {status!r}")
    traces = obj.get("traces", [])
    traces_t = tuple(t for t in traces if isinstance(t, str)) if isinstance(traces, list) else ()
    return TacticResponse(
        proof_state=_int(obj, "proofState"),
        goals=tuple(goals),
        proof_status=status,
        messages=_messages(obj),
        sorries=_sorries(obj),
        traces=traces_t,
    )


Response = CommandResponse | TacticResponse | ReplError
