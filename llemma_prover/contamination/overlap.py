"""N-gram overlap between benchmark text and a corpus (the Llemma paper's leakage check).

The benchmark side is small: every n-gram of every benchmark text (formal statements of each system,
informal statements, informal proofs) is hashed into a sorted array. The corpus side is streamed
piece by piece (constant memory in its size); for each batch of tokens all window hashes are computed
at once with numpy and looked up with ``searchsorted``, and each hash match is verified token by token.

Per problem the result gives: hits (corpus windows that equal one of its n-grams), how many of its
n-grams were seen, the longest match (tokens; overlapping consecutive hits are merged), and where.
"""

from __future__ import annotations

import bisect
import logging
import os
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError
from .corpus import Piece, read_corpus
from .ngrams import (
    BytePowers,
    ByteTokens,
    Tokenizer,
    TokenValues,
    WhitespaceTokenizer,
    byte_tokens,
    full_windows,
    window_hashes,
)

log = logging.getLogger(__name__)

DEFAULT_N = 30
SYSTEMS = ("coq", "lean4", "isabelle")
FIELDS = ("statement", "informal_statement", "informal_proof")


@dataclass(frozen=True)
class BenchItem:
    problem: str
    split: str
    #: "coq:statement", "lean4:statement", "isabelle:statement", "informal_statement", "informal_proof"
    field: str
    text: str


def benchmark_items(
    data_dir: str | os.PathLike[str],
    *,
    splits: Sequence[str] = ("test", "valid"),
    systems: Sequence[str] = SYSTEMS,
    fields: Sequence[str] = FIELDS,
) -> list[BenchItem]:
    """The benchmark texts, one item per (problem, field); informal texts once per problem."""
    from ..data.minif2f import load_split

    items: list[BenchItem] = []
    seen: set[tuple[str, str]] = set()
    for split in splits:
        for system in systems:
            ds = load_split(data_dir, system, split)
            for th in ds.theorems:
                key = th.name.lower()
                for f in fields:
                    if f == "statement":
                        text, label = th.statement, f"{system}:statement"
                    else:
                        text, label = getattr(th, f), f
                    if not text or (key, label) in seen:
                        continue
                    seen.add((key, label))
                    items.append(BenchItem(th.name, split, label, text))
    return items


@dataclass
class Location:
    source: str
    line: int
    field: str
    #: length of the match in tokens
    length: int
    snippet: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "line": self.line,
            "field": self.field,
            "length": self.length,
            "snippet": self.snippet,
        }


@dataclass
class ProblemResult:
    problem: str
    split: str
    hits: int = 0
    ngrams_total: int = 0
    ngrams_matched: int = 0
    longest: int = 0
    fields: set[str] = field(default_factory=set)
    where: list[Location] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "problem": self.problem,
            "split": self.split,
            "hits": self.hits,
            "longest": self.longest,
            "ngrams_matched": self.ngrams_matched,
            "ngrams_total": self.ngrams_total,
            "fields": sorted(self.fields),
            "where": [w.to_dict() for w in self.where],
        }


@dataclass(frozen=True)
class ScanResult:
    n: int
    tokenizer: str
    problems: tuple[ProblemResult, ...]
    corpus_bytes: int
    corpus_tokens: int
    documents: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.corpus_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def contaminated(self) -> list[ProblemResult]:
        return sorted((p for p in self.problems if p.hits), key=lambda p: (-p.longest, -p.hits, p.problem))


_BITMAP_BITS = 22


def _bitmap_slot(h: np.ndarray) -> np.ndarray:
    return ((h >> np.uint64(40)) & np.uint64((1 << _BITMAP_BITS) - 1)).astype(np.intp)


class Encoded:
    """One corpus piece as token values (0 = not a benchmark token) with access to its tokens/lines."""

    __slots__ = ("values", "_bt", "_toks", "_piece", "_tokenizer")

    def __init__(
        self,
        values: np.ndarray,
        piece: Piece,
        bt: ByteTokens | None = None,
        toks: list[Hashable] | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.values = values
        self._bt = bt
        self._toks = toks
        self._piece = piece
        self._tokenizer = tokenizer

    def tokens(self, i: int, j: int) -> list[Hashable]:
        if self._bt is not None:
            return list(self._bt.tokens(i, j))
        assert self._toks is not None
        return self._toks[i:j]

    def line(self, i: int) -> int:
        p = self._piece
        if not p.text_lines:
            return p.line
        if self._bt is not None:
            return p.line + self._bt.line_of(i)
        # generic tokenizers: count tokens line by line (exact for whitespace-like tokenizers)
        assert self._tokenizer is not None
        count = 0
        for k, ln in enumerate(p.text.splitlines()):
            count += len(self._tokenizer.tokenize(ln))
            if count > i:
                return p.line + k
        return p.line

    @property
    def source(self) -> str:
        return self._piece.source


class NgramIndex:
    """Hashed n-grams of the benchmark items (the small side).

    With the whitespace tokenizer both sides are tokenised and hashed on bytes with numpy
    (``byte_tokens``); any other tokenizer goes through ``tokenize`` and a token -> value table.
    """

    def __init__(
        self, items: Sequence[BenchItem], tokenizer: Tokenizer, n: int = DEFAULT_N, seed: int = 0
    ) -> None:
        if n < 1:
            raise ConfigError(f"n-gram size must be >= 1, got {n}")
        self.items = list(items)
        self.n = n
        self.tokenizer = tokenizer
        self.powers = BytePowers()
        self.fast = isinstance(tokenizer, WhitespaceTokenizer)
        self._lower = bool(getattr(tokenizer, "lowercase", False))
        vals: list[np.ndarray]
        if self.fast:
            bts = [byte_tokens(it.text, self.powers, self._lower) for it in self.items]
            self.tokens: list[list[Hashable]] = [list(bt.tokens(0, len(bt))) for bt in bts]
            vals = [bt.hashes | np.uint64(1) for bt in bts]
            self.values: TokenValues | None = None
        else:
            self.tokens = tokenizer.tokenize_many([it.text for it in self.items])
            self.values = TokenValues((t for toks in self.tokens if len(toks) >= n for t in toks), seed=seed)
            vals = [self.values.values(toks) for toks in self.tokens]
        hs, owners, positions = [], [], []
        for i, v in enumerate(vals):
            h = window_hashes(v, n)
            hs.append(h)
            owners.append(np.full(len(h), i, dtype=np.int32))
            positions.append(np.arange(len(h), dtype=np.int32))
        allh = np.concatenate(hs) if hs else np.zeros(0, dtype=np.uint64)
        order = np.argsort(allh, kind="stable")
        self.hashes = allh[order]
        self.owner = (np.concatenate(owners) if owners else np.zeros(0, np.int32))[order]
        self.pos = (np.concatenate(positions) if positions else np.zeros(0, np.int32))[order]
        self.unique = np.unique(self.hashes)
        # a bitmap over 22 bits of the hash: a cheap first test before the exact binary search
        self.bitmap = np.zeros(1 << _BITMAP_BITS, dtype=bool)
        self.bitmap[_bitmap_slot(self.unique)] = True

    def lookup(self, h: np.ndarray) -> np.ndarray:
        """Indices into ``h`` of the hashes that are benchmark n-gram hashes."""
        cand = np.flatnonzero(self.bitmap[_bitmap_slot(h)])
        if len(cand) == 0 or len(self.unique) == 0:
            return cand
        hc = h[cand]
        idx = np.minimum(np.searchsorted(self.unique, hc), len(self.unique) - 1)
        found: np.ndarray = cand[self.unique[idx] == hc]
        return found

    @property
    def size(self) -> int:
        return len(self.hashes)

    def encode(self, piece: Piece) -> Encoded:
        if self.fast:
            # every token keeps its own hash: windows with a non-benchmark token simply do not match
            bt = byte_tokens(piece.text, self.powers, self._lower)
            return Encoded(bt.hashes | np.uint64(1), piece, bt=bt)
        assert self.values is not None
        toks = self.tokenizer.tokenize(piece.text)
        return Encoded(self.values.values(toks), piece, toks=toks, tokenizer=self.tokenizer)

    def matches(self, h: int) -> Iterable[tuple[int, int]]:
        lo = int(np.searchsorted(self.hashes, h, side="left"))
        hi = int(np.searchsorted(self.hashes, h, side="right"))
        for k in range(lo, hi):
            yield int(self.owner[k]), int(self.pos[k])


@dataclass
class _Segment:
    start: int  # global token index of values[0]
    values: np.ndarray
    enc: Encoded | None  # None: a document separator
    offset: int = 0  # index in ``enc`` of values[0]


_SEPARATOR = np.zeros(1, dtype=np.uint64)


class Scanner:
    """Streams corpus pieces through an ``NgramIndex``; ``result()`` when done.

    Pieces are encoded (tokens -> values) one by one and hashed in batches of about ``batch_tokens``;
    the last ``n - 1`` values of a batch are carried into the next so that windows span batches.
    """

    def __init__(self, index: NgramIndex, *, max_locations: int = 5, batch_tokens: int = 1 << 17) -> None:
        self.index = index
        self.n = index.n
        self.max_locations = max_locations
        self.batch_tokens = batch_tokens
        probs: dict[str, ProblemResult] = {}
        self.item_problem: list[ProblemResult] = []
        for it, toks in zip(index.items, index.tokens, strict=True):
            pr = probs.setdefault(it.problem.lower(), ProblemResult(it.problem, it.split))
            pr.ngrams_total += max(0, len(toks) - self.n + 1)
            self.item_problem.append(pr)
        self.problems = list(probs.values())
        self.seen_ngrams = [np.zeros(max(0, len(t) - self.n + 1), dtype=bool) for t in index.tokens]
        self._segments: list[_Segment] = []
        self._seg_starts: list[int] = []
        self._end = 0  # global index after the last value fed
        self._batch = 0  # values fed since the last flush
        self._done_before = 0  # windows starting before this global index were already checked
        self._prev_g = -2
        self._prev: dict[tuple[int, int], tuple[int, Location | None]] = {}
        self.bytes = 0
        self.tokens_seen = 0
        self.documents = 0
        #: hash matches rejected by the token-by-token check
        self.collisions = 0

    # -- feeding ---------------------------------------------------------------------------
    def _append(self, seg: _Segment) -> None:
        self._segments.append(seg)
        self._seg_starts.append(seg.start)
        self._end += len(seg.values)
        self._batch += len(seg.values)

    def feed(self, piece: Piece) -> None:
        if piece.new_doc:
            self.documents += 1
            self._append(_Segment(self._end, _SEPARATOR, None))
        enc = self.index.encode(piece)
        self._append(_Segment(self._end, enc.values, enc))
        self.bytes += piece.nbytes
        self.tokens_seen += len(enc.values)
        if self._batch >= self.batch_tokens:
            self.flush(keep_tail=True)

    def flush(self, keep_tail: bool = False) -> None:
        n = self.n
        if self._segments:
            base = self._segments[0].start
            vals = np.concatenate([s.values for s in self._segments])
            h = window_hashes(vals, n)
            found = self.index.lookup(h)
            if len(found):
                found = found[found + base >= self._done_before]
                # a hit must not contain a 0 (an unknown token of a generic tokenizer, or a separator)
                found = (
                    found[np.isin(found, full_windows(vals, n), assume_unique=True)]
                    if (vals == 0).any()
                    else found
                )
                for s_, hv in zip(found.tolist(), h[found].tolist(), strict=True):
                    self._hit(base + s_, hv)
        self._done_before = max(self._done_before, self._end - n + 1)
        self._batch = 0
        if not keep_tail:
            self._segments, self._seg_starts = [], []
            return
        # keep the last n-1 values (as slices of their segments) for windows that span batches
        cut = self._end - (n - 1)
        kept: list[_Segment] = []
        for seg in self._segments:
            seg_end = seg.start + len(seg.values)
            if seg_end <= cut:
                continue
            skip = max(0, cut - seg.start)
            kept.append(_Segment(seg.start + skip, seg.values[skip:], seg.enc, seg.offset + skip))
        self._segments = kept
        self._seg_starts = [s.start for s in kept]

    # -- hits ------------------------------------------------------------------------------
    def _window_tokens(self, g: int) -> tuple[list[Hashable], _Segment, int]:
        k = bisect.bisect_right(self._seg_starts, g) - 1
        seg = self._segments[k]
        first, first_i = seg, seg.offset + (g - seg.start)
        out: list[Hashable] = []
        need = self.n
        while need > 0:
            i = seg.offset + (g - seg.start) if not out else seg.offset
            avail = len(seg.values) - (i - seg.offset)
            take = min(need, avail)
            if seg.enc is not None:
                out.extend(seg.enc.tokens(i, i + take))
            need -= take
            k += 1
            if need > 0:
                seg = self._segments[k]
        return out, first, first_i

    def _hit(self, g: int, hv: int) -> None:
        n = self.n
        window, seg, first_i = self._window_tokens(g)
        contiguous = g == self._prev_g + 1
        cur: dict[tuple[int, int], tuple[int, Location | None]] = {}
        problems_hit: set[int] = set()
        for item, pos in self.index.matches(hv):
            if self.index.tokens[item][pos : pos + n] != window:
                self.collisions += 1  # a hash collision: never reported
                continue
            pr = self.item_problem[item]
            if id(pr) not in problems_hit:
                problems_hit.add(id(pr))
                pr.hits += 1
            field_ = self.index.items[item].field
            pr.fields.add(field_)
            if not self.seen_ngrams[item][pos]:
                self.seen_ngrams[item][pos] = True
                pr.ngrams_matched += 1
            prev = self._prev.get((item, pos - 1)) if contiguous else None
            if prev is not None:
                run, loc = prev[0] + 1, prev[1]
            else:
                run, loc = 1, None
                if len(pr.where) < self.max_locations:
                    assert seg.enc is not None
                    loc = Location(seg.enc.source, seg.enc.line(first_i), field_, n)
                    pr.where.append(loc)
            length = n + run - 1
            if length > pr.longest:
                pr.longest = length
                if loc is None:  # the list is full: the longest match replaces the shortest entry
                    assert seg.enc is not None
                    shortest = min(range(len(pr.where)), key=lambda k: pr.where[k].length)
                    loc = Location(seg.enc.source, seg.enc.line(first_i), field_, length)
                    pr.where[shortest] = loc
            if loc is not None and length >= loc.length:
                loc.length = length
                first = pos - run + 1
                loc.snippet = _snip(
                    self.index.tokenizer.detokenize(self.index.tokens[item][first : first + length])
                )
            cur[(item, pos)] = (run, loc)
        self._prev = cur
        self._prev_g = g

    def result(self, seconds: float) -> ScanResult:
        self.flush(keep_tail=False)
        for pr in self.problems:
            pr.where.sort(key=lambda w: -w.length)
        return ScanResult(
            self.n,
            self.index.tokenizer.name,
            tuple(self.problems),
            self.bytes,
            self.tokens_seen,
            self.documents,
            seconds,
        )


def _snip(text: str, width: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def scan(
    index: NgramIndex,
    corpus: Sequence[str | os.PathLike[str]],
    *,
    text_field: str = "text",
    dataset_split: str | None = None,
    suffixes: tuple[str, ...] = (),
    max_locations: int = 5,
    chunk_bytes: int = 1 << 20,
    batch_tokens: int = 1 << 17,
    progress: Callable[[int], None] | None = None,
) -> ScanResult:
    """Scan every corpus path; ``progress(bytes)`` is called after each piece (the CLI draws a bar).

    Memory is bounded by ``chunk_bytes`` (text read at once) and ``batch_tokens`` (tokens hashed at once),
    whatever the corpus size."""
    sc = Scanner(index, max_locations=max_locations, batch_tokens=batch_tokens)
    t0 = time.perf_counter()
    for piece in read_corpus(
        [Path(p) for p in corpus],
        text_field=text_field,
        chunk_bytes=chunk_bytes,
        dataset_split=dataset_split,
        suffixes=suffixes,
    ):
        sc.feed(piece)
        if progress is not None:
            progress(piece.nbytes)
    res = sc.result(time.perf_counter() - t0)
    log.info(
        "scanned %.1f MB (%d tokens, %d documents) in %.1f s: %.1f MB/s",
        res.corpus_bytes / 1e6,
        res.corpus_tokens,
        res.documents,
        res.seconds,
        res.mb_per_s,
    )
    return res


def naive_scan(items: Sequence[BenchItem], texts: Iterable[str], n: int = DEFAULT_N) -> dict[str, int]:
    """Reference implementation (for tests and the benchmark): a set of n-gram tuples, every corpus
    window looked up one by one. Returns hits per problem (same counting as ``scan``)."""
    tok = WhitespaceTokenizer()
    grams: dict[tuple[Hashable, ...], set[str]] = {}
    for it in items:
        toks = tok.tokenize(it.text)
        for i in range(len(toks) - n + 1):
            grams.setdefault(tuple(toks[i : i + n]), set()).add(it.problem)
    hits: dict[str, int] = {}
    for text in texts:
        toks = tok.tokenize(text)
        for i in range(len(toks) - n + 1):
            probs = grams.get(tuple(toks[i : i + n]))
            if probs:
                for p in probs:
                    hits[p] = hits.get(p, 0) + 1
    return hits
