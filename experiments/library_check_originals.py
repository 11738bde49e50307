"""The in-context check on original proofs: can it say yes on real library lemmas?

Draws (by seed) two lemmas per given stdlib file whose original proof is ``Proof.``, plain tactic
sentences (no bullets, braces or comments), ``Qed.``, and checks that proof with
``LibraryRechecker`` as if a model had found it (automation: those of Lia and Ring the graph allows).

    python experiments/library_check_originals.py SEED FILE.v ...
"""

import random
import re
import sys
import time
from pathlib import Path

from llemma_prover.backends.coq.library_check import LemmaContext, LibraryRechecker, trusted_sentences
from llemma_prover.backends.coq.library_deps import LibraryDeps
from llemma_prover.backends.sandbox import Sandbox
from llemma_prover.extract.sources import coq_stdlib

STATEMENT_RE = re.compile(
    r"^(?:#\[[^\]]*\]\s*)?(?:Local\s+|Global\s+)?(Lemma|Theorem|Corollary|Fact|Remark|Proposition)\s+([\w']+)"
)


def main() -> None:
    src = coq_stdlib()
    deps = LibraryDeps.build(src)
    bank = ["Coq.micromega.Lia", "Coq.setoid_ring.Ring"]
    chk = LibraryRechecker(Sandbox.detect(), deps=deps)
    rng = random.Random(int(sys.argv[1]))
    files = sys.argv[2:]
    for rel in files:
        text = (Path(src.root) / rel).read_text()
        sents = trusted_sentences(text)
        cands = []
        for i, (s, e, t) in enumerate(sents):
            m = STATEMENT_RE.match(t)
            if not m:
                continue
            body = []
            j = i + 1
            if j < len(sents) and sents[j][2].startswith("Proof"):
                if sents[j][2] != "Proof":
                    continue
                j += 1
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
            cands.append((m.group(2), s, e, raw))
        for name, s, e, raw in rng.sample(cands, min(2, len(cands))):
            stmt_start = s + len(text[s:e]) - len(text[s:e].lstrip())
            ctx = LemmaContext(
                library="coq-stdlib",
                logical="Coq",
                root=src.root,
                rel=rel,
                args=("-noinit",) if rel.startswith("Init/") else (),
                prefix=text[:stmt_start],
                statement=text[stmt_start:e],
                name=name,
                automation=deps.automation_for(rel, bank),
            )
            t = time.time()
            r = chk.check(ctx, raw)
            print(
                f"{rel} {name} line {text.count(chr(10), 0, s) + 1}: ok={r.ok} {time.time() - t:.1f}s "
                f"{r.message[:300]!r}",
                flush=True,
            )


if __name__ == "__main__":
    main()
