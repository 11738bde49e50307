"""Who writes the sketches: a causal LM (``llemma``), a file (``replay``), or nobody (``none``).

* ``NoneDrafter``: one sketch, a single hole for the whole proof -- pure automation (the baseline,
  like the Sledgehammer row of the Llemma/DSP tables).
* ``ReplayDrafter``: sketches from a JSONL file, one object per line
  ``{"theorem": NAME, "sketches": [TEXT, ...]}`` (or ``"sketch": TEXT``); for tests and for
  re-running sketches written elsewhere.
* ``LMDrafter``: ``transformers`` generation after the few-shot DSP prompt, with the llemma generator's
  loading conventions (``lm.loading.load_model``: model id or path, ``load_kwargs``, device,
  dtype); greedy at temperature 0, else ``n`` samples seeded per problem. Free-form sketches need
  free-form decoding, which the tactic ``Decoder`` (stop marker ``---``, tactic scores) does not offer.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends.base import sketch_dialect
from ..core.config import DrafterConfig, drafts_nothing, reads_replay_file, uses_model
from ..core.errors import ConfigError, DataError, GeneratorError
from ..core.types import Theorem
from .prompts import STOP, DSPPrompt, load_dsp_prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Draft:
    text: str
    #: mean token log-prob under the model (0 for non-model drafters)
    score: float = 0.0
    #: model seconds spent on this draft (batch time shared equally)
    model_time: float = 0.0


class SketchDrafter(abc.ABC):
    name: str = ""

    def start(self) -> None:  # noqa: B027 - optional hook
        """Load expensive resources. Idempotent."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Idempotent."""

    @abc.abstractmethod
    def draft(self, theorem: Theorem, n: int) -> list[Draft]:
        """Up to ``n`` sketches for ``theorem`` (fewer when there are fewer)."""

    def describe(self) -> dict[str, object]:
        return {"name": self.name}


class NoneDrafter(SketchDrafter):
    name = "none"

    def __init__(self, backend: str) -> None:
        try:
            sketch = sketch_dialect(backend).whole_proof_sketch
        except ConfigError:
            sketch = ""
        if not sketch:
            raise ConfigError(f"no sketch format for backend {backend!r}")
        self.sketch = sketch

    def draft(self, theorem: Theorem, n: int) -> list[Draft]:
        return [Draft(self.sketch)]  # one deterministic sketch, whatever n is

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "sketch": self.sketch}


class ReplayDrafter(SketchDrafter):
    name = "replay"

    def __init__(self, path: str) -> None:
        self.path = path
        self._table: dict[str, list[str]] | None = None

    def start(self) -> None:
        if self._table is not None:
            return
        table: dict[str, list[str]] = {}
        try:
            lines = Path(self.path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DataError(f"cannot read sketches: {exc.strerror or exc}", self.path) from None
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON ({exc.msg})", self.path, lineno) from None
            if not isinstance(obj, dict) or not isinstance(obj.get("theorem"), str):
                raise DataError('expected {"theorem": NAME, "sketches": [...]}', self.path, lineno)
            sketches = obj.get("sketches", [obj["sketch"]] if "sketch" in obj else None)
            if not isinstance(sketches, list) or not all(isinstance(s, str) for s in sketches):
                raise DataError('"sketches" must be a list of strings', self.path, lineno)
            table.setdefault(obj["theorem"], []).extend(sketches)
        self._table = table

    def draft(self, theorem: Theorem, n: int) -> list[Draft]:
        self.start()
        assert self._table is not None
        return [Draft(s) for s in self._table.get(theorem.name, [])[:n]]

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "replay_file": self.path}


class LMDrafter(SketchDrafter):
    name = "llemma"

    def __init__(self, config: DrafterConfig, backend: str, prompt: DSPPrompt | None = None) -> None:
        self.config = config
        self.backend = backend
        self.prompt = prompt or load_dsp_prompt(backend, config.prompt_file)
        self._loaded: Any = None

    def start(self) -> None:
        if self._loaded is not None:
            return
        from ..lm.loading import load_model

        self._loaded = load_model(self.config.model)
        log.info("sketch drafter ready: %s", self.describe())

    def close(self) -> None:
        self._loaded = None

    def draft(self, theorem: Theorem, n: int) -> list[Draft]:
        import torch

        if self._loaded is None:
            raise GeneratorError("LMDrafter.start() was not called")
        cfg = self.config.model
        model, tok = self._loaded.model, self._loaded.tokenizer
        text = self.prompt.render(theorem)
        enc = tok(text, return_tensors="pt")
        input_ids = enc["input_ids"].to(self._loaded.device)
        attn = enc.get("attention_mask")
        attn = attn.to(self._loaded.device) if attn is not None else torch.ones_like(input_ids)
        sample = cfg.temperature > 0
        n_ret = n if sample else 1
        seed = int.from_bytes(hashlib.sha256(f"{cfg.seed}:{theorem.name}".encode()).digest()[:4], "little")
        torch.manual_seed(seed)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        t0 = time.monotonic()
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=attn,
                do_sample=sample,
                temperature=cfg.temperature if sample else None,
                top_p=None,
                top_k=None,
                num_return_sequences=n_ret,
                max_new_tokens=cfg.max_new_tokens,
                pad_token_id=pad,
                output_scores=True,
                return_dict_in_generate=True,
            )
        elapsed = time.monotonic() - t0
        trans = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        drafts: list[Draft] = []
        plen = input_ids.shape[1]
        for i in range(out.sequences.shape[0]):
            gen_ids = out.sequences[i, plen:]
            raw = tok.decode(gen_ids, skip_special_tokens=True)
            sketch = raw.split(STOP, 1)[0].strip("\n")
            # score: mean log-prob of the tokens up to the stop marker (approximated by token count)
            n_tok = max(1, len(tok(sketch, add_special_tokens=False)["input_ids"])) if sketch else 1
            lp = trans[i, :n_tok]
            lp = lp[torch.isfinite(lp)]
            score = float(lp.mean()) if lp.numel() else float("-inf")
            drafts.append(Draft(sketch, score, elapsed / out.sequences.shape[0]))
        return drafts

    def describe(self) -> dict[str, object]:
        d: dict[str, object] = {
            "name": self.name,
            "model": self.config.model.model,
            "prompt": self.prompt.source,
            "decoding": "greedy"
            if self.config.model.temperature == 0
            else f"sampling(T={self.config.model.temperature})",
            "max_new_tokens": self.config.model.max_new_tokens,
            "seed": self.config.model.seed,
        }
        if self._loaded is not None:
            d.update(device=self._loaded.device, dtype=self._loaded.dtype, params=self._loaded.params)
        return d


def make_drafter(config: DrafterConfig, backend: str) -> SketchDrafter:
    """The drafter ``config`` names, asked of ``core.config`` (``drafts_nothing``, ``reads_replay_file``,
    ``uses_model``) rather than by comparing names here."""
    if drafts_nothing(config.name):
        return NoneDrafter(backend)
    if reads_replay_file(config.name):
        if not config.replay_file:
            raise ConfigError("--generator replay needs --replay-file FILE")
        return ReplayDrafter(config.replay_file)
    if uses_model(config.name):
        return LMDrafter(config, backend)
    raise ConfigError(f"unknown drafter {config.name!r}")
