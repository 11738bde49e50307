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
from .ngrams import Tokenizer, TokenValues, full_windows, window_hashes

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


class NgramIndex:
    """Hashed n-grams of the benchmark items (the small side)."""

    def __init__(
        self, items: Sequence[BenchItem], tokenizer: Tokenizer, n: int = DEFAULT_N, seed: int = 0
    ) -> None:
        if n < 1:
            raise ConfigError(f"n-gram size must be >= 1, got {n}")
        self.items = list(items)
        self.n = n
        self.tokenizer = tokenizer
        self.tokens: list[list[Hashable]] = tokenizer.tokenize_many([it.text for it in self.items])
        self.values = TokenValues((t for toks in self.tokens if len(toks) >= n for t in toks), seed=seed)
        hs, owners, positions = [], [], []
        for i, toks in enumerate(self.tokens):
            h = window_hashes(self.values.values(toks), n)
            hs.append(h)
            owners.append(np.full(len(h), i, dtype=np.int32))
            positions.append(np.arange(len(h), dtype=np.int32))
        allh = np.concatenate(hs) if hs else np.zeros(0, dtype=np.uint64)
        order = np.argsort(allh, kind="stable")
        self.hashes = allh[order]
        self.owner = (np.concatenate(owners) if owners else np.zeros(0, np.int32))[order]
        self.pos = (np.concatenate(positions) if positions else np.zeros(0, np.int32))[order]
        self.unique = np.unique(self.hashes)

    @property
    def size(self) -> int:
        return len(self.hashes)

    def matches(self, h: int) -> Iterable[tuple[int, int]]:
        lo = int(np.searchsorted(self.hashes, h, side="left"))
        hi = int(np.searchsorted(self.hashes, h, side="right"))
        for k in range(lo, hi):
            yield int(self.owner[k]), int(self.pos[k])


_SEP = object()  # document separator token: never in the vocabulary, so its value is 0


class Scanner:
    """Streams corpus pieces through an ``NgramIndex``; ``result()`` when done."""

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
        # batch state
        self._tokens: list[Hashable] = []
        self._marks: list[int] = []  # token index where each piece starts
        self._pieces: list[Piece] = []
        self._offset = 0  # global index of self._tokens[0]
        # consecutive-hit tracking: (item, pos) -> (run length, Location or None) for window _prev_g
        self._prev_g = -2
        self._prev: dict[tuple[int, int], tuple[int, Location | None, ProblemResult]] = {}
        self.bytes = 0
        self.tokens_seen = 0
        self.documents = 0

    # -- feeding ---------------------------------------------------------------------------
    def feed(self, piece: Piece) -> None:
        toks = self.index.tokenizer.tokenize(piece.text)
        if piece.new_doc:
            self.documents += 1
            self._tokens.append(_SEP)
        self._marks.append(len(self._tokens))
        self._pieces.append(piece)
        self._tokens.extend(toks)
        self.bytes += piece.nbytes
        self.tokens_seen += len(toks)
        if len(self._tokens) >= self.batch_tokens:
            self.flush(keep_tail=True)

    def flush(self, keep_tail: bool = False) -> None:
        n = self.n
        toks = self._tokens
        if len(toks) >= n:
            vals = self.index.values.values(toks)
            starts = full_windows(vals, n)
            if len(starts):
                h = window_hashes(vals, n)[starts]
                uniq = self.index.unique
                if len(uniq) == 0:
                    found = np.zeros(len(h), dtype=bool)
                else:
                    idx = np.minimum(np.searchsorted(uniq, h), len(uniq) - 1)
                    found = uniq[idx] == h
                for s, hv in zip(starts[found].tolist(), h[found].tolist(), strict=True):
                    self._hit(s, hv)
        if keep_tail and len(toks) > n - 1:
            cut = len(toks) - (n - 1)
            # keep the last n-1 tokens (and the piece they belong to) so windows span batches
            k = bisect.bisect_right(self._marks, cut) - 1
            keep_piece = self._pieces[k] if k >= 0 else None
            self._tokens = toks[cut:]
            self._offset += cut
            self._marks = [0] if keep_piece is not None else []
            self._pieces = [keep_piece] if keep_piece is not None else []
            if keep_piece is not None and k >= 0:
                # the kept tokens start inside piece k: its line offset is approximate from here on
                self._pieces = [
                    Piece(keep_piece.source, keep_piece.line, "", False, 0, keep_piece.text_lines)
                ]
        elif not keep_tail:
            self._offset += len(toks)
            self._tokens, self._marks, self._pieces = [], [], []

    # -- hits ------------------------------------------------------------------------------
    def _location(self, start: int, item: int, length: int) -> Location:
        k = bisect.bisect_right(self._marks, start) - 1
        piece = self._pieces[k] if k >= 0 else None
        if piece is None:
            return Location("?", 0, self.index.items[item].field, length)
        line = piece.line
        if piece.text and piece.text_lines:
            # tokens before `start` inside the piece -> the line they end on (exact for whitespace tokens)
            before = start - self._marks[k]
            count = 0
            for i, ln in enumerate(piece.text.splitlines()):
                count += len(self.index.tokenizer.tokenize(ln))
                if count > before:
                    line = piece.line + i
                    break
        return Location(piece.source, line, self.index.items[item].field, length)

    def _hit(self, start: int, hv: int) -> None:
        n = self.n
        g = self._offset + start
        window = self._tokens[start : start + n]
        contiguous = g == self._prev_g + 1
        cur: dict[tuple[int, int], tuple[int, Location | None, ProblemResult]] = {}
        problems_hit: set[int] = set()
        for item, pos in self.index.matches(hv):
            if self.index.tokens[item][pos : pos + n] != window:
                continue  # a hash collision: never reported
            pr = self.item_problem[item]
            if id(pr) not in problems_hit:
                problems_hit.add(id(pr))
                pr.hits += 1
            pr.fields.add(self.index.items[item].field)
            if not self.seen_ngrams[item][pos]:
                self.seen_ngrams[item][pos] = True
                pr.ngrams_matched += 1
            prev = self._prev.get((item, pos - 1)) if contiguous else None
            if prev is not None:
                run, loc, _ = prev
                run += 1
            else:
                run, loc = 1, None
                if len(pr.where) < self.max_locations:
                    loc = self._location(start, item, n)
                    pr.where.append(loc)
            length = n + run - 1
            if loc is not None:
                loc.length = length
                if not loc.snippet or length > n:
                    first = pos - run + 1
                    loc.snippet = _snip(
                        self.index.tokenizer.detokenize(self.index.tokens[item][first : first + length])
                    )
            if length > pr.longest:
                pr.longest = length
                if loc is None and pr.where:
                    # keep the longest match visible even when the location list is full
                    pr.where[-1] = self._location(start, item, length)
                    pr.where[-1].snippet = _snip(
                        self.index.tokenizer.detokenize(
                            self.index.tokens[item][pos - run + 1 : pos + 1 + n - 1]
                        )
                    )
                    loc = pr.where[-1]
            cur[(item, pos)] = (run, loc, pr)
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
    grams: dict[tuple[str, ...], set[str]] = {}
    for it in items:
        toks = it.text.split()
        for i in range(len(toks) - n + 1):
            grams.setdefault(tuple(toks[i : i + n]), set()).add(it.problem)
    hits: dict[str, int] = {}
    for text in texts:
        toks = text.split()
        for i in range(len(toks) - n + 1):
            probs = grams.get(tuple(toks[i : i + n]))
            if probs:
                for p in probs:
                    hits[p] = hits.get(p, 0) + 1
    return hits
