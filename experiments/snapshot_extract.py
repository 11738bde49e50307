"""Freeze the files an `extract` run has finished so far into an extract folder of their own.

    python experiments/snapshot_extract.py runs/extract-coq-stdlib runs/retrieval-snapshot-stdlib

Used for the issue-12 retrieval evaluation, which had to start before the full stdlib extraction ended
on the shared 2-core machine: the snapshot (steps.jsonl + card.json with "partial": true and the list
of files it holds) is fixed before any minif2f run reads it, and the same snapshot serves valid and test.
The card's contamination check is run again on the sources (miniF2F 30-gram overlap).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from llemma_prover.data.minif2f import DATA_ENV, resolve_data_dir
from llemma_prover.extract.card import build_card, check_contamination
from llemma_prover.extract.run import ExtractDir


def main(argv: list[str]) -> int:
    src, dst = Path(argv[0]), Path(argv[1])
    source = ExtractDir(src)
    summaries = [json.loads(p.read_text()) for p in sorted(source.files.glob("*.json"))]
    keys = [f"{s['library']}/{s['file']}" for s in summaries]
    out = ExtractDir(dst)
    for s in summaries:
        key = f"{s['library']}/{s['file']}"
        (out.steps_path(key)).write_bytes(source.steps_path(key).read_bytes())
        (out.summary_path(key)).write_text(json.dumps(s, indent=1) + "\n")
    sha, lines = out.assemble(keys)
    settings = json.loads((src / "extract.json").read_text())
    data_dir = resolve_data_dir(None, os.environ.get(DATA_ENV), Path(__file__).resolve().parents[1])
    contamination = check_contamination([s["root"] for s in settings["sources"]], data_dir)
    card = build_card(summaries, sources=settings["sources"], steps_sha256=sha, steps_lines=lines,
                      options={}, wall_seconds=0.0, workers=0, command=["python", *sys.argv],
                      compile_errors={}, contamination=contamination,
                      extra={"partial": True, "snapshot_of": str(src.resolve()),
                             "files_included": sorted(keys)})
    (dst / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"{len(keys)} files, {card['counts']['proofs']} proofs, {lines} steps -> {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
