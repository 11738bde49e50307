#!/usr/bin/env python3
"""Build the miniF2F copy shipped inside the package (``llemma_prover/data/benchmarks/minif2f``).

Reads a miniF2F folder in the ``<system>/<split>.jsonl`` layout (default: ``$LLEMMA_PROVER_DATA``,
else ``../shared/benchmarks/minif2f`` beside the checkout) and writes, for each of coq/lean4/isabelle x
test/valid, ``<system>/<split>.jsonl.gz``: the source file's bytes unchanged, gzip-compressed
reproducibly (no file name, mtime 0), so that running the script twice gives identical files.
The source folder's README (layout, conventions, repositories and commits,
licences) becomes ``PROVENANCE.md``; the licence texts are written beside it.
Statements and informal text only: the source files hold no proofs.

    python scripts/build_minif2f_data.py [--source DIR] [--check]

``--check`` writes nothing and exits 1 when the shipped copy differs from what the source would give.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "llemma_prover" / "data" / "benchmarks" / "minif2f"
SYSTEMS = ("coq", "lean4", "isabelle")
SPLITS = ("test", "valid")

PROVENANCE_INTRO = """\
# Provenance of the shipped miniF2F data

The six `<system>/<split>.jsonl.gz` files here are the gzip-compressed bytes of the miniF2F statement
files described below (statements and informal text only; no proofs). They were built with
`scripts/build_minif2f_data.py` from the folder whose README follows; `tests/test_shipped_data.py`
proves, statement by statement (sha256), that this copy equals that folder where it exists.
Licences: `LICENSE-miniF2F-rocq` (MIT, Coq statements), `LICENSE-miniF2F-lean4` (MIT, Lean 4
statements), `LICENSE-miniF2F` (MIT, informal statements and proofs) and `LICENSE-miniF2F-isabelle`
(Apache-2.0, Isabelle statements). The MIT texts are the standard text with the copyright line each
repository's LICENSE file states; the Apache-2.0 text is the standard one.

---

"""

MIT = """\
MIT License

Copyright (c) {holder}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

MIT_HOLDERS = {
    "LICENSE-miniF2F-rocq": "2025 LLM4Rocq",
    "LICENSE-miniF2F-lean4": "Meta Platforms, Inc. and affiliates.",
    "LICENSE-miniF2F": "Meta Platforms, Inc. and affiliates.",
}
APACHE = Path("/usr/share/common-licenses/Apache-2.0")


def compress(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def planned(source: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every data file the shipped copy should hold."""
    out: dict[str, bytes] = {}
    for system in SYSTEMS:
        for split in SPLITS:
            out[f"{system}/{split}.jsonl.gz"] = compress((source / system / f"{split}.jsonl").read_bytes())
    out["PROVENANCE.md"] = (PROVENANCE_INTRO + (source / "README.md").read_text(encoding="utf-8")).encode()
    for name, holder in MIT_HOLDERS.items():
        out[name] = MIT.format(holder=holder).encode()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("LLEMMA_PROVER_DATA") or REPO.parent / "shared" / "benchmarks" / "minif2f"
    ap.add_argument("--source", type=Path, default=Path(default),
                    help="miniF2F folder (default: $LLEMMA_PROVER_DATA, else ../shared/benchmarks/minif2f)")
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = ap.parse_args(argv)
    if not (args.source / "coq" / "test.jsonl").is_file():
        print(f"no miniF2F folder at {args.source}", file=sys.stderr)
        return 2
    files = planned(args.source)
    differ = [rel for rel, data in files.items()
              if not (TARGET / rel).is_file() or (TARGET / rel).read_bytes() != data]
    if args.check:
        for rel in differ:
            print(f"differs: {rel}")
        return 1 if differ else 0
    for rel, data in files.items():
        (TARGET / rel).parent.mkdir(parents=True, exist_ok=True)
        (TARGET / rel).write_bytes(data)
    if APACHE.is_file():
        shutil.copyfile(APACHE, TARGET / "LICENSE-miniF2F-isabelle")
    elif not (TARGET / "LICENSE-miniF2F-isabelle").is_file():
        print(f"Apache-2.0 text not found at {APACHE}: add LICENSE-miniF2F-isabelle by hand", file=sys.stderr)
        return 1
    print(f"wrote {len(files)} files to {TARGET.relative_to(REPO)} ({len(differ)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
