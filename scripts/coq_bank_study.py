#!/usr/bin/env python3
"""Measure which single Coq tactics close which miniF2F goals (the study behind the ``bank`` generator).

For each problem, one ``coqc`` run checks ``prepare_header(header) + statement + "Proof."`` followed by
one probe per candidate tactic::

    Time first [ assert_succeeds (solve [timeout T (TACTIC)]); idtac "@@OK i" | idtac "@@NO i" ].

``assert_succeeds`` backtracks, so every probe starts from the root goal; ``solve`` counts only a
tactic that closes every goal; ``Time`` reports what the probe cost. Results go to a JSONL file, one
line per problem: ``{"name", "split", "results": {tactic: [ok, seconds]}}``; a summary table (solved
alone, unique solves, time spent on failures) is printed at the end.

Usage::

    .venv/bin/python scripts/coq_bank_study.py --split test --jobs 2 --timeout 3 --out /tmp/study.jsonl
    .venv/bin/python scripts/coq_bank_study.py --summary /tmp/study.jsonl     # table only

``--tactics FILE`` takes one candidate per line (default: the Coq bank of ``generators/bank.py`` plus
``EXTRA`` below, to compare with candidates that did not make it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from llemma_prover.backends.coq.header import prepare_header  # noqa: E402

_OK_RE = re.compile(r"@@(OK|NO) (\d+)")
_TIME_RE = re.compile(r"Finished transaction in ([0-9.]+) secs")


def default_data_dir() -> Path:
    env = os.environ.get("LLEMMA_PROVER_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "benchmarks" / "minif2f")


def default_tactics() -> list[str]:
    try:
        from llemma_prover.generators.bank import COQ_BANK, COQ_STUDY_EXTRA

        bank = [e.tactic for e in COQ_BANK]
        return bank + [t for t in COQ_STUDY_EXTRA if t not in bank]
    except ImportError:
        sys.exit("no bank yet: pass --tactics FILE")


def probe(workdir: Path, idx: int, rec: dict, tactics: list[str], timeout: float) -> dict:
    """Run every probe for one problem; a coqc crash mid-way restarts after the crashing probe."""
    results: dict[str, list] = {}
    start = 0
    while start < len(tactics):
        lines = [prepare_header(rec["header"]), rec["statement"], "Proof."]
        for i in range(start, len(tactics)):
            lines.append(
                f'Time first [ assert_succeeds (solve [timeout {timeout:g} ({tactics[i]})]); idtac "@@OK {i}"'
                f' | idtac "@@NO {i}" ].'
            )
        lines.append("Admitted.")
        path = workdir / f"S{idx}.v"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        wall_limit = 30 + 3 * timeout * (len(tactics) - start)
        try:
            proc = subprocess.run(
                ["coqc", "-q", path.name],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=wall_limit,
                start_new_session=True,
            )
            out, rc = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            rc = -9
        finally:
            for suffix in (".v", ".vo", ".vok", ".vos", ".glob"):
                (workdir / f"S{idx}{suffix}").unlink(missing_ok=True)
        marks = [(m.start(), m.group(1) == "OK", int(m.group(2))) for m in _OK_RE.finditer(out)]
        times = [(m.start(), float(m.group(1))) for m in _TIME_RE.finditer(out)]
        last = start - 1
        for pos, ok, i in marks:
            secs = next((t for p, t in times if p > pos), float("nan"))
            results[tactics[i]] = [ok, secs]
            last = i
        if rc == 0 or last == len(tactics) - 1:
            break
        # coqc died (anomaly, stack overflow, wall limit) on probe last+1: record it as a failure
        crashed = last + 1
        results[tactics[crashed]] = [False, float("nan")]
        if last < start - 1 or crashed >= len(tactics) - 1:
            break
        start = crashed + 1
    return {"name": rec["name"], "split": rec["split"], "results": results}


def summarize(rows: list[dict], timeout: float | None = None) -> str:
    tactics: list[str] = []
    for r in rows:
        for t in r["results"]:
            if t not in tactics:
                tactics.append(t)
    solved_by: dict[str, set[str]] = {t: set() for t in tactics}
    fail_time: dict[str, float] = dict.fromkeys(tactics, 0.0)
    timeouts: dict[str, int] = dict.fromkeys(tactics, 0)
    for r in rows:
        for t, (ok, secs) in r["results"].items():
            if ok:
                solved_by[t].add(r["name"])
            else:
                s = secs if secs == secs else (timeout or 0.0)
                fail_time[t] += s
                if timeout and s >= 0.95 * timeout:
                    timeouts[t] += 1
    union = set().union(*solved_by.values()) if solved_by else set()
    out = [f"{len(rows)} problems; solved by some tactic: {len(union)}"]
    out.append(f"{'solves':>6} {'unique':>6} {'fail_s':>8} {'t/o':>4}  tactic")
    for t in sorted(tactics, key=lambda t: (-len(solved_by[t]), fail_time[t])):
        others = set().union(*(solved_by[u] for u in tactics if u != t))
        n, uniq = len(solved_by[t]), len(solved_by[t] - others)
        out.append(f"{n:6d} {uniq:6d} {fail_time[t]:8.1f} {timeouts[t]:4d}  {t}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=default_data_dir())
    ap.add_argument("--split", default="test")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds per probe (Coq's timeout)")
    ap.add_argument("--tactics", type=Path, default=None)
    ap.add_argument("--names", default="", help="comma-separated subset of problems")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--summary", type=Path, default=None, help="only print the table of a previous --out")
    args = ap.parse_args(argv)

    if args.summary:
        rows = [json.loads(line) for line in args.summary.read_text().splitlines() if line.strip()]
        print(summarize(rows, args.timeout))
        return 0

    tactics = (
        [t.strip() for t in args.tactics.read_text().splitlines() if t.strip() and not t.startswith("#")]
        if args.tactics
        else default_tactics()
    )
    with open(args.data_dir / "coq" / f"{args.split}.jsonl", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    if args.names:
        wanted = set(args.names.split(","))
        records = [r for r in records if r["name"] in wanted]

    t0 = time.monotonic()
    rows: list[dict] = []
    out = open(args.out, "w", encoding="utf-8") if args.out else None  # noqa: SIM115
    try:
        with (
            tempfile.TemporaryDirectory(prefix="coq_bank_study_") as tmp,
            ThreadPoolExecutor(args.jobs) as pool,
        ):
            work = Path(tmp)
            futures = [pool.submit(probe, work, i, r, tactics, args.timeout) for i, r in enumerate(records)]
            for fut in futures:
                row = fut.result()
                rows.append(row)
                if out:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
    finally:
        if out:
            out.close()
    print(summarize(rows, args.timeout))
    print(f"({time.monotonic() - t0:.0f} s wall, {args.jobs} coqc processes, {len(tactics)} probes/problem)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
