"""The ``llemma`` generator: a causal language model proposing tactics from a few-shot prompt.

``LlemmaGenerator`` loads any ``transformers`` causal LM (default ``EleutherAI/llemma_7b``; a model id or
a local folder, ``load_kwargs`` such as ``gguf_file=``) and decodes tactics after the Llemma prompt
(``generators.prompts``). Decoding is done by ``Decoder``, which the model server (``llemma_prover.serving``)
shares, so a server and a worker-local generator give the same candidates for the same input:

* **beam search** when ``temperature == 0``: ``k`` beams, ``k`` hypotheses returned (``num_beams = k``,
  ``num_return_sequences = k``); a hypothesis ends when the model writes the stop marker ``"\\n---"`` (or
  EOS) and the request ends once ``k`` hypotheses have ended (``early_stopping=True`` in ``generate``'s
  terms); beams still open after ``max_new_tokens`` are returned as they are;
* **sampling** when ``temperature > 0``: ``k`` independent samples per goal, from a random generator
  seeded by ``config.seed`` and the goal's tokens, so a result does not depend on which other goals
  share the batch.

The score of a candidate is the mean log-probability (under the model, at temperature 1) of the tokens
of the tactic itself: the stop marker, EOS and padding are excluded. Hypotheses are ranked by that score.

Several goals are decoded as one batch. The few-shot prefix is the same for every goal of a backend, so
its key/value cache is computed once (``prefix_cache=True``). For Llama-like models one copy of it is
shared by every row of a batch through a registered attention function (``_shared_prefix_attention``:
softmax over [prefix keys, row keys] with the prefix broadcast over the batch), checked once against a
full forward pass; otherwise the cache is copied into each row. Goals are left-padded *after* the
prefix, with position ids that skip the padding, so each row sees exactly the positions it would see
alone.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import GeneratorConfig
from ..core.errors import ConfigError, GeneratorError, GeneratorUnavailable
from ..core.types import Candidate
from .base import TacticGenerator, dedupe
from .prompts import STOP_MARKER, FewShotPrompt, load_prompt

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Decoder", "LlemmaGenerator", "LoadedModel", "load_model", "resolve_device", "resolve_dtype"]

log = logging.getLogger(__name__)

#: tokens decoded at the end of a hypothesis to look for the stop marker (it spans at most a few)
_STOP_TAIL_TOKENS = 8


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; anything else as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GeneratorUnavailable(f"device {device!r} was requested but torch sees no CUDA GPU")
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``"auto"`` -> bfloat16 on GPU, float32 on CPU; or the named dtype."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    table = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
             "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32}
    if dtype not in table:
        raise ConfigError(f"unknown dtype {dtype!r}; choose auto, bfloat16, float16 or float32")
    return table[dtype]


@dataclass
class LoadedModel:
    """A model and its tokenizer on a device, plus what describes them."""

    model: Any
    tokenizer: Any
    model_id: str
    device: str
    dtype: str
    params: int


def _clip(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[:limit] + "..."
    return text if text.endswith(".") else text + "."


def load_model(config: GeneratorConfig) -> LoadedModel:
    """Load ``config.model`` with ``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained``.

    Raises ``GeneratorUnavailable`` saying why and what to do when the weights cannot be loaded.
    """
    try:
        import torch
        import transformers
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise GeneratorUnavailable(f"the llemma generator needs torch and transformers: {exc}") from exc

    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    name = config.model
    local = Path(name).expanduser().exists() or name.startswith(("/", "./", "../", "~"))
    if local:
        hint = "Pass --model a folder holding transformers weights and a tokenizer, or use --generator bank."
    else:
        hint = (
            f"Download the weights once (e.g. `huggingface-cli download {name} --local-dir DIR` on a machine "
            "with internet access) and pass --model DIR, or use --generator bank."
        )
    if local and not Path(name).expanduser().exists():
        raise GeneratorUnavailable(f"cannot load model {name!r}: no such file or directory. {hint}")
    kwargs = dict(config.load_kwargs)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name, **kwargs)
        model = transformers.AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, hub/network errors: all mean "cannot load"
        raise GeneratorUnavailable(
            f"cannot load model {name!r}: {type(exc).__name__}: {_clip(exc)} {hint}"
        ) from exc
    try:
        model.to(device)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:  # type: ignore[attr-defined]
        raise GeneratorUnavailable(f"model {name!r} does not fit on {device}: {exc}") from exc
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    return LoadedModel(model=model, tokenizer=tokenizer, model_id=name, device=device,
                       dtype=str(dtype).removeprefix("torch."), params=params)


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


#: name under which ``_shared_prefix_attention`` is registered with transformers
SHARED_PREFIX_ATTENTION = "llemma_shared_prefix"


def _shared_prefix_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    scaling: float,
    dropout: float = 0.0,
    llemma_prefix: Any = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Attention over [one shared copy of the prefix keys/values] + [each row's own keys/values].

    ``key``/``value`` (and ``attention_mask``) cover only a row's own tokens; ``llemma_prefix`` holds,
    per layer, the prefix's keys and values with batch size 1, which broadcast over the batch. So a
    batch of B rows reads the prefix once instead of holding B copies of it (memory, and the per-step
    copy a growing cache makes). Without ``llemma_prefix`` this is plain eager attention.
    """
    import torch

    n_rep = query.shape[1] // key.shape[1]

    def rep(x: Any) -> Any:
        return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)

    ks, vs = rep(key), rep(value)
    scores = torch.matmul(query, ks.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, : ks.shape[-2]]
    if llemma_prefix is None:
        weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
        out = torch.matmul(weights, vs)
    else:
        pk, pv = llemma_prefix[module.layer_idx]
        pk, pv = rep(pk), rep(pv)
        prefix_scores = torch.matmul(query, pk.transpose(2, 3)) * scaling
        weights = torch.softmax(torch.cat([prefix_scores, scores], dim=-1), dim=-1, dtype=torch.float32)
        weights = weights.to(query.dtype)
        plen = pk.shape[-2]
        out = torch.matmul(weights[..., :plen], pv) + torch.matmul(weights[..., plen:], vs)
    return out.transpose(1, 2).contiguous(), None


def _register_shared_prefix_attention() -> bool:
    """Register the attention (and its mask) with transformers; False when this version cannot."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, eager_mask
    except ImportError:
        return False
    AttentionInterface.register(SHARED_PREFIX_ATTENTION, _shared_prefix_attention)
    AttentionMaskInterface.register(SHARED_PREFIX_ATTENTION, eager_mask)
    return True


def _cache_tensors(cache: Any) -> list[tuple[Any, Any]]:
    """Per-layer (keys, values) of a transformers cache (5.x ``layers``, 4.x ``key_cache``)."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))


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
        stop: str = STOP_MARKER,
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
        import inspect

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

    def request(self, prompt: FewShotPrompt, goal: str, k: int) -> DecodeRequest:
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

        if not _register_shared_prefix_attention():
            return False
        config = self.model.config
        before = getattr(config, "_attn_implementation", None)
        probe = [self.pad_id if self.pad_id is not None else 0, *self.prefix_ids[-3:]]
        dev = self.model.device
        full_ids = torch.tensor([self.prefix_ids + probe], device=dev)
        reference, _ = self._forward(input_ids=full_ids, attention_mask=torch.ones_like(full_ids))
        try:
            self.model.config._attn_implementation = SHARED_PREFIX_ATTENTION
            layers = _cache_tensors(self._prefix_cache)
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


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------


class LlemmaGenerator(TacticGenerator):
    """Tactics from a causal LM with the Llemma few-shot prompt of ``backend``.

    ``start()`` loads the weights (``GeneratorUnavailable`` when it cannot), ``close()`` frees them.
    """

    name = "llemma"

    def __init__(
        self,
        config: GeneratorConfig,
        backend: str,
        *,
        prompt_file: str | Path | None = None,
        prefix_cache: bool = True,
    ) -> None:
        self.config = config
        self.backend = backend
        self.prompt: FewShotPrompt = load_prompt(backend, prompt_file)
        self.prefix_cache = prefix_cache
        self._loaded: LoadedModel | None = None
        self._decoder: Decoder | None = None

    def start(self) -> None:
        if self._loaded is not None:
            return
        loaded = load_model(self.config)
        self._loaded = loaded
        self._decoder = Decoder(
            loaded.model,
            loaded.tokenizer,
            self.prompt.prefix,
            max_new_tokens=self.config.max_new_tokens,
            temperature=self.config.temperature,
            seed=self.config.seed,
            prefix_cache=self.prefix_cache,
        )
        if self.prefix_cache:
            self._decoder.prefix_kv()  # computed now, and the way it is shared settled
        log.info("llemma generator ready: %s", self.describe())

    def close(self) -> None:
        if self._loaded is None:
            return
        device = self._loaded.device
        self._decoder = None
        self._loaded = None
        if device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    @property
    def decoder(self) -> Decoder:
        if self._decoder is None:
            raise GeneratorError("LlemmaGenerator.start() was not called (or close() was)")
        return self._decoder

    def generate(self, goal_text: str, k: int) -> list[Candidate]:
        return self.generate_batch([goal_text], k)[0]

    def generate_batch(self, goal_texts: Sequence[str], k: int) -> list[list[Candidate]]:
        dec = self.decoder
        out: list[list[Candidate]] = []
        step = max(1, self.config.batch_size // max(1, k))  # goals per forward batch
        reqs = [dec.request(self.prompt, g, k) for g in goal_texts]
        for i in range(0, len(reqs), step):
            out.extend(dedupe(c, k) for c in dec.decode(reqs[i:i + step]))
        return out

    def describe(self) -> dict[str, object]:
        d: dict[str, object] = {
            "name": self.name,
            "model": self.config.model,
            "backend": self.backend,
            "prompt": self.prompt.source,
            "decoding": "beam" if self.config.temperature == 0 else f"sampling(T={self.config.temperature})",
            "max_new_tokens": self.config.max_new_tokens,
            "prefix_cache": self.prefix_cache,
        }
        if self._loaded is not None:
            d.update(device=self._loaded.device, dtype=self._loaded.dtype, params=self._loaded.params)
        if self._decoder is not None:
            d["prefix_cache"] = self._decoder.prefix_mode
        return d
