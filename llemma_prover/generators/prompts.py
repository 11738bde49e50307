"""Llemma few-shot prompts: one file of worked examples per prover, and the query format.

The format is the one of the Llemma evaluation (``llemma_formal2formal``)::

    Tactic state:
    ---
    <state>
    ---
    Next tactic:
    ---
    <tactic>
    ---

A prompt file holds a one-line instruction followed by examples in that format, separated by blank
lines. The files shipped with the package (``llemma_prover/generators/prompts/<system>.txt``, package
data, so they work after ``pip install``) are the defaults; ``experiments/prompts/build_coq_prompt.py``
regenerates the Coq one from real ``coqc`` output and checks that every tactic in it works.

The prompt is split in two so that a model server can keep the key/value cache of the shared part:
``prefix`` (instruction + examples, identical for every goal of a backend) and ``query(state)``.

A model folder may carry its own prompt (``MODEL_PROMPT_FILE``, JSON ``{"system", "prefix"}``):
``llemma-prover train`` writes the prompt it fine-tuned with there -- the instruction line without
examples, since a fine-tuned model needs none -- and ``prompt_for_model`` uses it for that model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..core.config import DATA_SYSTEM
from ..core.errors import ConfigError

__all__ = [
    "MODEL_PROMPT_FILE",
    "PROMPT_SYSTEMS",
    "STOP_MARKER",
    "FewShotPrompt",
    "format_example",
    "load_prompt",
    "parse_examples",
    "prompt_for_model",
    "zero_shot_prompt",
]

#: which prompt file a backend uses: the one of the benchmark data it reads
PROMPT_SYSTEMS: dict[str, str] = DATA_SYSTEM

#: the prompt a model folder carries (written by ``llemma-prover train``)
MODEL_PROMPT_FILE = "llemma_prompt.json"

#: the text that ends a generated tactic
STOP_MARKER = "\n---"

_QUERY = "Tactic state:\n---\n{state}\n---\nNext tactic:\n---\n"
_EXAMPLE_RE = re.compile(
    r"Tactic state:\n---\n(?P<state>.*?)\n---\nNext tactic:\n---\n(?P<tactic>.*?)\n---(?:\n|\Z)", re.S
)


def format_example(state: str, tactic: str) -> str:
    """One worked example, in the Llemma format (no trailing blank line)."""
    return _QUERY.format(state=state) + tactic + STOP_MARKER


def parse_examples(text: str) -> list[tuple[str, str]]:
    """The ``(state, tactic)`` pairs of a prompt file, in order."""
    return [(m.group("state"), m.group("tactic")) for m in _EXAMPLE_RE.finditer(text)]


@dataclass(frozen=True)
class FewShotPrompt:
    """A backend's few-shot prefix and the query built from a goal."""

    system: str
    prefix: str
    source: str

    def query(self, state: str) -> str:
        """The part of the prompt that depends on the goal; the model continues with a tactic."""
        return _QUERY.format(state=state.strip("\n"))

    def render(self, state: str) -> str:
        return self.prefix + self.query(state)

    @property
    def examples(self) -> list[tuple[str, str]]:
        return parse_examples(self.prefix)


def load_prompt(backend: str, path: str | Path | None = None) -> FewShotPrompt:
    """The few-shot prompt for ``backend`` (or the file at ``path``).

    Raises ``ConfigError`` when the backend has no prompt or the file holds no example.
    """
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read prompt file {p}: {exc}") from exc
        source = str(p)
        system = PROMPT_SYSTEMS.get(backend, backend)
    else:
        if backend not in PROMPT_SYSTEMS:
            raise ConfigError(f"no few-shot prompt for backend {backend!r}")
        system = PROMPT_SYSTEMS[backend]
        res = resources.files(__package__).joinpath("prompts", f"{system}.txt")
        text = res.read_text(encoding="utf-8")
        source = f"llemma_prover/generators/prompts/{system}.txt"
    if not parse_examples(text):
        raise ConfigError(f"prompt file {source} holds no example in the 'Tactic state:' format")
    prefix = text.rstrip("\n") + "\n\n"
    return FewShotPrompt(system=system, prefix=prefix, source=source)


def zero_shot_prompt(backend: str) -> FewShotPrompt:
    """The default prompt's instruction line without its examples (what ``train`` fine-tunes with)."""
    default = load_prompt(backend)
    instruction = default.prefix.split("\n", 1)[0]
    source = f"{default.source} (zero-shot)"
    return FewShotPrompt(system=default.system, prefix=instruction + "\n\n", source=source)


def prompt_for_model(backend: str, model: str, path: str | Path | None = None) -> FewShotPrompt:
    """The prompt to use with ``model``: the file at ``path`` if given, else the one the model folder
    carries (``MODEL_PROMPT_FILE``), else ``backend``'s default few-shot prompt.

    Raises ``ConfigError`` when the model's prompt is unreadable or was made for another prover.
    """
    if path is not None:
        return load_prompt(backend, path)
    folder = Path(model).expanduser()
    carried = folder / MODEL_PROMPT_FILE
    if not folder.is_dir() or not carried.is_file():
        return load_prompt(backend)
    try:
        data = json.loads(carried.read_text(encoding="utf-8"))
        system, prefix = str(data["system"]), str(data["prefix"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the model's prompt {carried}: {exc}") from exc
    want = PROMPT_SYSTEMS.get(backend, backend)
    if system != want:
        raise ConfigError(f"model {model} was trained for {system} goals, not {want} ({carried})")
    return FewShotPrompt(system=system, prefix=prefix, source=str(carried))
