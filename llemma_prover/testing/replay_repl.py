"""A stand-in for the Lean 4 REPL that answers only from recorded real transcripts.

Usage: ``python -m llemma_prover.testing.replay_repl --transcripts DIR [faults...]``

It speaks the REPL's protocol on stdin/stdout (a JSON request and a blank line in; a JSON reply and a
blank line out) and serves, for each request, the reply the real REPL gave to the *same* request on
the *same* state in a transcript (``NAME.in`` / ``NAME.expected.out`` pairs under DIR). It never
makes a reply up: a request that no transcript contains makes it print a diagnostic on stderr and
exit with status 3 (the client sees a crashed process).

State ids: the real REPL numbers environments and proof states from 0 in every process. The replay
does the same, and remembers for each id it issued which transcript state(s) it stands for. A
request on id N is looked up in those transcripts with N replaced by the transcript's own id; the
recorded reply is printed verbatim except that its ids are renumbered into this process's sequence.
A command without ``env`` may match several transcripts (``import Mathlib`` opens four of them); the
resulting env stands for all of them whose recorded replies are identical.

Pickles, as the REPL at tag ``v4.32.0`` handles them (``REPL/Main.lean``): ``unpickleEnvFrom`` /
``unpickleProofStateFrom`` of a file that does not exist is not answered at all -- the error is
uncaught, so the real REPL prints ``uncaught exception: ...`` on stderr and exits 1; the replay does the
same before looking anything up. A recorded ``pickleTo`` reply is served and the file is created (empty
content: only its existence is ever used), as the real REPL writes it.

Fault injection (for timeout and crash tests; it withholds replies, it never invents one):

* ``--hang TACTIC``: on a tactic request with exactly this text, read it and never answer;
* ``--hang-cmd SUBSTRING``: the same for a command request whose source contains SUBSTRING;
* ``--exit TACTIC``: on that tactic request, exit with status 1 without answering (a crash);
* ``--once FILE``: faults fire only while FILE does not exist, and create it when they fire
  (so the replacement process behaves normally);
* ``--spawn-child``: start a ``sleep`` grandchild in the same process group (as ``lake env`` does),
  so tests can check that the whole group is killed;
* ``--log FILE``: append every request received, one JSON line each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PS_RE = re.compile(r'"proofState": (\d+)')
_ENV_RE = re.compile(r'"env": (\d+)')


@dataclass
class Entry:
    transcript: str
    request: dict[str, Any]
    reply_text: str
    reply: dict[str, Any]


def _blocks(text: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
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


def load_transcripts(root: Path) -> dict[str, list[Entry]]:
    """Every usable transcript under ``root``: name -> its (request, reply) pairs in order."""
    out: dict[str, list[Entry]] = {}
    for req_path in sorted(root.rglob("*.in")):
        rep_path = req_path.with_name(req_path.name[:-3] + ".expected.out")
        if not rep_path.is_file():
            continue
        try:
            reqs = [json.loads(b, strict=False) for b in _blocks(req_path.read_text(encoding="utf-8"))]
            rep_blocks = _blocks(rep_path.read_text(encoding="utf-8"))
            reps = [json.loads(b) for b in rep_blocks]
        except json.JSONDecodeError:
            continue
        if not reqs or len(reqs) != len(reps):
            continue  # alignment unknown: never guess
        name = str(req_path.relative_to(root))[:-3]
        out[name] = [Entry(name, q, t, r) for q, t, r in zip(reqs, rep_blocks, reps, strict=True)]
    return out


class Replay:
    def __init__(self, transcripts: dict[str, list[Entry]]) -> None:
        self.transcripts = transcripts
        self.envs: dict[int, list[tuple[str, int]]] = {}
        self.states: dict[int, list[tuple[str, int]]] = {}
        self.next_env = 0
        self.next_ps = 0

    def answer(self, req: dict[str, Any]) -> str | None:
        if "tactic" in req and "proofState" in req:
            key, table = "proofState", self.states
        elif "cmd" in req and "env" in req:
            key, table = "env", self.envs
        elif "cmd" in req or "path" in req:  # a fresh environment (``path``: a file the REPL reads)
            key, table = None, None
        else:
            return None
        matches: list[Entry] = []
        if key is None:
            for entries in self.transcripts.values():
                matches += [e for e in entries if e.request == req]
        else:
            assert table is not None
            ours = req[key]
            for tname, orig in table.get(ours, []) if isinstance(ours, int) else []:
                want = dict(req, **{key: orig})
                matches += [e for e in self.transcripts[tname] if e.request == want]
        if not matches:
            return None
        first = matches[0]
        same = [e for e in matches if e.reply == first.reply]
        return self._renumber(first.reply_text, [e.transcript for e in same])

    def _renumber(self, text: str, transcripts: list[str]) -> str:
        ps_ids = sorted({int(m) for m in _PS_RE.findall(text)})
        env_ids = sorted({int(m) for m in _ENV_RE.findall(text)})
        ps_new: dict[int, int] = {}
        for orig in ps_ids:
            ps_new[orig] = self.next_ps
            self.states[self.next_ps] = [(t, orig) for t in transcripts]
            self.next_ps += 1
        env_new: dict[int, int] = {}
        for orig in env_ids:
            env_new[orig] = self.next_env
            self.envs[self.next_env] = [(t, orig) for t in transcripts]
            self.next_env += 1
        text = _PS_RE.sub(lambda m: f'"proofState": {ps_new[int(m.group(1))]}', text)
        return _ENV_RE.sub(lambda m: f'"env": {env_new[int(m.group(1))]}', text)


def _read_request(stdin: Any) -> str | None:
    lines: list[str] = []
    while True:
        line = stdin.readline()
        if line == "":
            return "\n".join(lines) if lines else None
        if line.strip() == "":
            if lines:
                return "\n".join(lines)
            continue
        lines.append(line.rstrip("\n"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="replay_repl", description=__doc__.split("\n")[0])
    ap.add_argument("--transcripts", required=True)
    ap.add_argument("--hang", action="append", default=[])
    ap.add_argument("--hang-cmd", action="append", default=[])
    ap.add_argument("--exit", action="append", default=[])
    ap.add_argument("--once")
    ap.add_argument("--spawn-child", action="store_true")
    ap.add_argument("--log")
    args = ap.parse_args(argv)

    replay = Replay(load_transcripts(Path(args.transcripts)))
    if not replay.transcripts:
        print(f"replay: no transcripts under {args.transcripts}", file=sys.stderr)
        return 2
    if args.spawn_child:
        subprocess.Popen(
            ["sleep", "3600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )  # noqa: S607

    def fault_armed() -> bool:
        if args.once is None:
            return True
        if os.path.exists(args.once):
            return False
        Path(args.once).write_text("fired\n")
        return True

    while True:
        block = _read_request(sys.stdin)
        if block is None:
            return 0
        try:
            req = json.loads(block, strict=False)
        except json.JSONDecodeError as exc:
            print(f"replay: request is not JSON ({exc}); not in transcripts", file=sys.stderr)
            return 3
        if args.log:
            with open(args.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(req, ensure_ascii=False) + "\n")
        tac = req.get("tactic")
        cmd = req.get("cmd")
        if (
            tac in args.hang or (isinstance(cmd, str) and any(s in cmd for s in args.hang_cmd))
        ) and fault_armed():
            print("replay: hanging on request (fault injection)", file=sys.stderr, flush=True)
            while True:
                time.sleep(3600)
        if tac in args.exit and fault_armed():
            print("replay: exiting mid-request (fault injection)", file=sys.stderr, flush=True)
            return 1
        unpickle = req.get("unpickleEnvFrom") or req.get("unpickleProofStateFrom")
        if isinstance(unpickle, str) and not Path(unpickle).is_file():
            print(
                f"uncaught exception: no such file or directory (error code: 2)\n  file: {unpickle}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        reply = replay.answer(req)
        if reply is not None and isinstance(req.get("pickleTo"), str):
            target = Path(req["pickleTo"])
            if target.parent.is_dir():
                target.write_bytes(b"")
        if reply is None:
            print(
                f"replay: request not in transcripts: {json.dumps(req, ensure_ascii=False)}",
                file=sys.stderr,
                flush=True,
            )
            return 3
        sys.stdout.write(reply + "\n\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
