"""The Isabelle server wire protocol (Isabelle System Manual, chapter "The Isabelle server").

Pure encoding/decoding, no sockets. A message is either

* a *short* message: one line ``NAME ARGUMENT\\n``, or
* a *long* message: a line holding only the decimal byte length ``N``, then exactly ``N`` bytes of
  ``NAME ARGUMENT`` (which may contain line breaks; no terminator follows).

``ARGUMENT`` is empty or JSON. The first line a client sends is the server password. Replies are
``OK``/``ERROR`` (to a command), and for asynchronous commands (``session_build``, ``session_start``,
``session_stop``, ``use_theories``) an immediate ``OK {"task": ID}`` followed later by any number of
``NOTE {"task": ID, ...}`` and exactly one ``FINISHED {"task": ID, ...}`` or ``FAILED {"task": ID, ...}``.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

#: messages longer than this are always sent in the long (length-prefixed) form
LONG_MESSAGE_THRESHOLD = 4096


class Reply(str, enum.Enum):
    OK = "OK"
    ERROR = "ERROR"
    NOTE = "NOTE"
    FINISHED = "FINISHED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Message:
    """One decoded message: ``name`` and the raw argument text ("" when absent)."""

    name: str
    argument: str = ""

    def json(self) -> Any:
        """The argument parsed as JSON (``None`` when empty; the raw string when it is not JSON)."""
        if not self.argument.strip():
            return None
        try:
            return json.loads(self.argument)
        except json.JSONDecodeError:
            return self.argument


class ProtocolError(ValueError):
    """Bytes that are not a well-formed server message."""


def encode(name: str, argument: Any = None) -> bytes:
    """One message as bytes. ``argument`` is JSON-encoded unless it is ``None``."""
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"bad command name {name!r}")
    text = name if argument is None else f"{name} {json.dumps(argument, ensure_ascii=False)}"
    data = text.encode("utf-8")
    if b"\n" in data or len(data) > LONG_MESSAGE_THRESHOLD:
        return str(len(data)).encode("ascii") + b"\n" + data
    return data + b"\n"


def encode_line(text: str) -> bytes:
    """A raw single line (the password handshake)."""
    if "\n" in text:
        raise ValueError("a protocol line may not contain a line break")
    return text.encode("utf-8") + b"\n"


_NAME_RE = re.compile(r"([A-Za-z0-9_.]+)[ ]*")


def split_message(text: str) -> Message:
    """``NAME ARGUMENT`` -> Message: the name is the longest prefix of ASCII letters, digits, ``_``
    and ``.``; the separator is the longest run of blanks (possibly empty, as in ``OK{...}``)."""
    m = _NAME_RE.match(text)
    if not m:
        raise ProtocolError(f"no message name in {text[:80]!r}")
    return Message(name=m.group(1), argument=text[m.end() :])


class MessageBuffer:
    """Incremental decoder: ``feed(bytes)``, then ``pop()`` complete messages in order."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending_len: int | None = None

    def feed(self, data: bytes) -> None:
        self._buf.extend(data)

    def pop(self) -> Message | None:
        """The next complete message, or ``None`` if more bytes are needed."""
        while self._pending_len is None:
            nl = self._buf.find(b"\n")
            if nl < 0:
                return None
            line = bytes(self._buf[:nl]).rstrip(b"\r")
            del self._buf[: nl + 1]
            if not line:
                continue  # the optional line terminator after a long message (or a stray empty line)
            if line.isdigit():
                self._pending_len = int(line)
            else:
                return split_message(line.decode("utf-8", errors="replace"))
        if len(self._buf) < self._pending_len:
            return None
        body = bytes(self._buf[: self._pending_len])
        del self._buf[: self._pending_len]
        self._pending_len = None
        return split_message(body.decode("utf-8", errors="replace"))

    def pop_line(self) -> str | None:
        """A raw line (for the handshake before message framing applies)."""
        nl = self._buf.find(b"\n")
        if nl < 0:
            return None
        line = bytes(self._buf[:nl]).rstrip(b"\r").decode("utf-8", errors="replace")
        del self._buf[: nl + 1]
        return line


# ---------------------------------------------------------------------------------------------
# Typed views of the results we use
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    line: int | None = None
    offset: int | None = None
    end_offset: int | None = None
    file: str = ""

    @classmethod
    def from_json(cls, d: Any) -> Position:
        if not isinstance(d, dict):
            return cls()

        def _int(k: str) -> int | None:
            v = d.get(k)
            return int(v) if isinstance(v, (int, float)) else None

        return cls(
            line=_int("line"),
            offset=_int("offset"),
            end_offset=_int("end_offset"),
            file=str(d.get("file", "")),
        )


@dataclass(frozen=True)
class ProverMessage:
    """A message of the prover about a theory (``kind``: error, warning, writeln, ...)."""

    kind: str
    message: str
    pos: Position = Position()

    @classmethod
    def from_json(cls, d: Any) -> ProverMessage:
        if not isinstance(d, dict):
            return cls(kind="unknown", message=str(d))
        return cls(
            kind=str(d.get("kind", "")),
            message=str(d.get("message", "")),
            pos=Position.from_json(d.get("pos")),
        )

    def render(self) -> str:
        where = f"line {self.pos.line}: " if self.pos.line is not None else ""
        return f"{self.kind}: {where}{self.message}"


@dataclass(frozen=True)
class NodeResult:
    node_name: str
    theory_name: str
    ok: bool
    messages: tuple[ProverMessage, ...]

    @classmethod
    def from_json(cls, d: Any) -> NodeResult:
        d = d if isinstance(d, dict) else {}
        status = d.get("status") if isinstance(d.get("status"), dict) else {}
        return cls(
            node_name=str(d.get("node_name", "")),
            theory_name=str(d.get("theory_name", "")),
            ok=bool(status.get("ok", False)),
            messages=tuple(ProverMessage.from_json(m) for m in d.get("messages", []) or []),
        )


@dataclass(frozen=True)
class UseTheoriesResult:
    """The ``FINISHED`` result of ``use_theories``: ``ok`` plus every error and node message."""

    ok: bool
    errors: tuple[ProverMessage, ...]
    nodes: tuple[NodeResult, ...]

    @classmethod
    def from_json(cls, d: Any) -> UseTheoriesResult:
        d = d if isinstance(d, dict) else {}
        return cls(
            ok=bool(d.get("ok", False)),
            errors=tuple(ProverMessage.from_json(e) for e in d.get("errors", []) or []),
            nodes=tuple(NodeResult.from_json(n) for n in d.get("nodes", []) or []),
        )

    def messages(self) -> tuple[ProverMessage, ...]:
        out: list[ProverMessage] = []
        for n in self.nodes:
            out.extend(n.messages)
        return tuple(out)
