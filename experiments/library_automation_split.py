"""How many stdlib test-split files and ``Qed``/``Defined`` proofs each automation import excludes.

An automation module is loaded for a lemma only where its transitive closure (``coqdep``) does not
contain the lemma's file (``LibraryDeps.automation_for``). Prints, for each module and for the whole
bank set, the test-split files whose lemmas must go without it and their proofs (sentences ending in
``Qed``/``Defined``, comments skipped: ``Proof. by t. Qed.`` on one line counts too).

    python experiments/library_automation_split.py [--split test]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llemma_prover.backends.coq.library_check import trusted_sentences
from llemma_prover.backends.coq.library_deps import LibraryDeps
from llemma_prover.extract.sources import coq_stdlib, file_split, v_files

BANK = [
    "Coq.micromega.Lia", "Coq.micromega.Lra", "Coq.micromega.Psatz", "Coq.setoid_ring.Ring",
    "Coq.setoid_ring.Field", "Coq.omega.PreOmega", "Coq.micromega.ZifyNat", "Coq.micromega.ZifyN",
    "Hammer.Tactics.Tactics",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    src = coq_stdlib()
    deps = LibraryDeps.build(src)
    files = [r for r in v_files(src.root) if file_split(src.library, r) == args.split]
    proofs = {}
    for rel in files:
        text = (Path(src.root) / rel).read_text(encoding="utf-8", errors="replace")
        ends = [s.split()[-1] for _, _, s in trusted_sentences(text) if s.split()]
        proofs[rel] = sum(1 for e in ends if e in ("Qed", "Defined"))
    print(f"{args.split} split: {len(files)} files, {sum(proofs.values())} Qed/Defined proofs")
    without_any: dict[str, int] = {}
    for module in BANK:
        hit = [r for r in files if module not in deps.automation_for(r, [module])]
        print(f"  without {module:28s} {len(hit):3d} files {sum(proofs[r] for r in hit):5d} proofs")
        for r in hit:
            without_any[r] = proofs[r]
    n_any = sum(without_any.values())
    print(f"  without part of the bank set  {len(without_any):3d} files {n_any:5d} proofs")
    everything = [r for r in files if deps.automation_for(r, BANK) == ()]
    n_all = sum(proofs[r] for r in everything)
    print(f"  without all of it             {len(everything):3d} files {n_all:5d} proofs")
    for rel in sorted(without_any, key=lambda r: -without_any[r]):
        kept = deps.automation_for(rel, BANK)
        print(f"    {rel:32s} {without_any[rel]:4d} proofs; loads {len(kept)}/{len(BANK)}: "
              f"{' '.join(m.split('.')[-1] for m in kept) or '-'}")


if __name__ == "__main__":
    main()
