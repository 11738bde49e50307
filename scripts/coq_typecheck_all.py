#!/usr/bin/env python3
"""Type-check every miniF2F Coq statement with ``coqc``, as-is and after ``prepare_header``.

Each file is ``header + statement + "Proof. Admitted."``; a statement "checks" when coqc exits 0.
Usage::

    .venv/bin/python scripts/coq_typecheck_all.py [--data-dir DIR] [--jobs 2] [--timeout 120]

Prints, per split and in total, how many statements check as-is and after preparation, and the
names that fail (with the first line of coqc's error).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from llemma_prover.backends.coq.header import prepare_header  # noqa: E402


def default_data_dir() -> Path:
    from llemma_prover.data.minif2f import resolve_data_dir

    return resolve_data_dir(None, os.environ.get("LLEMMA_PROVER_DATA"))


def check_one(workdir: Path, tag: str, header: str, statement: str, timeout: float) -> tuple[bool, str]:
    path = workdir / f"{tag}.v"
    path.write_text(header + "\n" + statement + "\nProof.\nAdmitted.\n", encoding="utf-8")
    try:
        proc = subprocess.run(
            ["coqc", "-q", path.name],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        return False, f"timeout after {timeout:.0f} s"
    finally:
        for suffix in (".v", ".vo", ".vok", ".vos", ".glob"):
            (workdir / f"{tag}{suffix}").unlink(missing_ok=True)
            (workdir / f".{tag}.aux").unlink(missing_ok=True)
    if proc.returncode == 0:
        return True, ""
    err = (proc.stderr or proc.stdout).strip().splitlines()
    msg = " ".join(line.strip() for line in err if line.strip() and not line.startswith("File "))
    return False, msg[:200]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=default_data_dir())
    ap.add_argument("--splits", default="test,valid")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--limit", type=int, default=None, help="first N statements per split (quick look)")
    args = ap.parse_args(argv)

    records = []
    for split in args.splits.split(","):
        from llemma_prover.data.minif2f import data_file, read_data_bytes

        text = read_data_bytes(data_file(args.data_dir, "coq", split)).decode("utf-8")
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        records += lines[: args.limit] if args.limit else lines

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="coq_typecheck_") as tmp:
        work = Path(tmp)
        jobs = []
        for i, rec in enumerate(records):
            jobs.append((f"A{i}", rec, "as-is", rec["header"]))
            jobs.append((f"P{i}", rec, "prepared", prepare_header(rec["header"])))
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(
                pool.map(lambda j: check_one(work, j[0], j[3], j[1]["statement"], args.timeout), jobs)
            )

    table: dict[tuple[str, str], list[int]] = {}
    failures: list[str] = []
    for (_tag, rec, mode, _h), (ok, msg) in zip(jobs, results, strict=True):
        for key in ((rec["split"], mode), ("total", mode)):
            cell = table.setdefault(key, [0, 0])
            cell[0] += ok
            cell[1] += 1
        if not ok:
            failures.append(f"  [{mode}] {rec['split']}/{rec['name']}: {msg}")

    for split in [*args.splits.split(","), "total"]:
        a, p = table[(split, "as-is")], table[(split, "prepared")]
        print(f"{split:>6}: as-is {a[0]}/{a[1]} type-check; prepared {p[0]}/{p[1]} type-check")
    if failures:
        print("failures:")
        print("\n".join(failures))
    print(f"({time.monotonic() - t0:.0f} s with {args.jobs} coqc processes)")
    return 0 if table[("total", "prepared")][0] == table[("total", "prepared")][1] else 1


if __name__ == "__main__":
    sys.exit(main())
