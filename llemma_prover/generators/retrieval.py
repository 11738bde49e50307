"""``retrieval``: the tactics used on the nearest goals of extracted proof-step data (BM25, ``bm25s``).

**Index.** Every successful step of an ``extract`` output folder (``--retrieval-data DIR``; by default
its ``train`` split) is one document: the first goal before the step -- the hypotheses' *types* (their
names carry no meaning across proofs) and the conclusion, counted twice. Documents and queries are cut
into the same tokens (identifiers with their qualifiers, numbers, runs of symbols; a name the goal's
hypotheses declare becomes one placeholder token, so ``x + y`` matches ``a + b``) and ranked by Okapi
BM25 (the ``bm25s`` library).

**Scores.** The ``n`` best documents vote for their tactics, document ``j`` with weight
``w_j = exp(sharpness * (s_j / s_1 - 1))`` (``s_1``: the best BM25 score), and a tactic's score is
``log(sum of its votes / sum of all votes)``: the log of a probability over the proposed tactics
(<= 0), on the same scale as the bank's log prior and a model's log-probs, so best-first priorities
(sums of scores along a path) stay comparable and the mixture (``mixture.py``) can add them.

**Hypothesis names.** A retrieved tactic names the hypotheses of *its* goal. Each name it uses is mapped
to a hypothesis of the current goal: one with the same type (after the names mapped so far are
substituted), else the one whose type shares most tokens (at least half); a name with no counterpart is
kept. The renaming is whole-identifier only (``H`` in ``Nat.H`` or ``H0`` is untouched). Tactics are
raw strings like every generator's output: the backend validates them.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends.base import data_hooks
from ..core.errors import ConfigError, DataError
from ..core.types import Candidate
from ..data.steps import contamination_problems, coq_goal_text, iter_steps, split_hyp
from .base import TacticGenerator, dedupe

log = logging.getLogger(__name__)

__all__ = ["RetrievalGenerator", "adapt_names", "tokenize"]

#: documents whose tactics vote for one query (at least; ``4 k`` when that is more)
NEIGHBOURS = 64
#: how fast a neighbour's vote decays with its BM25 score relative to the best one
SHARPNESS = 8.0

_TOKEN_RE = re.compile(r"[A-Za-z_][\w']*(?:\.[A-Za-z_][\w']*)*|\d+|[^\sA-Za-z0-9_]+")
_IDENT_RE = re.compile(r"(?<![\w'.])[A-Za-z_][\w']*(?![\w'])(?!\.[A-Za-z_])")


def tokenize(text: str) -> list[str]:
    """Identifiers (``Nat.add_comm`` whole), numbers and runs of symbols."""
    return _TOKEN_RE.findall(text)


#: the token that stands for any name the goal's own hypotheses declare
LOCAL = "_local"


def _doc_tokens(hyps: Sequence[str], concl: str) -> list[str]:
    local: set[str] = set()
    types = []
    for h in hyps:
        names, typ = split_hyp(h)
        local.update(names)
        types.append(typ)
    toks: list[str] = []
    for typ in types:
        toks += tokenize(typ)
    c = tokenize(concl)
    return [LOCAL if t in local else t for t in toks + c + c]


@dataclass(frozen=True)
class _Step:
    tactic: str
    hyps: tuple[str, ...]


def _document(rec: Mapping[str, Any]) -> tuple[list[str], _Step] | None:
    """The tokens and the step of a successful step record (None: not one)."""
    tactic, goals = rec.get("tactic"), rec.get("goals_before")
    if rec.get("error") or not isinstance(tactic, str) or not tactic.strip() or not goals:
        return None
    first = goals[0]
    hyps = tuple(str(h) for h in first.get("hyps", []))
    toks = _doc_tokens(hyps, str(first.get("concl", "")))
    if not toks:
        return None
    return toks, _Step(tactic.strip(), hyps)


class RetrievalGenerator(TacticGenerator):
    """Tactics of the nearest goals in ``data_dir`` (an ``extract`` output folder); see the module doc."""

    name = "retrieval"

    def __init__(self, data_dir: str | Path, backend: str = "coq", *, splits: Sequence[str] = ("train",),
                 neighbours: int = NEIGHBOURS, sharpness: float = SHARPNESS) -> None:
        try:
            splits_goals = data_hooks(backend).splits_goals
        except ConfigError:
            splits_goals = False
        if not splits_goals:  # its documents are hypotheses and conclusions of extracted (Coq) goals
            raise ConfigError(f"the retrieval generator reads Coq proof-step data, not {backend!r} data")
        self.data_dir = Path(data_dir)
        self.backend = backend
        self.splits = tuple(splits)
        self.neighbours = neighbours
        self.sharpness = sharpness
        self._steps: list[_Step] = []
        self._index: Any = None
        self._vocab: set[str] = set()
        #: online learning (``learn_steps``): steps of the proofs just passed, in their own small index
        self._online_corpus: list[list[str]] = []
        self._online_steps: list[_Step] = []
        self._online_index: Any = None
        self._online_vocab: set[str] = set()

    def start(self) -> None:
        if self._index is not None:
            return
        import bm25s

        self._refuse_test_overlap()

        corpus: list[list[str]] = []
        steps: list[_Step] = []
        for rec in iter_steps(self.data_dir, self.splits):
            got = _document(rec)
            if got is not None:
                corpus.append(got[0])
                steps.append(got[1])
        if not steps:
            splits = ", ".join(self.splits)
            raise DataError(f"{self.data_dir}: no successful proof steps in split(s) {splits}")
        index = bm25s.BM25()
        index.index(corpus, show_progress=False)
        self._vocab = {t for doc in corpus for t in doc}
        self._steps, self._index = steps, index
        log.info("retrieval: %d steps indexed from %s", len(steps), self.data_dir)

    def _refuse_test_overlap(self) -> None:
        """Data whose card lists miniF2F-test problems (beyond what it is meant to hold) is refused:
        retrieving their steps would answer test problems from their own proofs."""
        import json

        card = (self.data_dir if self.data_dir.is_dir() else self.data_dir.parent) / "card.json"
        try:
            result = json.loads(card.read_text(encoding="utf-8")).get("contamination")
        except (OSError, ValueError, AttributeError):
            return  # no card (a bare steps.jsonl): nothing recorded to check
        if not isinstance(result, dict) or not result.get("checked"):
            log.warning("retrieval: %s has no miniF2F contamination result", self.data_dir)
            return
        test = [str(h.get("problem")) for h in contamination_problems(result) if h.get("split") == "test"]
        if test:
            raise DataError(f"{self.data_dir}: the data overlaps minif2f-test ({len(test)} problems: "
                            f"{', '.join(test[:5])}); retrieval would answer them from their own text")

    def close(self) -> None:
        self._index = None
        self._steps = []
        self.forget_learned()

    # -- online learning ---------------------------------------------------------------------------
    def learn_steps(self, steps: Sequence[Mapping[str, Any]]) -> None:
        """Index ``steps`` (step records) beside the data: a second, small BM25 index over the steps
        learned so far, rebuilt on the next query (a few hundred documents: milliseconds). Each index
        votes with its own neighbours, weighted relative to its own best match."""
        for rec in steps:
            got = _document(rec)
            if got is not None:
                self._online_corpus.append(got[0])
                self._online_steps.append(got[1])
                self._online_index = None

    def forget_learned(self) -> None:
        self._online_corpus, self._online_steps = [], []
        self._online_index, self._online_vocab = None, set()

    def _online(self) -> Any:
        if self._online_index is None and self._online_corpus:
            import bm25s

            index = bm25s.BM25()
            index.index(self._online_corpus, show_progress=False)
            self._online_index = index
            self._online_vocab = {t for doc in self._online_corpus for t in doc}
        return self._online_index

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        if k <= 0:
            return []
        self.start()
        hyps, concl = data_hooks(self.backend).goal_parts(goal_text)
        tokens = _doc_tokens(hyps, concl)
        n = max(self.neighbours, 4 * k)
        votes: dict[str, float] = {}
        self._vote(votes, self._index, self._steps, self._vocab, tokens, hyps, n)
        online = self._online()
        if online is not None:
            self._vote(votes, online, self._online_steps, self._online_vocab, tokens, hyps, n)
        total = sum(votes.values())
        if total <= 0:
            return []
        cands = [Candidate(tactic=t, score=math.log(v / total)) for t, v in votes.items()]
        return dedupe(cands, k)

    def _vote(self, votes: dict[str, float], index: Any, steps: Sequence[_Step], vocab: set[str],
              tokens: Sequence[str], hyps: Sequence[str], n: int) -> None:
        query = [t for t in tokens if t in vocab]
        if not query or not steps:
            return
        result = index.retrieve([query], k=min(len(steps), n), show_progress=False, n_threads=1)
        ids, scores = result.documents[0], result.scores[0]
        best = float(scores[0]) if len(scores) else 0.0
        if best <= 0:
            return
        for doc_id, s in zip(ids, scores, strict=True):
            if s <= 0:
                break
            step = steps[int(doc_id)]
            tactic = adapt_names(step.tactic, step.hyps, hyps)
            votes[tactic] = votes.get(tactic, 0.0) + math.exp(self.sharpness * (float(s) / best - 1.0))

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "data": str(self.data_dir), "splits": list(self.splits),
                "steps": len(self._steps), "online_steps": len(self._online_steps),
                "ranker": "bm25s (Okapi BM25)", "neighbours": self.neighbours, "sharpness": self.sharpness}


def _hyp_table(hyps: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for h in hyps:
        names, typ = split_hyp(h)
        out += [(n, " ".join(typ.split())) for n in names]
    return out


def _rename(text: str, mapping: dict[str, str]) -> str:
    if not mapping:
        return text
    return _IDENT_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)


def adapt_names(tactic: str, source_hyps: Sequence[str], target_hyps: Sequence[str]) -> str:
    """``tactic`` (written for a goal with ``source_hyps``) with its hypothesis names mapped to those of
    ``target_hyps``; see the module docstring."""
    src = _hyp_table(source_hyps)
    tgt = _hyp_table(target_hyps)
    if not src or not tgt:
        return tactic
    used = {m.group(0) for m in _IDENT_RE.finditer(tactic)}
    src_types = dict(src)
    # the names the tactic uses, and the names in their types (``HA : A`` needs ``A`` mapped first)
    want: set[str] = set()
    todo = [n for n in used if n in src_types]
    while todo:
        n = todo.pop()
        if n in want:
            continue
        want.add(n)
        todo += [m.group(0) for m in _IDENT_RE.finditer(src_types[n]) if m.group(0) in src_types]
    wanted = [(n, t) for n, t in src if n in want]
    if not wanted:
        return tactic
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    # types equal once the names mapped so far are substituted (in source order, repeated while that
    # maps more), then the largest token overlap
    progress = True
    while progress:
        progress = False
        for name, typ in wanted:
            if name in mapping:
                continue
            typ_m = _rename(typ, mapping)
            same = [n for n, t in tgt if n not in taken and t == typ_m]
            if same:
                pick = name if name in same else same[0]
                mapping[name] = pick
                taken.add(pick)
                progress = True
    for name, typ in wanted:
        if name in mapping:
            continue
        toks = set(tokenize(_rename(typ, mapping)))
        best, best_j = None, 0.5
        for n, t in tgt:
            if n in taken:
                continue
            other = set(tokenize(t))
            j = len(toks & other) / max(1, len(toks | other))
            if j >= best_j:
                best, best_j = n, j
        if best is not None:
            mapping[name] = best
            taken.add(best)
    mapping = {a: b for a, b in mapping.items() if a != b}
    if not mapping:
        return tactic
    return _rename(tactic, mapping)


def goal_text_of(record: dict[str, Any]) -> str:
    """The Coq goal text of a step record's ``goals_before`` (as the backend would hand it over)."""
    return coq_goal_text(record.get("goals_before") or [])
