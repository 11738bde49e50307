#!/usr/bin/env python3
"""Copy the Lean 4 REPL's own test suite at a tag into the conformance fixtures.

    python scripts/import_repl_tests.py --repl PATH/TO/repl [--tag v4.32.0] [--out tests/fixtures/lean4_repl]

``PATH/TO/repl`` is a git clone of github.com/leanprover-community/repl (a bare clone works). Every file
under ``test/`` at the tag (``NAME.in`` requests, ``NAME.expected.out`` the real REPL's replies -- its
``test.sh`` runs ``repl < NAME.in > out 2>&1`` and diffs against them --, and the ``.lean`` files they
read) is written to ``OUT/TAG/test/``, with the REPL's ``LICENSE`` (Apache-2.0) and ``SOURCE.txt``
naming the repository, tag and commit. ``tests/test_lean4_repl_conformance.py`` feeds them through the
client. On a pin bump: run this with the new tag, point ``PINNED_TAG`` in that test at it, and run it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO_URL = "https://github.com/leanprover-community/repl"


def git(repl: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repl), *args], check=True, capture_output=True).stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repl", required=True, type=Path, help="a git clone of the REPL repository")
    ap.add_argument("--tag", default="v4.32.0")
    default_out = Path(__file__).resolve().parents[1] / "tests/fixtures/lean4_repl"
    ap.add_argument("--out", type=Path, default=default_out)
    args = ap.parse_args(argv)
    commit = git(args.repl, "rev-parse", f"{args.tag}^{{commit}}").decode().strip()
    files = git(args.repl, "ls-tree", "-r", "--name-only", commit, "test").decode().split("\n")
    dest = args.out / args.tag
    if dest.exists():
        shutil.rmtree(dest)
    n = 0
    for name in filter(None, files):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(git(args.repl, "show", f"{commit}:{name}"))
        n += 1
    (dest / "LICENSE").write_bytes(git(args.repl, "show", f"{commit}:LICENSE"))
    (dest / "SOURCE.txt").write_text(
        f"{REPO_URL} tag {args.tag} (commit {commit}), directory test/, unchanged.\n"
        "Licence: Apache-2.0 (LICENSE here). Written by scripts/import_repl_tests.py.\n"
    )
    print(f"{n} files of {REPO_URL} test/ at {args.tag} ({commit}) -> {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
