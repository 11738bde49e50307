"""Tokenizers and vectorised n-gram hashing for the contamination check.

Every token is mapped to a random 64-bit value (per run, from a seeded generator); a window of ``n``
tokens hashes to ``sum(v[i+j] * B**(n-1-j))`` modulo 2**64, computed with numpy for a whole chunk at
once. Tokens that never occur in the benchmark map to 0, and a window that contains a 0 is skipped
(it cannot match), which also keeps windows from spanning two documents (a 0 separates them).
Every hash match is then verified token by token, so a collision can never report a false hit.
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
    """Tokens are maximal runs of non-whitespace (``str.split``); optionally lower-cased."""

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase
        self.name = "whitespace" + ("+lower" if lowercase else "")

    def tokenize(self, text: str) -> list[Hashable]:
        return (text.lower() if self.lowercase else text).split()  # type: ignore[return-value]

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
        return str(self.tok.decode(list(tokens)))


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
