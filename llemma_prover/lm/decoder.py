"""``Decoder``: batched beam search / sampling of tactics after a fixed prompt prefix.

The ``llemma`` generator (``generators.llemma``) and the model server (``serving``) both decode with it,
so a server and a worker-local generator give the same candidates for the same input:

* **beam search** when ``temperature == 0``: ``k`` beams, ``k`` hypotheses returned (``num_beams = k``,
  ``num_return_sequences = k``); a hypothesis ends when the model writes the stop marker ``"\\n---"`` (or
  EOS) and the request ends once ``k`` hypotheses have ended (``early_stopping=True`` in ``generate``'s
  terms); beams still open after ``max_new_tokens`` are returned as they are;
* **sampling** when ``temperature > 0``: ``k`` independent samples per goal, from a random generator
  seeded by ``seed`` and the goal's tokens, so a result does not depend on which other goals
  share the batch.

The score of a candidate is the mean log-probability (under the model, at temperature 1) of the tokens
of the tactic itself: the stop marker, EOS and padding are excluded. Hypotheses are ranked by that score.

Several goals are decoded as one batch. The few-shot prefix is the same for every goal of a backend, so
its key/value cache is computed once (``prefix_cache=True``). For Llama-like models one copy of it is
shared by every row of a batch through the attention function of ``lm.attention``, checked once
against a full forward pass; otherwise the cache is copied into each row. Goals are left-padded *after*
the prefix, with position ids that skip the padding, so each row sees exactly the positions it would
see alone.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.errors import GeneratorError
from ..core.types import Candidate
from .attention import SHARED_PREFIX_ATTENTION, cache_tensors, register_shared_prefix_attention

__all__ = ["DecodeRequest", "Decoder", "QueryPrompt"]

log = logging.getLogger(__name__)

#: tokens decoded at the end of a hypothesis to look for the stop marker (it spans at most a few)
_STOP_TAIL_TOKENS = 8


class QueryPrompt(Protocol):
    """What the decoder needs of a prompt (``generators.prompts.FewShotPrompt`` is one): the text
    that follows the shared prefix for a goal."""

    def query(self, state: str) -> str: ...


@dataclass(frozen=True)
class DecodeRequest:
    """One goal to decode: the token ids that follow the shared prefix, and how many candidates."""

    query_ids: tuple[int, ...]
    k: int


@dataclass
class _Hyp:
    """One open hypothesis (a beam, or a sample)."""

    tokens: list[int]
    logps: list[float]
    cum: float = 0.0


@dataclass
class _ReqState:
    req: DecodeRequest
    rows: list[int]  # rows of the live batch that belong to this request
    hyps: list[_Hyp]
    finished: list[tuple[str, float]] = field(default_factory=list)
    done: bool = False
    rng: Any = None


class Decoder:
    """Batched beam search / sampling of tactics after a fixed prompt prefix.

    ``model``/``tokenizer`` are a loaded ``transformers`` causal LM; ``prefix`` is the few-shot text.
    Thread-compatible, not thread-safe: one caller at a time (the model server serialises batches).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prefix: str,
        *,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        seed: int = 0,
        prefix_cache: bool = True,
        stop: str,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.prefix = prefix
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.use_prefix_cache = prefix_cache
        #: how the prefix cache is reused: "shared" (one copy, broadcast in attention), "copy" (a copy
        #: per row; for models the shared attention does not fit), or "none"; settled by ``prefix_kv``
        self.prefix_mode = "pending" if prefix_cache else "none"
        self._prefix_layers: list[tuple[Any, Any]] | None = None
        self._stop_tokens: list[bool] | None = None
        self.stop = stop
        self.prefix_ids: list[int] = list(tokenizer(prefix, add_special_tokens=True)["input_ids"])
        self.eos_id: int | None = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        self.pad_id: int = int(pad) if pad is not None else 0
        self.max_positions: int = int(getattr(model.config, "max_position_embeddings", 4096) or 4096)
        self._prefix_cache: Any = None
        # transformers 5.x names the cache argument ``cache``; 4.x ``past_key_values``
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = "logits_to_keep" if "logits_to_keep" in params else None
        #: counters for benchmarks and logs
        self.stats = {"batches": 0, "rows": 0, "generated_tokens": 0, "prefill_tokens": 0}

    # -- prompts --------------------------------------------------------------------------------

    def encode_query(self, query: str) -> tuple[int, ...]:
        """Token ids of ``query`` as they follow the prefix in the joint tokenization."""
        ids = list(self.tokenizer(self.prefix + query, add_special_tokens=True)["input_ids"])
        n = len(self.prefix_ids)
        if ids[:n] == self.prefix_ids:
            return tuple(ids[n:])
        return tuple(self.tokenizer(query, add_special_tokens=False)["input_ids"])

    def request(self, prompt: QueryPrompt, goal: str, k: int) -> DecodeRequest:
        """The request for ``goal``; the goal is cut from the front if the prompt would not fit."""
        budget = self.max_positions - self.max_new_tokens - len(self.prefix_ids)
        if budget < 16:
            raise GeneratorError(
                f"the few-shot prefix ({len(self.prefix_ids)} tokens) leaves no room for a goal within "
                f"{self.max_positions} positions and {self.max_new_tokens} new tokens"
            )
        state = goal
        ids = self.encode_query(prompt.query(state))
        for _ in range(6):
            if len(ids) <= budget:
                break
            keep = max(1, int(len(state) * budget / len(ids) * 0.9))
            state = "..." + state[-keep:]
            ids = self.encode_query(prompt.query(state))
        if len(ids) > budget:
            ids = ids[-budget:]
        return DecodeRequest(query_ids=ids, k=k)

    # -- the cache of the shared prefix -------------------------------------------------------------

    def _forward(self, cache: Any = None, **kwargs: Any) -> tuple[Any, Any]:
        """One forward pass; returns (last-position logits, the updated cache)."""
        if cache is not None:
            kwargs[self._cache_kw] = cache
        if self._keep_kw:
            kwargs[self._keep_kw] = 1  # only the last position's logits are needed
        out = self.model(use_cache=True, return_dict=True, **kwargs)
        new_cache = getattr(out, "cache", None)
        if new_cache is None:
            new_cache = out.past_key_values
        return out.logits[:, -1, :].float(), new_cache

    def prefix_kv(self) -> Any:
        """The key/value cache of the prefix (batch 1), computed once; settles ``prefix_mode``."""
        import torch

        if self._prefix_cache is None:
            ids = torch.tensor([self.prefix_ids], device=self.model.device)
            with torch.inference_mode():
                _, self._prefix_cache = self._forward(input_ids=ids, attention_mask=torch.ones_like(ids))
                self.stats["prefill_tokens"] += len(self.prefix_ids)
                if self.prefix_mode == "pending":
                    self.prefix_mode = "shared" if self._try_shared_prefix() else "copy"
        return self._prefix_cache

    def _try_shared_prefix(self) -> bool:
        """Switch the model to the shared-prefix attention if it gives the same logits as a full pass."""
        import torch

        if not register_shared_prefix_attention():
            return False
        config = self.model.config
        before = getattr(config, "_attn_implementation", None)
        probe = [self.pad_id if self.pad_id is not None else 0, *self.prefix_ids[-3:]]
        dev = self.model.device
        full_ids = torch.tensor([self.prefix_ids + probe], device=dev)
        reference, _ = self._forward(input_ids=full_ids, attention_mask=torch.ones_like(full_ids))
        try:
            self.model.config._attn_implementation = SHARED_PREFIX_ATTENTION
            layers = cache_tensors(self._prefix_cache)
            p = len(self.prefix_ids)
            ids = torch.tensor([probe], device=dev)
            got, _ = self._forward(
                input_ids=ids, attention_mask=torch.ones_like(ids),
                position_ids=torch.arange(p, p + len(probe), device=dev).unsqueeze(0), llemma_prefix=layers,
            )
        except Exception as exc:  # noqa: BLE001 - any failure means: this model keeps the copy mode
            log.info("shared-prefix attention unavailable for this model (%s); copying the prefix cache", exc)
            self.model.config._attn_implementation = before
            return False
        # a wrong mask or position moves log-probs by whole units; bf16 rounding by a few hundredths
        tol = 1e-3 if self.model.dtype == torch.float32 else 0.15
        diff = float((torch.log_softmax(got, -1) - torch.log_softmax(reference, -1)).abs().max())
        if not diff <= tol:
            log.warning("shared-prefix attention differs from a full pass by %.3g; copying the cache", diff)
            self.model.config._attn_implementation = before
            return False
        self._prefix_layers = layers
        return True

    # -- decoding ---------------------------------------------------------------------------------

    def decode(self, requests: Sequence[DecodeRequest]) -> list[list[Candidate]]:
        """Candidates for every request (best first, raw tactics, not yet de-duplicated)."""
        import torch

        if not requests:
            return []
        with torch.inference_mode():
            return self._decode(list(requests))

    def _rng_for(self, req: DecodeRequest) -> Any:
        import torch

        h = hashlib.sha256(repr((self.seed, req.query_ids)).encode()).digest()
        g = torch.Generator(device=self.model.device)
        g.manual_seed(int.from_bytes(h[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF)
        return g

    def _decode(self, requests: list[DecodeRequest]) -> list[list[Candidate]]:
        import torch

        dev = self.model.device
        n = len(requests)
        cached = self.use_prefix_cache
        if cached:
            self.prefix_kv()
        shared = self.prefix_mode == "shared"
        head = [] if cached else self.prefix_ids
        rows_ids = [head + list(r.query_ids) for r in requests]
        width = max(len(x) for x in rows_ids)
        p = len(self.prefix_ids) if cached else 0
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long, device=dev)
        qmask = torch.zeros((n, width), dtype=torch.long, device=dev)
        for i, ids in enumerate(rows_ids):
            input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long, device=dev)
            qmask[i, width - len(ids):] = 1
        positions = (p + qmask.cumsum(-1) - 1).clamp(min=p)
        cache: Any = None
        extra: dict[str, Any] = {}
        if shared:  # rows hold only their own tokens; the prefix is attended to from one shared copy
            attn = qmask
            extra["llemma_prefix"] = self._prefix_layers
        else:
            attn = torch.cat([torch.ones((n, p), dtype=torch.long, device=dev), qmask], dim=1)
            if cached:
                cache = copy.deepcopy(self.prefix_kv())
                if n > 1:
                    cache.batch_repeat_interleave(n)
        raw, cache = self._forward(
            cache, input_ids=input_ids, attention_mask=attn, position_ids=positions, **extra
        )
        self.stats["batches"] += 1
        self.stats["prefill_tokens"] += int(qmask.sum())
        logp = torch.log_softmax(raw, dim=-1)
        last_pos = positions[:, -1]

        states = [_ReqState(req=r, rows=[i], hyps=[_Hyp([], [])]) for i, r in enumerate(requests)]
        sampling = self.temperature > 0
        if sampling:
            for st in states:
                st.rng = self._rng_for(st.req)
                st.hyps = [_Hyp([], []) for _ in range(st.req.k)]
                st.rows = [st.rows[0]] * st.req.k
            logits = raw
        else:
            logits = None

        for step in range(self.max_new_tokens):
            src: list[int] = []
            nxt: list[int] = []
            last = step == self.max_new_tokens - 1
            for st in states:
                if st.done:
                    continue
                if sampling:
                    assert logits is not None
                    self._sample_step(st, logits, logp, last, src, nxt)
                else:
                    self._beam_step(st, logp, last, src, nxt)
            if not src:
                break
            self.stats["generated_tokens"] += len(src)
            idx = torch.tensor(src, dtype=torch.long, device=dev)
            cache.reorder_cache(idx)
            ones = torch.ones((len(src), 1), dtype=torch.long, device=dev)
            attn = torch.cat([attn.index_select(0, idx), ones], dim=1)
            last_pos = last_pos.index_select(0, idx) + 1
            raw, cache = self._forward(
                cache,
                input_ids=torch.tensor(nxt, dtype=torch.long, device=dev).unsqueeze(1),
                attention_mask=attn,
                position_ids=last_pos.unsqueeze(1),
                **extra,
            )
            logp = torch.log_softmax(raw, dim=-1)
            logits = raw if sampling else None
        self.stats["rows"] += sum(len(st.hyps) for st in states)
        results = []
        for st in states:
            if not st.done:  # ran out of new tokens on the last step with nothing left
                for h in st.hyps:
                    self._finish(st, h, reason="length")
            ranked = sorted(st.finished, key=lambda x: -x[1])
            results.append([Candidate(tactic=t, score=s) for t, s in ranked])
        return results

    # one step of beam search for one request: pick the next beams, collect ended hypotheses
    def _beam_step(self, st: _ReqState, logp: Any, last: bool, src: list[int], nxt: list[int]) -> None:
        import torch

        k = st.req.k
        rows = torch.tensor(st.rows, dtype=torch.long, device=logp.device)
        cum = torch.tensor([h.cum for h in st.hyps], dtype=logp.dtype, device=logp.device)
        step_lp = logp.index_select(0, rows)
        total = (cum.unsqueeze(1) + step_lp).view(-1)
        vocab = step_lp.shape[1]
        top = torch.topk(total, min(2 * k, total.numel()))
        new_hyps: list[_Hyp] = []
        new_rows: list[int] = []
        # one device->host transfer for all candidates (not one per element)
        tok_lps = step_lp.reshape(-1).index_select(0, top.indices).tolist()
        ranked = zip(top.values.tolist(), top.indices.tolist(), tok_lps, strict=True)
        for rank, (score, flat, tok_lp) in enumerate(ranked):
            b, tok = divmod(flat, vocab)
            parent = st.hyps[b]
            h = _Hyp(parent.tokens + [tok], parent.logps + [tok_lp], score)
            if self._ended(h):
                if rank < k:  # as in ``generate``: an ending outside the top k does not count
                    self._finish(st, h, reason="stop")
                continue
            new_hyps.append(h)
            new_rows.append(st.rows[b])
            if len(new_hyps) == k:
                break
        if len(st.finished) >= k or not new_hyps:
            st.done = True
            return
        if last:
            for h in new_hyps:
                self._finish(st, h, reason="length")
            st.done = True
            return
        base = len(src)
        src.extend(new_rows)
        nxt.extend(h.tokens[-1] for h in new_hyps)
        st.hyps = new_hyps
        st.rows = list(range(base, base + len(new_hyps)))

    def _sample_step(
        self, st: _ReqState, logits: Any, logp: Any, last: bool, src: list[int], nxt: list[int]
    ) -> None:
        import torch

        rows = torch.tensor(st.rows, dtype=torch.long, device=logp.device)
        probs = torch.softmax(logits.index_select(0, rows) / self.temperature, dim=-1)
        drawn = torch.multinomial(probs, 1, generator=st.rng).squeeze(1)
        tok_lps = logp[rows, drawn].tolist()
        toks = drawn.tolist()
        keep_h: list[_Hyp] = []
        keep_r: list[int] = []
        for h, row, tok, tok_lp in zip(st.hyps, st.rows, toks, tok_lps, strict=True):
            h2 = _Hyp(h.tokens + [tok], h.logps + [tok_lp], h.cum + tok_lp)
            if self._ended(h2):
                self._finish(st, h2, reason="stop")
            elif last:
                self._finish(st, h2, reason="length")
            else:
                keep_h.append(h2)
                keep_r.append(row)
        if not keep_h:
            st.done = True
            return
        base = len(src)
        src.extend(keep_r)
        nxt.extend(h.tokens[-1] for h in keep_h)
        st.hyps = keep_h
        st.rows = list(range(base, base + len(keep_h)))

    def _may_end(self, tok: int) -> bool:
        """Whether token ``tok`` can complete the stop marker (its text holds one of the marker's
        characters, or is not printable on its own, as a byte piece of a longer character)."""
        if self._stop_tokens is None:
            chars = set(self.stop)
            table = []
            for i in range(len(self.tokenizer)):
                piece = self.tokenizer.decode([i])
                table.append(not piece or "\ufffd" in piece or any(c in piece for c in chars))
            self._stop_tokens = table
        return tok >= len(self._stop_tokens) or self._stop_tokens[tok]

    def _ended(self, h: _Hyp) -> bool:
        if self.eos_id is not None and h.tokens[-1] == self.eos_id:
            return True
        if not self._may_end(h.tokens[-1]):
            return False
        tail = self.tokenizer.decode(h.tokens[-_STOP_TAIL_TOKENS:], skip_special_tokens=True)
        return self.stop in tail

    def _finish(self, st: _ReqState, h: _Hyp, *, reason: str) -> None:
        """Record ``h``: its tactic text and the mean log-prob of the tactic's own tokens."""
        tokens = h.tokens
        if self.eos_id is not None and tokens and tokens[-1] == self.eos_id:
            tokens = tokens[:-1]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cut = text.find(self.stop)
        if cut >= 0:
            target = text[:cut].rstrip()
            # fewest tokens whose text covers the tactic (decoding is prefix-monotone)
            lo, hi = 0, len(tokens)
            while lo < hi:
                mid = (lo + hi) // 2
                if self.tokenizer.decode(tokens[:mid], skip_special_tokens=True).rstrip().startswith(target):
                    hi = mid
                else:
                    lo = mid + 1
            ntok = lo
            tactic = target
        else:
            ntok = len(tokens)
            tactic = text
        tactic = tactic.strip()
        if not tactic or ntok == 0:
            return
        score = sum(h.logps[:ntok]) / ntok
        st.finished.append((tactic, score))
