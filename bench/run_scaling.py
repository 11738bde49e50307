"""Whole-run wall time and worker scaling: the same ``prove`` run with 1 and with 2 Ray workers.

Each run is the real CLI (``python -c 'from llemma_prover.cli.main import main; ...' prove ...``) in a
new run directory, one run per worker count, on the same theorems, timed from the command's start to
its exit (Ray start, prover start-up, search, the independent checks, the report: what a user waits
for). Printed: wall seconds per run, theorems proved, the speed-up (1-worker wall / 2-worker wall),
whether the proved sets are equal, the sum of the workers' search and check seconds from the records,
the CPU seconds of the whole run (every process under it: a cgroup v1 ``cpuacct`` group, as root),
and the load average before and after (the machine may be shared: quote the ratio with the load).

Each run starts with an empty header-facts cache (what a new machine has: every header's allowed
axioms are computed, once per header and Coq installation). ``--known-facts`` computes them first,
untimed, into one cache that every run then reads (a machine that has seen these headers once): the
workers' scaling without that one-time cost.

Usage: ``python bench/run_scaling.py --theorems a,b,c | --theorems-file FILE [--split minif2f-valid]
[--workers 1,2] [--generator bank] [--known-facts] [--json OUT] [-- extra prove flags]``. Never tune on
test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _known_facts(split: str, theorems: list[str]) -> Path:
    """A header-facts cache holding every distinct header of ``theorems`` (Coq), computed here."""
    from llemma_prover.backends.coq.facts_cache import FactsCache
    from llemma_prover.backends.coq.header import theorem_header
    from llemma_prover.backends.coq.recheck import Rechecker
    from llemma_prover.backends.sandbox import Sandbox
    from llemma_prover.data.minif2f import load_split, resolve_data_dir

    data = load_split(resolve_data_dir(None, os.environ.get("LLEMMA_PROVER_DATA")), "coq",
                      split.removeprefix("minif2f-"))
    wanted = set(theorems)
    headers = {theorem_header(t.header, t.footer) for t in data.theorems if t.name in wanted}
    cache = Path(tempfile.mkdtemp(prefix="llemma-scaling-facts-"))
    rechecker = Rechecker(sandbox=Sandbox.detect(), facts_cache=FactsCache(cache))
    try:
        for header in sorted(headers):
            rechecker.header_facts(header, time.monotonic() + 600)
    finally:
        rechecker.close()
    print(f"header facts of {len(headers)} distinct headers computed first (untimed) into {cache}")
    return cache


def _run(split: str, theorems: list[str], workers: int, generator: str, extra: list[str],
         facts: Path | None = None) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix=f"llemma-scaling-w{workers}-")) / "run"
    argv = [
        sys.executable, "-c", "import sys; from llemma_prover.cli.main import main; sys.exit(main())",
        "prove", "--split", split, "--generator", generator, "--theorems", ",".join(theorems),
        "--workers", str(workers), "--out", str(out), *extra,
    ]
    # each run starts with an empty header-facts cache (LLEMMA_PROVER_CACHE), so the later run does not
    # reuse what the earlier one computed; or every run reads the one computed beforehand (--known-facts)
    cache = out.parent / "cache"
    if facts is not None:
        subprocess.run(["cp", "-r", str(facts), str(cache)], check=True)
    env = {**os.environ, "LLEMMA_PROVER_CACHE": str(cache)}
    load0 = os.getloadavg()
    group = _cpu_group(f"w{workers}")
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                          preexec_fn=None if group is None else _join(group))
    wall = time.monotonic() - t0
    cpu = _cpu_seconds(group)
    records = []
    results = out / "results.jsonl"
    if results.exists():
        records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    proved = sorted(r["theorem"] for r in records if r.get("status") == "proved")
    return {
        "workers": workers,
        "exit": proc.returncode,
        "wall_s": round(wall, 1),
        "theorems": len(records),
        "proved": proved,
        "search_s": round(sum((r.get("time") or {}).get("prover", 0.0) for r in records), 1),
        "check_s": round(sum((r.get("time") or {}).get("check", 0.0) for r in records), 1),
        # CPU seconds of the command and every process under it (Ray, workers, provers, checks), from a
        # cgroup v1 cpuacct group of its own; None where that cannot be made (not root, no cgroup v1)
        "cpu_s": None if cpu is None else round(cpu, 1),
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "run_dir": str(out),
        "stderr_tail": proc.stderr[-2000:] if proc.returncode else "",
    }


_CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def _cpu_group(tag: str) -> Path | None:
    """A new cpuacct cgroup for one run (every descendant of the run joins it), or None."""
    group = _CPUACCT / f"llemma-scaling-{os.getpid()}-{tag}"
    try:
        group.mkdir()
    except OSError:
        return None
    return group


def _join(group: Path) -> Any:
    def join() -> None:  # in the child, before exec
        (group / "cgroup.procs").write_text(str(os.getpid()))
    return join


def _cpu_seconds(group: Path | None) -> float | None:
    if group is None:
        return None
    seconds = int((group / "cpuacct.usage").read_text()) / 1e9
    with contextlib.suppress(OSError):  # a straggler still in it: left for the OS
        group.rmdir()
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="minif2f-valid")
    ap.add_argument("--theorems", default="")
    ap.add_argument("--theorems-file", type=Path, default=None)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--generator", default="bank")
    ap.add_argument("--known-facts", action="store_true",
                    help="compute every header's facts first (untimed) into one cache that each run copies")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("extra", nargs="*", help="more prove flags, after --")
    a = ap.parse_args(argv)
    names = [t for t in a.theorems.split(",") if t]
    if a.theorems_file is not None:
        names += [t.strip() for t in a.theorems_file.read_text().splitlines() if t.strip()]
    if not names:
        ap.error("give --theorems or --theorems-file")
    facts = _known_facts(a.split, names) if a.known_facts else None
    runs = [_run(a.split, names, int(w), a.generator, a.extra, facts) for w in a.workers.split(",")]
    for r in runs:
        print(
            f"{r['workers']} worker(s): {r['wall_s']:7.1f} s wall, "
            f"{len(r['proved'])}/{r['theorems']} proved, "
            f"search {r['search_s']} s, check {r['check_s']} s, CPU {r['cpu_s']} s, exit {r['exit']}, "
            f"load {r['load_average_before']}"
        )
    summary: dict[str, Any] = {"runs": runs, "known_facts": a.known_facts}
    if len(runs) >= 2 and runs[-1]["wall_s"] > 0:
        summary["speedup"] = round(runs[0]["wall_s"] / runs[-1]["wall_s"], 2)
        summary["same_proved"] = runs[0]["proved"] == runs[-1]["proved"]
        print(f"speed-up {runs[0]['workers']} -> {runs[-1]['workers']} workers: {summary['speedup']}x; "
              f"same proved set: {summary['same_proved']}")
    if a.json is not None:
        a.json.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0 if all(r["exit"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
