"""Few-shot Draft-Sketch-Prove prompts: ``experiments/prompts/dsp_<backend>.txt``.

File format (written for this project)::

    <instruction, one or more lines>
    =====
    Informal statement:
    <text>
    Informal proof:
    <text>
    Formal statement:
    <header and statement, as the data give them>
    Formal sketch:
    <the sketch, holes marked as the backend's sketch format says>
    =====
    ... more examples ...

The query for a problem is the same block up to ``Formal sketch:\\n``; the model's sketch ends at the
separator line (``STOP``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..core.config import DATA_SYSTEM
from ..core.errors import ConfigError
from ..core.types import Theorem

SEPARATOR = "====="
STOP = "\n" + SEPARATOR
_QUERY = (
    "Informal statement:\n{stmt}\nInformal proof:\n{proof}\nFormal statement:\n{formal}\nFormal sketch:\n"
)
_EXAMPLE_RE = re.compile(
    r"^Informal statement:\n(?P<stmt>.*?)\nInformal proof:\n(?P<proof>.*?)\nFormal statement:\n"
    r"(?P<formal>.*?)\nFormal sketch:\n(?P<sketch>.*?)\s*\Z",
    re.S,
)
#: which prompt file a backend uses: the one of the benchmark data it reads
PROMPT_SYSTEMS = DATA_SYSTEM


@dataclass(frozen=True)
class DSPExample:
    informal_statement: str
    informal_proof: str
    formal: str
    sketch: str


@dataclass(frozen=True)
class DSPPrompt:
    source: str
    instruction: str
    examples: tuple[DSPExample, ...]

    @property
    def prefix(self) -> str:
        parts = [self.instruction.strip()]
        for ex in self.examples:
            parts.append(
                _QUERY.format(stmt=ex.informal_statement, proof=ex.informal_proof, formal=ex.formal)
                + ex.sketch
            )
        return ("\n" + SEPARATOR + "\n").join(parts) + "\n" + SEPARATOR + "\n"

    def query(self, theorem: Theorem) -> str:
        formal = theorem.header.strip() + "\n" + theorem.statement.strip()
        return _QUERY.format(
            stmt=theorem.informal_statement.strip() or "(none)",
            proof=theorem.informal_proof.strip() or "(none)",
            formal=formal,
        )

    def render(self, theorem: Theorem) -> str:
        return self.prefix + self.query(theorem)


def default_prompt_path(backend: str) -> Path:
    root = Path(__file__).resolve().parents[2]
    return root / "experiments" / "prompts" / f"dsp_{PROMPT_SYSTEMS.get(backend, backend)}.txt"


def parse_prompt(text: str, source: str = "") -> DSPPrompt:
    blocks = [b.strip("\n") for b in re.split(rf"^{SEPARATOR}\s*$", text, flags=re.M)]
    if len(blocks) < 2:
        raise ConfigError(f"DSP prompt {source}: no examples (blocks are separated by a line '{SEPARATOR}')")
    examples = []
    for k, b in enumerate(blocks[1:], start=1):
        if not b.strip():
            continue
        m = _EXAMPLE_RE.match(b)
        if not m:
            raise ConfigError(f"DSP prompt {source}: example {k} does not follow the format")
        examples.append(
            DSPExample(m["stmt"].strip(), m["proof"].strip(), m["formal"].strip(), m["sketch"].strip())
        )
    return DSPPrompt(source=source, instruction=blocks[0].strip(), examples=tuple(examples))


def load_dsp_prompt(backend: str, path: str | Path | None = None) -> DSPPrompt:
    p = Path(path) if path else default_prompt_path(backend)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read DSP prompt {p}: {exc.strerror or exc}") from None
    return parse_prompt(text, str(p))


def split_formal(formal: str) -> tuple[str, str]:
    """(header, statement) of an example's formal statement: the statement starts at its keyword."""
    m = re.search(r"^(?:Theorem|Lemma|theorem|lemma)\b", formal, re.M)
    if not m:
        raise ConfigError("example formal statement has no Theorem/theorem line")
    return formal[: m.start()], formal[m.start() :]
