"""Conformance of the Lean 4 client with the REPL's own test suite at the pinned tag.

``tests/fixtures/lean4_repl/<tag>/test/`` is the REPL repository's ``test/`` directory at ``PINNED_TAG``,
unchanged (``scripts/import_repl_tests.py`` regenerates it from a clone; Apache-2.0, ``LICENSE`` there).
Each ``NAME.in`` is what the REPL's ``test.sh`` feeds to ``repl`` and ``NAME.expected.out`` what the real
REPL answered (stdout and stderr). Every request is read the way the REPL reads it (``getLines`` up to a
blank line; a block starting with ``#`` or ``--`` is skipped, ``REPL/Main.lean``), and every reply goes
through the client exactly as a live reply would: ``decode_block``, then the parser for the request's
kind, then the tactic classification. Nothing here is a stand-in: these are the real replies of the tag
``lean_project/`` pins; on a pin bump, import the new tag's tests and change ``PINNED_TAG``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llemma_prover.backends.lean4.backend import classify_tactic_reply
from llemma_prover.backends.lean4.protocol import (
    CommandResponse,
    ReplError,
    TacticResponse,
    decode_block,
    encode_request,
    parse_command_response,
    parse_tactic_response,
)
from llemma_prover.core.errors import ProverDesync
from llemma_prover.core.types import ProofFinished, TacticError

PINNED_TAG = "v4.32.0"
ROOT = Path(__file__).parent / "fixtures" / "lean4_repl" / PINNED_TAG
SUITE = ROOT / "test"


def _blocks(text: str) -> list[str]:
    """Blank-line separated blocks, as the REPL's ``getLines`` and its ``printFlush "\\n"`` frame them."""
    out, cur = [], []
    for line in text.split("\n"):
        if line.strip() == "":
            if cur:
                out.append("\n".join(cur))
                cur = []
        else:
            cur.append(line)
    if cur:
        out.append("\n".join(cur))
    return out


@dataclass(frozen=True)
class Pair:
    test: str
    request: dict[str, Any]
    reply: str


def pairs() -> list[Pair]:
    out: list[Pair] = []
    for inp in sorted(SUITE.rglob("*.in")):
        exp = inp.with_name(inp.name[: -len(".in")] + ".expected.out")
        if not exp.is_file():
            continue  # the REPL's test.sh skips these too
        reqs = [b for b in _blocks(inp.read_text(encoding="utf-8")) if not b.startswith(("#", "--"))]
        reps = _blocks(exp.read_text(encoding="utf-8"))
        name = str(inp.relative_to(SUITE))
        assert len(reqs) == len(reps), f"{name}: {len(reqs)} requests, {len(reps)} replies"
        out += [Pair(name, json.loads(q, strict=False), r) for q, r in zip(reqs, reps, strict=True)]
    return out


def kind(req: dict[str, Any]) -> str:
    if "tactic" in req:
        return "tactic"
    if "pickleTo" in req:
        return "pickle_proof_state" if "proofState" in req else "pickle_env"
    if "unpickleProofStateFrom" in req:
        return "unpickle_proof_state"
    if "unpickleEnvFrom" in req:
        return "unpickle_env"
    return "command"  # "cmd" or "path"


def test_the_pinned_suite_is_here_with_its_licence() -> None:
    assert (ROOT / "LICENSE").read_text().find("Apache License") >= 0
    assert f"tag {PINNED_TAG}" in (ROOT / "SOURCE.txt").read_text()
    project = Path(__file__).resolve().parents[1] / "lean_project" / "lakefile.toml"
    assert f'rev = "{PINNED_TAG}"' in project.read_text(), "the fixtures must be the tag lean_project pins"


def test_every_request_is_framed_as_the_repl_reads_it() -> None:
    for p in pairs():
        wire = encode_request(p.request).decode("utf-8")
        assert wire.endswith("\n\n") and "\n" not in wire[:-2], p.test  # one line, then the blank line
        (block,) = _blocks(wire)
        assert json.loads(block) == p.request, p.test


def test_every_reply_of_the_suite_goes_through_the_client() -> None:
    seen: Counter[str] = Counter()
    finished = unknown_ids = 0
    for p in pairs():
        obj = decode_block(p.reply)  # every reply at this tag is one JSON object
        k = kind(p.request)
        seen[k] += 1
        if k in ("tactic", "pickle_proof_state", "unpickle_proof_state"):
            reply = parse_tactic_response(obj)
            assert isinstance(reply, (TacticResponse, ReplError)), p.test
            if isinstance(reply, TacticResponse):
                # proofStatus is always sent at this tag (REPL/JSON.lean: a String, serialized always)
                assert reply.proof_status is not None, p.test
            try:
                outcome = classify_tactic_reply(reply, 0.0)
            except ProverDesync:
                assert isinstance(reply, ReplError) and reply.unknown_id, p.test
                unknown_ids += 1
                continue
            if isinstance(outcome, ProofFinished):
                finished += 1
                assert isinstance(reply, TacticResponse) and not reply.errors and not reply.sorries
                assert reply.proof_status == "Completed", p.test
            else:
                assert outcome is None or isinstance(outcome, TacticError), p.test
        else:
            reply = parse_command_response(obj)
            assert isinstance(reply, (CommandResponse, ReplError)), p.test
            if isinstance(reply, CommandResponse) and k != "pickle_env":
                assert reply.env >= 0, p.test
    total = sum(seen.values())
    # the suite as imported: 217 request/reply pairs at v4.32.0 (all kinds present)
    assert total >= 200, seen
    assert all(seen[k] > 0 for k in ("tactic", "command", "pickle_env", "unpickle_env")), seen
    assert finished > 0 and unknown_ids > 0


@pytest.mark.parametrize("name", ["unknown_proof_state.in", "unknown_environment.in"])
def test_the_suites_unknown_id_replies_are_desyncs(name: str) -> None:
    """The REPL's own fixed strings for ids it does not know: the client is out of step, not the tactic."""
    ps = [p for p in pairs() if p.test == name]
    assert ps
    errors = [r for p in ps if isinstance(r := parse_command_response(decode_block(p.reply)), ReplError)]
    assert errors and all(e.unknown_id for e in errors)
