"""Per-tactic latency of the Coq backend vs a bare loop on the same prover (goal: ratio <= 1.2).

Both sides run the same tactics on the same goals in the same order, the way a best-first expansion
does: every candidate is tried on one node, and the prover is taken back to that node before the next
candidate. The two run interleaved, tactic by tactic, so load from other processes hits both alike.

The prover is ``coqidetop.opt`` (Coq's XML protocol; the backend's transport since issue 10). The bare
loop is what one would write by hand on it: ``pexpect.popen_spawn.PopenSpawn`` of
``coqidetop.opt -main-channel stdfds -q -l header.v``, ``Init``, then per candidate ``Add("Timeout T
tac.")`` + ``Goal`` (each read with ``expect_exact("</value>")``, the end of an answer -- printed text
cannot contain it unescaped), and ``Edit_at`` the node after a tactic that was accepted. It parses
nothing. The backend adds what soundness needs: the validator, Coq's parse check of the candidate
(one more ``Add``, answered with a syntax error), an XML parser for every answer, structured goals,
state bookkeeping and its process policies, and a ``Qed`` check on a finished proof. With
``--emacs-too`` a third loop on ``coqtop -emacs`` (the transport before issue 10, 50 ms
``delaybeforesend`` off, ``BackTo``) is timed as well, for reference.

The second part measures what starting and replacing a process costs: ``start_theorem`` time per
header kind, and the next ``apply`` after a timeout, with and without the warm spare.

Usage: ``python bench/coq_latency.py [--rounds 7] [--data-dir DIR] [--no-startup]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import pexpect
import pexpect.popen_spawn

from llemma_prover.backends.base import make_backend
from llemma_prover.backends.coq.header import prepare_header
from llemma_prover.core.config import ProverConfig
from llemma_prover.core.types import Advanced, ProofFinished, Theorem

COQUELICOT = "amc12a_2020_p15"
PROMPT = re.compile(r"<prompt>\S* < (\d+) \|[^|]*\| \d+ < </prompt>")
TIMEOUT = 5

#: (theorem, tactics to reach the expanded node, candidates tried there)
WORKLOAD = [
    (
        "mathd_algebra_107",
        ["intros x y h"],
        [
            "lia",
            "nra",
            "lra",
            "ring",
            "field",
            "auto",
            "simpl",
            "ring_simplify",
            "nlra",
            "easy",
            "trivial",
            "tauto",
            "split",
            "intuition",
            "unfold Rsqr",
            "intros",
            "f_equal",
            "symmetry",
            "apply Rplus_eq_compat_l",
            "subst",
            "reflexivity",
            "congruence",
            "lra",
            "nra",
        ],
    ),
    (
        "mathd_numbertheory_3",
        [],
        [
            "intros",
            "lia",
            "simpl",
            "reflexivity",
            "compute",
            "auto",
            "vm_compute",
            "easy",
            "trivial",
            "split",
            "cbn",
            "lia",
            "unfold Nat.modulo",
            "native_compute",
            "f_equal",
            "congruence",
        ],
    ),
    (
        "mathd_algebra_24",
        [],
        [
            "intros",
            "lra",
            "nra",
            "simpl",
            "field",
            "ring",
            "auto",
            "compute",
            "easy",
            "split",
            "unfold Rabs",
            "reflexivity",
            "Rcompute",
            "lia",
            "trivial",
            "field_simplify",
        ],
    ),
]


def load(data_dir: Path) -> dict[str, Theorem]:
    out = {}
    with open(data_dir / "coq" / "test.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            out[r["name"]] = Theorem(r["name"], "test", "coq", r["header"], r["statement"])
    return out


def _add(text: str, sid: int) -> str:
    from xml.sax.saxutils import escape

    return (
        f'<call val="Add"><pair><pair><pair><pair><string>{escape(text)}</string><int>0</int></pair>'
        f'<pair><state_id val="{sid}"/><bool val="false"/></pair></pair><int>0</int></pair>'
        '<pair><int>1</int><int>0</int></pair></pair></call>\n'
    )


STATE_RE = re.compile(r'<value val="good"><pair><state_id val="(\d+)"')
NO_GOALS = "<goals><list/><list/><list/><list/></goals>"


class BareIde:
    """The hand-written coqidetop loop: Add + Goal per tactic, Edit_at the node after an accepted one."""

    def __init__(self, th: Theorem, workdir: Path) -> None:
        hdr = workdir / "bare_header.v"
        hdr.write_text(prepare_header(th.header))
        self.p = pexpect.popen_spawn.PopenSpawn(
            ["coqidetop.opt", "-main-channel", "stdfds", "-q", "-l", str(hdr)],
            encoding="utf-8", timeout=120, cwd=str(workdir),
        )
        self.p.delaybeforesend = None
        init = re.search(r'state_id val="(\d+)"', self.call('<call val="Init"><option val="none"/></call>\n'))
        assert init is not None
        self.tip = int(init.group(1))
        self.tip = self.add(th.statement.strip())
        self.root = self.add("Proof.")
        self.call('<call val="Goal"><unit/></call>\n')

    def call(self, xml: str) -> str:
        self.p.send(xml)
        self.p.expect_exact("</value>")
        return str(self.p.before)

    def add(self, sentence: str) -> int:
        m = STATE_RE.search(self.call(_add(sentence, self.tip)))
        assert m is not None
        self.tip = int(m.group(1))
        return self.tip

    def edit_at(self, sid: int) -> None:
        self.call(f'<call val="Edit_at"><state_id val="{sid}"/></call>\n')
        self.tip = sid

    def tactic(self, node: int, tac: str) -> bool:
        """Run ``tac`` on ``node``; True when it finished the proof. Leaves the tip after ``node``."""
        if self.tip != node:
            self.edit_at(node)
        self.add(f"Timeout {TIMEOUT} {tac}.")
        answer = self.call('<call val="Goal"><unit/></call>\n')
        return NO_GOALS in answer

    def close(self) -> None:
        self.p.kill(9)
        self.p.wait()


class Bare:
    """The pre-issue-10 loop: one ``coqtop -emacs`` per theorem, BackTo the node after an advancing tactic."""

    def __init__(self, th: Theorem, workdir: Path) -> None:
        hdr = workdir / "bare_header.v"
        hdr.write_text(prepare_header(th.header))
        self.p = pexpect.spawn(
            "coqtop", ["-q", "-emacs", "-l", str(hdr)], echo=False, encoding="utf-8", timeout=120
        )
        # pexpect sleeps 50 ms before every send by default; a fair loop turns that off
        self.p.delaybeforesend = None
        self.p.expect(PROMPT)
        self.ask(th.statement.strip())
        self.root = self.ask("Proof.")

    def ask(self, sentence: str) -> int:
        self.p.sendline(sentence)
        self.p.expect(PROMPT)
        return int(self.p.match.group(1))

    def close(self) -> None:
        self.p.close(force=True)


def run_round(
    theorems: dict[str, Theorem], workdir: Path, emacs_too: bool
) -> tuple[list[float], list[float], list[float], int, int]:
    """One round: each candidate goes to the bare loop(s), then to the backend (interleaved per tactic)."""
    bare_times: list[float] = []
    emacs_times: list[float] = []
    ours_times: list[float] = []
    found_bare = found_ours = 0
    cfg = ProverConfig(tactic_timeout=float(TIMEOUT), warm_spare=False)
    with make_backend("coq", cfg) as backend:
        for name, prefix, cands in WORKLOAD:
            th = theorems[name]
            bare = BareIde(th, workdir)
            emacs = Bare(th, workdir) if emacs_too else None
            node_b = bare.root
            node_e = emacs.root if emacs is not None else 0
            node_o = backend.start_theorem(th).state_id
            for t in prefix:
                node_b = bare.add(f"Timeout {TIMEOUT} {t}.")
                bare.call('<call val="Goal"><unit/></call>\n')
                if emacs is not None:
                    node_e = emacs.ask(f"Timeout {TIMEOUT} {t}.")
                step = backend.apply(node_o, t)
                assert isinstance(step, Advanced), step
                node_o = step.state_id
            cur_e = node_e
            for t in cands:
                t0 = time.perf_counter()
                found_bare += int(bare.tactic(node_b, t))
                bare_times.append(time.perf_counter() - t0)
                if emacs is not None:
                    t0 = time.perf_counter()
                    if cur_e != node_e:
                        cur_e = emacs.ask(f"BackTo {node_e}.")
                    cur_e = emacs.ask(f"Timeout {TIMEOUT} {t}.")
                    emacs_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                step = backend.apply(node_o, t)
                ours_times.append(time.perf_counter() - t0)
                found_ours += int(isinstance(step, ProofFinished))
            bare.close()
            if emacs is not None:
                emacs.close()
    return bare_times, emacs_times, ours_times, found_bare, found_ours


def startup_costs(theorems: dict[str, Theorem], names: list[str]) -> None:
    print("\nstart and replacement costs (seconds)")
    for name in names:
        th = theorems[name]
        for spare in (False, True):
            cfg = ProverConfig(tactic_timeout=1.0, warm_spare=spare)
            with make_backend("coq", cfg) as b:
                t0 = time.perf_counter()
                root = b.start_theorem(th)
                start = time.perf_counter() - t0
                if spare:
                    # a first replacement makes the backend keep a spare; wait until it has loaded
                    b.apply(root.state_id, "do 1000000000 idtac")
                    b.apply(root.state_id, "intros")
                    b._pool.await_header(b._pool.spare)  # type: ignore[attr-defined]
                step = b.apply(root.state_id, "do 1000000000 idtac")  # times out: process replaced
                t0 = time.perf_counter()
                b.apply(root.state_id, "intros")
                after = time.perf_counter() - t0
                header = "Reals+Coquelicot" if "Coquelicot" in th.header else th.header.split("\n")[0]
                print(
                    f"  {name:22s} {header[:24]:24s} warm_spare={spare!s:5s} start_theorem={start:5.2f}"
                    f"  timeout={type(step).__name__}  next apply after it={after:5.2f}"
                )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    repo = Path(__file__).resolve().parents[1]
    ap.add_argument(
        "--data-dir",
        default=os.environ.get("LLEMMA_PROVER_DATA", str(repo.parent / "shared" / "benchmarks" / "minif2f")),
    )
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-startup", action="store_true")
    ap.add_argument("--emacs-too", action="store_true", help="also time a bare coqtop -emacs loop")
    args = ap.parse_args(argv)
    theorems = load(Path(args.data_dir))
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"coq-latency-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    bare_t: list[float] = []
    ours_t: list[float] = []
    per_b: list[float] = []
    per_e: list[float] = []
    per_o: list[float] = []
    for _ in range(args.rounds):
        b, e, o, found_b, found_o = run_round(theorems, workdir, args.emacs_too)
        bare_t.append(sum(b) / len(b))
        ours_t.append(sum(o) / len(o))
        per_b += b
        per_e += e
        per_o += o
    n = len(b)
    best_b, best_o = min(bare_t), min(ours_t)
    tot_b, tot_o = sum(per_b) / len(per_b), sum(per_o) / len(per_o)
    print(f"{n} tactics per round on {len(WORKLOAD)} miniF2F goals, {args.rounds} rounds, interleaved")
    print(f"  proofs found per round: backend {found_o}, bare loop {found_b}")
    print(
        f"  bare coqidetop loop: mean {tot_b * 1000:7.2f} ms/tactic   best round {best_b * 1000:7.2f}"
        f"   median tactic {statistics.median(per_b) * 1000:6.2f}"
    )
    if per_e:
        print(
            f"  bare coqtop -emacs : mean {sum(per_e) / len(per_e) * 1000:7.2f} ms/tactic"
            f"   median tactic {statistics.median(per_e) * 1000:6.2f}   (reference only)"
        )
    print(
        f"  CoqBackend.apply   : mean {tot_o * 1000:7.2f} ms/tactic   best round {best_o * 1000:7.2f}"
        f"   median tactic {statistics.median(per_o) * 1000:6.2f}"
    )
    print(
        f"  ratio backend/bare: mean {tot_o / tot_b:5.3f}   best round {best_o / best_b:5.3f}"
        f"   median tactic {statistics.median(per_o) / statistics.median(per_b):5.3f}   (goal <= 1.2)"
    )
    if not args.no_startup:
        startup_costs(theorems, [w[0] for w in WORKLOAD] + [COQUELICOT])
    return 0


if __name__ == "__main__":
    sys.exit(main())
