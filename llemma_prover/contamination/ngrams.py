"""Tokenizers and vectorised n-gram hashing for the contamination check.

Two ways to turn text into 64-bit token values:

* the whitespace tokenizer (default) works on the UTF-8 bytes: numpy finds the tokens (runs of
  non-ASCII-whitespace bytes) and hashes each one (``byte_tokens``), with no per-token Python work;
* any other tokenizer (a Hugging Face one) yields tokens that a table maps to random values, 0 for a
  token the benchmark never uses.

A window of ``n`` values hashes to ``sum(v[i+j] * B**(n-1-j))`` modulo 2**64, computed for a whole batch
at once (``window_hashes``). Every hash match is verified token by token afterwards, so a collision
can never report a false hit; a 0 value (unknown token, document separator) never takes part in a hit.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Sequence
from itertools import repeat
from typing import Any, Protocol

import numpy as np

from ..core.errors import ConfigError

log = logging.getLogger(__name__)

_BASE = np.uint64(0x9E3779B97F4A7C15)


class Tokenizer(Protocol):
    name: str

    def tokenize(self, text: str) -> list[Hashable]: ...

    def tokenize_many(self, texts: Sequence[str]) -> list[list[Hashable]]: ...

    def detokenize(self, tokens: Sequence[Hashable]) -> str: ...


class WhitespaceTokenizer:
    """Tokens are maximal runs of bytes other than ASCII whitespace (space, tab, CR, LF, VT, FF), as
    ``bytes.split()`` does; ``lowercase`` folds ASCII letters. Working on bytes lets the corpus side be
    tokenised and hashed with numpy (``byte_tokens``) exactly as the benchmark side is here."""

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase
        self.name = "whitespace" + ("+lower" if lowercase else "")

    def tokenize(self, text: str) -> list[Hashable]:
        b = text.encode("utf-8", "replace")
        if self.lowercase:
            b = b.lower()
        return [t.decode("utf-8", "replace") for t in b.split()]

    def tokenize_many(self, texts: Sequence[str]) -> list[list[Hashable]]:
        return [self.tokenize(t) for t in texts]

    def detokenize(self, tokens: Sequence[Hashable]) -> str:
        return " ".join(str(t) for t in tokens)


class HFTokenizer:
    """A Hugging Face tokenizer by name or local path (``transformers`` imported only here).

    ``load_kwargs`` go to ``AutoTokenizer.from_pretrained`` (e.g. ``{"gguf_file": "model.gguf"}``).
    """

    def __init__(self, name_or_path: str, **load_kwargs: Any) -> None:
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:  # pragma: no cover - transformers is a dependency
            raise ConfigError("a named tokenizer needs the transformers package") from exc
        try:
            self.tok = AutoTokenizer.from_pretrained(name_or_path, **load_kwargs)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load tokenizer {name_or_path!r}: {exc}") from exc
        self.name = f"hf:{name_or_path}"

    def tokenize(self, text: str) -> list[Hashable]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def tokenize_many(self, texts: Sequence[str]) -> list[list[Hashable]]:
        if not texts:
            return []
        return [list(x) for x in self.tok(list(texts), add_special_tokens=False)["input_ids"]]

    def detokenize(self, tokens: Sequence[Hashable]) -> str:
        return str(self.tok.decode([int(t) for t in tokens]))  # type: ignore[call-overload]


def make_tokenizer(spec: str = "whitespace", *, lowercase: bool = False, **load_kwargs: Any) -> Tokenizer:
    """``whitespace`` or a Hugging Face tokenizer name/path."""
    if spec in ("", "whitespace", "ws"):
        return WhitespaceTokenizer(lowercase=lowercase)
    if lowercase:
        raise ConfigError("--lowercase only applies to the whitespace tokenizer")
    return HFTokenizer(spec, **load_kwargs)


class TokenValues:
    """token -> random non-zero uint64, for the tokens of the benchmark (everything else is 0)."""

    def __init__(self, vocabulary: Iterable[Hashable], seed: int = 0) -> None:
        vocab = list(dict.fromkeys(vocabulary))
        rng = np.random.default_rng(seed)
        vals = rng.integers(1, np.iinfo(np.int64).max, size=len(vocab), dtype=np.int64).astype(np.uint64)
        vals |= np.uint64(1)  # odd, so never 0
        self.table: dict[Hashable, int] = {t: int(v) for t, v in zip(vocab, vals, strict=True)}

    def __len__(self) -> int:
        return len(self.table)

    def values(self, tokens: Sequence[Hashable]) -> np.ndarray:
        return np.fromiter(map(self.table.get, tokens, repeat(0)), dtype=np.uint64, count=len(tokens))


def window_hashes(values: np.ndarray, n: int) -> np.ndarray:
    """Hash of every window of ``n`` consecutive values (length ``len(values) - n + 1``, or 0)."""
    m = len(values) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h *= _BASE
            h += values[j : j + m]
    return h


def full_windows(values: np.ndarray, n: int) -> np.ndarray:
    """Start indices of windows of ``n`` values none of which is 0 (unknown token or separator)."""
    m = len(values) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.int64)
    zeros = np.concatenate(([0], np.cumsum(values == 0, dtype=np.int64)))
    return np.nonzero(zeros[n : n + m] == zeros[:m])[0]


# ------------------------------------------------------------------------------------------------
# Vectorised whitespace tokenisation + per-token hashing on bytes (the fast path for the corpus side)
# ------------------------------------------------------------------------------------------------
_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 11, 12, 13, 32]] = True
_R = 0x100000001B3  # odd: invertible modulo 2**64
_R_INV = pow(_R, -1, 1 << 64)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise (uint64, wrapping)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _M1
        x = x ^ (x >> np.uint64(27))
        x = x * _M2
        out: np.ndarray = x ^ (x >> np.uint64(31))
        return out


class BytePowers:
    """R**j and R**-j modulo 2**64 for j < size, grown on demand (one per scanner, no global state)."""

    def __init__(self) -> None:
        self.pw = np.ones(1, dtype=np.uint64)
        self.ipw = np.ones(1, dtype=np.uint64)

    def ensure(self, size: int) -> None:
        if len(self.pw) >= size:
            return
        size = max(size, 2 * len(self.pw))
        with np.errstate(over="ignore"):
            for attr, base in (("pw", _R), ("ipw", _R_INV)):
                a = np.full(size, base, dtype=np.uint64)
                a[0] = 1
                setattr(self, attr, np.cumprod(a, dtype=np.uint64))


class ByteTokens:
    """The whitespace tokens of a text as byte spans of its UTF-8 encoding, with a 64-bit hash each."""

    __slots__ = ("buf", "starts", "ends", "hashes")

    def __init__(self, buf: bytes, starts: np.ndarray, ends: np.ndarray, hashes: np.ndarray) -> None:
        self.buf = buf
        self.starts = starts
        self.ends = ends
        self.hashes = hashes

    def __len__(self) -> int:
        return len(self.starts)

    def tokens(self, i: int, j: int) -> list[str]:
        b = self.buf
        return [
            b[s:e].decode("utf-8", "replace")
            for s, e in zip(self.starts[i:j].tolist(), self.ends[i:j].tolist(), strict=True)
        ]

    def line_of(self, i: int) -> int:
        """0-based line (count of b"\\n" before token ``i``)."""
        return self.buf.count(b"\n", 0, int(self.starts[i])) if len(self.starts) else 0


def byte_tokens(text: str, powers: BytePowers, lowercase: bool = False) -> ByteTokens:
    """Tokenise on ASCII whitespace and hash every token, all with numpy (no per-token Python work)."""
    buf = text.encode("utf-8", "replace")
    if lowercase:
        buf = buf.lower()
    arr = np.frombuffer(buf, dtype=np.uint8)
    if len(arr) == 0:
        z = np.zeros(0, dtype=np.int64)
        return ByteTokens(buf, z, z, np.zeros(0, dtype=np.uint64))
    word = (~_WS[arr]).view(np.int8)
    edges = np.diff(word, prepend=np.int8(0), append=np.int8(0))
    # edges alternate +1 (a token starts) / -1 (it ends), beginning with +1
    nz = np.flatnonzero(edges)
    starts, ends = nz[0::2], nz[1::2]
    powers.ensure(len(arr) + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(len(arr) + 1, dtype=np.uint64)
        np.cumsum(arr.astype(np.uint64) * powers.pw[: len(arr)], out=prefix[1:])
        h = (prefix[ends] - prefix[starts]) * powers.ipw[starts]
        h = _mix64(h + (ends - starts).astype(np.uint64))
    return ByteTokens(buf, starts, ends, h)
