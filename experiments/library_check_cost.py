"""Seconds per in-context check of a stdlib lemma, with the lemma's original proof as the "model" proof.

    python experiments/library_check_cost.py Reals/RIneq.v Rle_refl "intro; right; reflexivity."

Checks twice: the first check also compiles and audits the lemma's reference (prefix + statement +
``Admitted.``), the second reuses it (``LibraryRechecker.reference_cache``). Prints the verdict and the
seconds spent per step (``LibraryRechecker.times``, summed over both checks).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from llemma_prover.backends.coq.library_check import LemmaContext, LibraryRechecker
from llemma_prover.backends.coq.library_deps import LibraryDeps
from llemma_prover.backends.sandbox import Sandbox
from llemma_prover.extract.sources import coq_stdlib


def main(rel: str, lemma: str, *tactics: str) -> None:
    src = coq_stdlib()
    text = (Path(src.root) / rel).read_text(encoding="utf-8")
    m = re.search(r"(?:Lemma|Theorem|Corollary|Fact|Remark|Proposition)\s+" + re.escape(lemma) + r"\b", text)
    if m is None:
        sys.exit(f"no lemma {lemma} in {rel}")
    end = re.compile(r"\.\s").search(text, m.start())
    assert end is not None
    deps = LibraryDeps.build(src)
    ctx = LemmaContext(library=src.library, logical=src.logical, root=src.root, rel=rel, args=(),
                       prefix=text[: m.start()], statement=text[m.start() : end.start() + 1], name=lemma,
                       automation=deps.automation_for(rel, ["Coq.micromega.Lia"]))
    print(f"{rel}:{text.count(chr(10), 0, m.start()) + 1} {lemma}, prefix {len(ctx.prefix)} chars, "
          f"automation {ctx.automation}, {len(deps.hidden_paths(rel))} files hidden")
    checker = LibraryRechecker(Sandbox.detect(), deps=deps)
    for label in ("first check", "second check (reference cached)"):
        t = time.monotonic()
        result = checker.check(ctx, list(tactics))
        print(f"  {label}: ok={result.ok} {time.monotonic() - t:.1f} s {result.message[:200]}")
    print("  seconds per step, both checks:", {k: round(v, 1) for k, v in checker.times.items()})


if __name__ == "__main__":
    main(*sys.argv[1:])
