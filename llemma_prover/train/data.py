"""Training examples from an ``extract`` output folder, in the ``llemma`` generator's own prompt format.

An example is the text the generator shows the model at search time, ``prompt.prefix +
prompt.query(goal)`` with ``prompt = generators.prompts.zero_shot_prompt(backend)`` (the instruction
line of the backend's Llemma prompt; ``train`` saves it in the model folder, where ``prompt_for_model``
finds it), and the completion the model should write: the tactic with its final period and the stop
marker (``"lia.\\n---"``), exactly as the few-shot examples show tactics.

The goal is rendered as the backend renders it for generators (``Advanced.goal_text``): for Coq the
first focused goal with its hypotheses above ``============================``, the other goals as
conclusions only (coqtop's ``goal 2 is:``), goals separated by a blank line; for Lean the record's
pretty-printed ``state_before``. One known difference: coqtop wraps lines longer than its printing width,
while extracted goals have their white space collapsed, so a long hypothesis is one line here.

``read_dataset`` refuses data whose ``card.json`` holds no miniF2F contamination result, or whose check
found overlap, unless the config allows it (issue 12: the data is checked before any training); it
verifies ``steps.jsonl`` against the card's sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.base import data_hooks
from ..core.errors import ConfigError
from ..generators.prompts import STOP_MARKER, FewShotPrompt

__all__ = ["Dataset", "Example", "coq_goal_text", "read_dataset", "render_example"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Example:
    """One proof step as training text: ``prompt`` (what the generator shows) and ``completion``."""

    prompt: str
    completion: str
    split: str
    theorem: str


@dataclass
class Dataset:
    """The examples of an extract folder by split, and what the card says about them."""

    folder: str
    steps_sha256: str
    examples: dict[str, list[Example]]
    #: the card's contamination result (None: the card holds none)
    contamination: dict[str, Any] | None
    #: why records were not used, and how many
    skipped: Counter[str] = field(default_factory=Counter)
    #: what was allowed despite the checks ("unchecked", "contaminated")
    allowed: list[str] = field(default_factory=list)
    card_counts: dict[str, Any] = field(default_factory=dict)


def coq_goal_text(goals: Sequence[Mapping[str, Any]]) -> str:
    """The Coq backend's goal text for extracted ``goals`` (``[{"hyps": [...], "concl": str}, ...]``)."""
    return data_hooks("coq").step_goal_text({"goals_before": goals})


def render_example(record: Mapping[str, Any], prompt: FewShotPrompt, backend: str) -> Example:
    """The training text of one step record (see the module docstring)."""
    kind = data_hooks(backend)
    tactic = kind.step_tactic_text(str(record["tactic"]).strip())
    return Example(
        prompt=prompt.prefix + prompt.query(kind.step_goal_text(record)),
        completion=tactic + STOP_MARKER,
        split=str(record.get("split", "train")),
        theorem=str(record.get("theorem", "")),
    )


def _contamination_gate(card: Mapping[str, Any], *, allow_unchecked: bool,
                        allow_contaminated: bool) -> tuple[dict[str, Any] | None, list[str]]:
    result = card.get("contamination")
    allowed: list[str] = []
    if not isinstance(result, dict) or not result.get("checked"):
        if not allow_unchecked:
            raise ConfigError(
                "the data card holds no miniF2F contamination result (extract ran with --skip-contamination "
                "or an old version); run `llemma-prover extract` again with the check, or pass "
                "--allow-unchecked (recorded in the model's card)"
            )
        allowed.append("unchecked")
        return (result if isinstance(result, dict) else None), allowed
    from ..data.steps import contamination_problems

    hits = contamination_problems(result)
    if hits:
        names = ", ".join(str(h.get("problem")) for h in hits[:5])
        if not allow_contaminated:
            raise ConfigError(
                f"the data overlaps miniF2F ({len(hits)} problems: {names}); remove those sources or pass "
                "--allow-contaminated (recorded in the model's card; results on them are then not held out)"
            )
        allowed.append("contaminated")
    return result, allowed


def read_dataset(folder: str | Path, prompt: FewShotPrompt, backend: str, *, allow_unchecked: bool = False,
                 allow_contaminated: bool = False) -> Dataset:
    """The examples of ``folder`` (an ``extract`` output), split by the records' ``split`` field.

    Raises ``ConfigError`` for a folder that is not one, a sha256 that does not match the card, or data
    that failed (or never had) the contamination check unless allowed.
    """
    path = Path(folder)
    steps, card_file = path / "steps.jsonl", path / "card.json"
    if not steps.is_file() or not card_file.is_file():
        raise ConfigError(f"--data {folder}: expected an `llemma-prover extract` folder with steps.jsonl "
                          "and card.json")
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--data {folder}: cannot read card.json: {exc}") from exc
    if not isinstance(card, dict):
        raise ConfigError(f"--data {folder}: card.json is not a JSON object")
    contamination, allowed = _contamination_gate(card, allow_unchecked=allow_unchecked,
                                                 allow_contaminated=allow_contaminated)
    raw = steps.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if card.get("steps_sha256") and card["steps_sha256"] != sha:
        raise ConfigError(f"--data {folder}: steps.jsonl does not match the sha256 in card.json "
                          "(changed after extract wrote the card)")
    if card.get("backend") and not data_hooks(backend).reads_steps_of(card["backend"]):
        raise ConfigError(f"--data {folder} holds {card['backend']} steps, not {backend}")
    examples: dict[str, list[Example]] = {s: [] for s in SPLITS}
    skipped: Counter[str] = Counter()
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if rec.get("error") is not None:
                skipped["step with an error"] += 1
                continue
            if not rec.get("goals_before") or not str(rec.get("tactic", "")).strip():
                skipped["no goal or no tactic"] += 1
                continue
            ex = render_example(rec, prompt, backend)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"--data {folder}: steps.jsonl line {n} is not a step record: {exc}") from exc
        if ex.split not in examples:
            raise ConfigError(f"--data {folder}: steps.jsonl line {n}: unknown split {ex.split!r}")
        examples[ex.split].append(ex)
    return Dataset(folder=str(path.resolve()), steps_sha256=sha, examples=examples,
                   contamination=contamination, skipped=skipped, allowed=allowed,
                   card_counts=dict(card.get("counts") or {}))
