"""Seconds of in-context check per proof: lemma by lemma (``check``) vs one batch (``check_batch``).

Takes the first N lemmas of a stdlib file (or N drawn by SEED, in file order) whose original proof
is ``Proof.``, plain tactic sentences, ``Qed.``, and checks those original proofs as if a model had
found them: once lemma by lemma (each lemma's reference compiled, as on its first check), once as one
batch; both with the reference cache off. Wall seconds, under whatever load the machine has (printed
before and after).

    python experiments/library_batch_cost.py FILE.v N [SEED] [--batch-only]
"""

import random
import re
import sys
import time
from pathlib import Path

from llemma_prover.backends.coq.library_check import (
    BatchItem,
    LemmaContext,
    LibraryRechecker,
    trusted_sentences,
)
from llemma_prover.backends.coq.library_deps import LibraryDeps
from llemma_prover.backends.sandbox import Sandbox
from llemma_prover.extract.sources import coq_stdlib

STATEMENT_RE = re.compile(
    r"^(?:#\[[^\]]*\]\s*)?(?:Local\s+|Global\s+)?(Lemma|Theorem|Corollary|Fact|Remark|Proposition)\s+([\w']+)"
)


def candidates(text: str) -> list[tuple[str, int, int, int, list[str]]]:
    """(name, statement start, statement end, proof end, tactic sentences) of plain Qed proofs."""
    sents = trusted_sentences(text)
    out = []
    for i, (s, e, t) in enumerate(sents):
        m = STATEMENT_RE.match(t)
        if not m:
            continue
        j = i + 1
        if j < len(sents) and sents[j][2].startswith("Proof"):
            if sents[j][2] != "Proof":
                continue
            j += 1
        body = []
        while j < len(sents) and sents[j][2] not in ("Qed", "Defined", "Admitted", "Abort"):
            body.append(sents[j][2])
            j += 1
        if j >= len(sents) or sents[j][2] != "Qed" or not body:
            continue
        if any(re.match(r"^[-+*{}]", b) or b.endswith("}") for b in body):
            continue
        raw = [text[sents[k][0] : sents[k][1]].strip() for k in range(j - len(body), j)]
        if any("(*" in r for r in raw):
            continue
        start = s + len(text[s:e]) - len(text[s:e].lstrip())
        out.append((m.group(2), start, e, sents[j][1], raw))
    return out


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rel, n = args[0], int(args[1])
    src = coq_stdlib()
    deps = LibraryDeps.build(src)
    text = (Path(src.root) / rel).read_text()
    cands = candidates(text)
    if len(args) > 2:
        cands = sorted(random.Random(int(args[2])).sample(cands, min(n, len(cands))), key=lambda c: c[1])
    cands = cands[:n]
    automation = deps.automation_for(rel, ["Coq.micromega.Lia", "Coq.setoid_ring.Ring"])
    items = [
        BatchItem(
            LemmaContext(library="coq-stdlib", logical="Coq", root=src.root, rel=rel,
                         args=("-noinit",) if rel.startswith("Init/") else (), prefix=text[:s],
                         statement=text[s:e], name=name, automation=automation),
            tuple(raw), end)
        for name, s, e, end, raw in cands
    ]
    print(f"{rel}: {len(items)} lemmas {[it.ctx.name for it in items]}, automation {automation}", flush=True)
    with open("/proc/loadavg") as fh:
        print("load before:", fh.read().split()[:3], flush=True)
    if "--batch-only" not in sys.argv:
        chk = LibraryRechecker(Sandbox.detect(), deps=deps, disk_cache=False)
        t = time.monotonic()
        oks = [chk.check(it.ctx, list(it.tactics)).ok for it in items]
        wall = time.monotonic() - t
        print(f"one by one: {sum(oks)}/{len(items)} ok, {wall / len(items):.1f} s wall per proof "
              f"({wall:.1f} s in all)", flush=True)
    chk = LibraryRechecker(Sandbox.detect(), deps=deps, disk_cache=False)
    t = time.monotonic()
    res = chk.check_batch(items)
    wall = time.monotonic() - t
    print(f"batch: {sum(r.ok for r in res)}/{len(items)} ok, {wall / len(items):.1f} s wall per proof "
          f"({wall:.1f} s in all); "
          f"fallback: {bool(chk.times['batch_fallbacks'])} {chk.last_batch_refusal[:300]!r}", flush=True)
    with open("/proc/loadavg") as fh:
        print("load after:", fh.read().split()[:3], flush=True)


if __name__ == "__main__":
    main()
