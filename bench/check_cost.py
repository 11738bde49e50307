"""The independent check's cost per proof, old and new side by side on the same proofs (issue 21).

Reads the proved records of a run directory (``prove --out DIR``), loads their theorems from the
miniF2F data, and re-checks every proof twice, interleaved proof by proof (the order alternates) so
that load from other processes hits both alike:

* **old**: ``Rechecker(identity="reference", warm_parsers=0)``: the check as it was before issue 21
  (two compiles, coqchk, two print files, a new step-0 coqidetop per check);
* **new**: ``Rechecker()`` as the prove job builds it (``identity="auto"``: the one-file identity for
  headers without objects of their own, the reference files otherwise; step-0 parsers kept warm).

Each side has its own ``Rechecker``, so each pays its own per-header work (``HeaderFacts``) once per
distinct header, inside the amortized figures. CPU is the user + system time of the processes each
check started and reaped (``RUSAGE_CHILDREN`` before and after it; the checks run one at a time), plus,
for the new side, the warm parsers' CPU when they are stopped at the end. Both verdicts must agree.

Afterwards (``--batch N``, default 8) the same proofs go through ``Rechecker.check_batch``, up to N
proofs of one header per call (one coqchk and one identity file per call), with a fresh ``Rechecker``
and header cache, and the amortized CPU per proof of that is printed too. ``--batch run``: the batches
the run's checker actually made (``workers/checker.py``: proofs of several headers per batch; each
record's ``extra.check_batch_no`` names its batch, or, in runs made before that was recorded, a batch's
records are the consecutive ones of one ``extra.check_batch`` size), its proved proofs each.

Usage: ``python bench/check_cost.py RUN_DIR [--split minif2f-valid] [--data-dir DIR] [--limit N]
[--json OUT] [--cache-dir DIR] [--batch N] [--env-axioms-too]``. Never tune on test: take proofs
from a valid run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from llemma_prover.backends.coq.facts_cache import FactsCache
from llemma_prover.backends.coq.header import prepare_header
from llemma_prover.backends.coq.recheck import BatchItem, Rechecker, final_tactics, theorem_name
from llemma_prover.backends.sandbox import Sandbox
from llemma_prover.data.minif2f import load_split, resolve_data_dir

CHECK_TIMEOUT = 600.0


class CpuMeter:
    """CPU seconds of this process and everything it starts.

    A cgroup v1 ``cpuacct`` group of its own (``/sys/fs/cgroup/cpuacct``, writable as root): every
    descendant inherits it, sandboxed ones included, however they are reaped. Without it, the
    user + system time of this process and its reaped children (``getrusage``; misses processes
    reaped elsewhere, so it is marked as such in the output)."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self) -> None:
        self.group: Path | None = self.ROOT / f"llemma-check-cost-{os.getpid()}"
        try:
            self.group.mkdir()
            (self.group / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            self.group = None
        self.source = "cgroup cpuacct" if self.group is not None else "getrusage (children reaped here only)"

    def seconds(self) -> float:
        if self.group is not None:
            return int((self.group / "cpuacct.usage").read_text()) / 1e9
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            r = resource.getrusage(who)
            total += r.ru_utime + r.ru_stime
        return total

    def close(self) -> None:
        if self.group is not None:
            (self.ROOT / "cgroup.procs").write_text(str(os.getpid()))
            with contextlib.suppress(OSError):  # a straggler still in it: left for the OS
                self.group.rmdir()


def _check(
    meter: CpuMeter, rechecker: Rechecker, theorem: Any, proof: list[str]
) -> tuple[bool, float, float, str]:
    """(ok, wall seconds, CPU seconds, message)."""
    cpu0, t0 = meter.seconds(), time.monotonic()
    res = rechecker.check(
        header=prepare_header(theorem.header),
        statement=theorem.statement,
        tactics=final_tactics(proof),
        name=theorem_name(theorem.statement) or theorem.name,
        timeout=CHECK_TIMEOUT,
    )
    return res.ok, time.monotonic() - t0, meter.seconds() - cpu0, res.message


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--split", default=None, help="minif2f-valid or minif2f-test (default: the run's own)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--cache-dir", type=Path, default=None,
        help="the new side's header-facts cache (default: a new empty one, so its per-header work is "
        "paid in this run as the old side's is; give the prove job's cache to measure a warm one)",
    )
    ap.add_argument(
        "--batch", default="8",
        help="afterwards, the same proofs through Rechecker.check_batch, up to N of one header per call "
        "(0 or 1: skip); 'run': in the batches the run's checker made",
    )
    ap.add_argument(
        "--env-axioms-too", action="store_true",
        help="a third side: the new check listing the environment's axioms (Rechecker(assumptions=False))",
    )
    ap.add_argument(
        "--batch-only", action="store_true",
        help="only the batched path (no old/new one-by-one sides): its CPU per proof, batch sizes, load",
    )
    ap.add_argument(
        "--batch-cache-dir", type=Path, default=None,
        help="the batched path's header-facts cache (default: a new empty one; give the prove job's "
        "cache, ~/.cache/llemma-prover/..., to measure a run whose headers' facts are already known)",
    )
    a = ap.parse_args(argv)

    records = [json.loads(line) for line in (a.run_dir / "results.jsonl").read_text().splitlines() if line]
    proved = [r for r in records if r.get("status") == "proved" and r.get("proof")]
    if not proved:
        print("no proved record in", a.run_dir, file=sys.stderr)
        return 2
    split = a.split or proved[0]["split"]
    short = split.removeprefix("minif2f-")
    data = load_split(resolve_data_dir(a.data_dir, os.environ.get("LLEMMA_PROVER_DATA")), "coq", short)
    by_name = {t.name: t for t in data.theorems}
    proved = [r for r in proved if r["theorem"] in by_name][: a.limit]

    meter = CpuMeter()
    try:
        return _bench(a, proved, by_name, meter)
    finally:
        meter.close()


def _bench(
    a: argparse.Namespace, proved: list[dict[str, Any]], by_name: dict[str, Any], meter: CpuMeter
) -> int:
    sandbox = Sandbox.detect()
    cache_dir = Path(tempfile.mkdtemp(prefix="llemma-check-cost-")) if a.cache_dir is None else a.cache_dir
    batch_cache = cache_dir / "batch" if a.batch_cache_dir is None else a.batch_cache_dir
    if a.batch_only:
        load0 = os.getloadavg()
        batch = _batch_side(a, proved, by_name, meter, sandbox, batch_cache)
        del batch["accepted_list"]
        out = {"proofs": len(proved), "cpu_measured_by": meter.source, "batch_header_cache": str(batch_cache),
               "load_average_before": [round(x, 2) for x in load0],
               "load_average_after": [round(x, 2) for x in os.getloadavg()], "batch": batch}
        print(json.dumps(out, indent=2))
        if a.json is not None:
            a.json.write_text(json.dumps({"summary": out}, indent=1) + "\n", encoding="utf-8")
        return 0
    sides = {
        "old": Rechecker(sandbox=sandbox, identity="reference", warm_parsers=0),
        "new": Rechecker(sandbox=sandbox, facts_cache=FactsCache(cache_dir)),
    }
    if a.env_axioms_too:
        sides["new_env_axioms"] = Rechecker(
            sandbox=sandbox, facts_cache=FactsCache(cache_dir / "env"), assumptions=False
        )
    rows: list[dict[str, Any]] = []
    load0 = os.getloadavg()
    t_start = time.monotonic()
    for i, rec in enumerate(proved):
        theorem = by_name[rec["theorem"]]
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        row: dict[str, Any] = {"theorem": theorem.name, "tactics": len(rec["proof"])}
        for side in order:
            ok, wall, cpu, message = _check(meter, sides[side], theorem, rec["proof"])
            row[side] = {"ok": ok, "wall": round(wall, 3), "cpu": round(cpu, 3), "message": message[:300]}
        rows.append(row)
        print(
            f"{theorem.name[:50]:50s}"
            + "".join(f" | {s} {row[s]['cpu']:5.2f} s CPU {row[s]['wall']:5.2f} s wall" for s in sides)
            + ("" if len({row[side]["ok"] for side in sides}) == 1 else "  VERDICTS DIFFER"),
            flush=True,
        )
    closing: dict[str, float] = {}
    for side, rechecker in sides.items():
        cpu0 = meter.seconds()
        rechecker.close()
        closing[side] = meter.seconds() - cpu0
    batch = None
    if a.batch == "run" or int(a.batch) > 1:
        batch = _batch_side(a, proved, by_name, meter, sandbox, batch_cache)
    load1 = os.getloadavg()

    n = len(rows)
    summary: dict[str, Any] = {
        "proofs": n,
        "new_side_header_cache": str(cache_dir),
        "cpu_measured_by": meter.source,
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in load1],
        "bench_wall_s": round(time.monotonic() - t_start, 1),
        "verdicts_differ": [r["theorem"] for r in rows if len({r[side]["ok"] for side in sides}) > 1],
    }
    for side in sides:
        cpu = sum(r[side]["cpu"] for r in rows) + closing[side]
        walls = [r[side]["wall"] for r in rows]
        summary[side] = {
            "accepted": sum(r[side]["ok"] for r in rows),
            "cpu_per_proof_amortized": round(cpu / n, 3),
            "wall_per_proof_mean": round(statistics.fmean(walls), 3),
            "wall_per_proof_median": round(statistics.median(walls), 3),
            "steps_s": {k: round(v, 2) for k, v in sides[side].times.items()},
        }
    summary["cpu_ratio_old_over_new"] = round(
        summary["old"]["cpu_per_proof_amortized"] / summary["new"]["cpu_per_proof_amortized"], 2
    )
    summary["wall_ratio_old_over_new"] = round(
        summary["old"]["wall_per_proof_mean"] / summary["new"]["wall_per_proof_mean"], 2
    )
    if "new_env_axioms" in sides:
        old, lean = (summary[k]["cpu_per_proof_amortized"] for k in ("old", "new_env_axioms"))
        summary["cpu_ratio_old_over_new_env_axioms"] = round(old / lean, 2)
    if batch is not None:
        summary["batch"] = batch
        summary["cpu_ratio_old_over_batch"] = round(
            summary["old"]["cpu_per_proof_amortized"] / batch["cpu_per_proof_amortized"], 2
        )
        if batch["accepted_list"] != [r["new"]["ok"] for r in rows]:
            summary["verdicts_differ"].append("batch")
        del batch["accepted_list"]
    print(json.dumps(summary, indent=2))
    if a.json is not None:
        a.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    return 1 if summary["verdicts_differ"] else 0


def _batch_side(
    a: argparse.Namespace, proved: list[dict[str, Any]], by_name: dict[str, Any], meter: CpuMeter,
    sandbox: Sandbox, cache_dir: Path,
) -> dict[str, Any]:
    """The same proofs through ``Rechecker.check_batch``, ``a.batch`` proofs of one header per call
    (a fresh ``Rechecker`` and header cache: its per-header work is paid here too)."""
    rechecker = Rechecker(sandbox=sandbox, facts_cache=FactsCache(cache_dir))
    items = []
    for rec in proved:
        t = by_name[rec["theorem"]]
        items.append(BatchItem(prepare_header(t.header), t.statement, tuple(final_tactics(rec["proof"])),
                               theorem_name(t.statement) or t.name))
    chunks = _run_batches(a.run_dir, proved) if a.batch == "run" else _header_batches(items, int(a.batch))
    ok: list[bool] = [False] * len(items)
    cpu0, t0 = meter.seconds(), time.monotonic()
    for chunk in chunks:
        results = rechecker.check_batch([items[i] for i in chunk], CHECK_TIMEOUT)
        for i, res in zip(chunk, results, strict=True):
            ok[i] = res.ok
    rechecker.close()
    cpu, wall = meter.seconds() - cpu0, time.monotonic() - t0
    return {
        "batch_size": a.batch,
        "batch_sizes": [len(c) for c in chunks],
        "calls": len(chunks),
        "accepted": sum(ok),
        "accepted_list": ok,
        "cpu_per_proof_amortized": round(cpu / len(items), 3),
        "wall_per_proof_amortized": round(wall / len(items), 3),
        "steps_s": {k: round(v, 2) for k, v in rechecker.times.items()},
    }


def _header_batches(items: list[BatchItem], size: int) -> list[list[int]]:
    by_header: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_header.setdefault(it.header, []).append(i)
    return [idxs[s : s + size] for idxs in by_header.values() for s in range(0, len(idxs), size)]


def _run_batches(run_dir: Path, proved: list[dict[str, Any]]) -> list[list[int]]:
    """The run checker's batches, as indices into ``proved`` (its proved members only): by
    ``extra.check_batch_no``, or, in runs made before it was recorded, by consecutive records of one
    ``extra.check_batch`` size."""
    index = {r["theorem"]: i for i, r in enumerate(proved)}
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line]
    batched = [r for r in records if (r.get("extra") or {}).get("check_batch")]
    chunks: list[list[int]] = []
    if batched and all("check_batch_no" in r["extra"] for r in batched):
        numbered: dict[int, list[int]] = {}
        for r in batched:
            if r["theorem"] in index:
                numbered.setdefault(int(r["extra"]["check_batch_no"]), []).append(index[r["theorem"]])
        chunks = [numbered[k] for k in sorted(numbered)]
    else:
        k = 0
        while k < len(batched):
            size = int(batched[k]["extra"]["check_batch"])
            members = [index[r["theorem"]] for r in batched[k : k + size] if r["theorem"] in index]
            if members:
                chunks.append(members)
            k += size
    missing = sorted(set(range(len(proved))) - {i for c in chunks for i in c})
    return chunks + [[i] for i in missing]  # proofs the run did not batch (checked alone)


if __name__ == "__main__":
    sys.exit(main())
