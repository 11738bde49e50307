"""Where the independent check's CPU goes, process by process (issue 21, docs/check.md "Profile").

Takes the proved records of a run directory (``prove --out DIR``), picks the header with the most
proofs (up to ``--batch``), and runs every process of a check *one at a time*, each exactly as
``Rechecker`` builds it (same argv, same sandbox), measuring the CPU of each (a cpuacct cgroup around
this process and everything it starts: ``check_cost.CpuMeter``):

* process start: ``coqc`` of an empty file (no library loaded);
* header loading: ``coqc`` of the header alone;
* step 0: the structure parse on a new coqidetop (start + header), then on the warm one;
* step 1: ``coqc`` of each proof file (its random prefix);
* step 2: ``coqchk -o`` on one library, then on all the batch's libraries in one call;
* step 4b: the identity file for one proof (with and without ``Print Assumptions``), then the batch's
  identity file (with and without);
* step 3 (header facts) is cached on disk per header and Coq installation and is not in a check.

Usage: ``python bench/check_profile.py RUN_DIR [--batch 8] [--json OUT]``; prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from llemma_prover.backends.coq.header import prepare_header
from llemma_prover.backends.coq.recheck import (
    CHECK_MODULE,
    Rechecker,
    _Compiled,
    _identity_batch_file,
    _identity_file,
    _Job,
    _mkdir,
    final_tactics,
    proof_file,
    theorem_name,
)
from llemma_prover.backends.sandbox import Sandbox
from llemma_prover.data.minif2f import load_split, resolve_data_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_cost import CpuMeter  # noqa: E402

TIMEOUT = 600.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    records = [json.loads(line) for line in (a.run_dir / "results.jsonl").read_text().splitlines() if line]
    proved = [r for r in records if r.get("status") == "proved" and r.get("proof")]
    if not proved:
        print("no proved record in", a.run_dir, file=sys.stderr)
        return 2
    short = proved[0]["split"].removeprefix("minif2f-")
    data = load_split(resolve_data_dir(a.data_dir, os.environ.get("LLEMMA_PROVER_DATA")), "coq", short)
    by_name = {t.name: t for t in data.theorems}
    groups: dict[str, list[tuple[Any, list[str]]]] = {}
    for r in proved:
        t = by_name.get(r["theorem"])
        if t is not None:
            groups.setdefault(prepare_header(t.header), []).append((t, r["proof"]))
    header, group = max(groups.items(), key=lambda kv: len(kv[1]))
    group = group[: a.batch]
    meter = CpuMeter()
    root = Path(tempfile.mkdtemp(prefix="llemma-check-profile-"))
    r = Rechecker(sandbox=Sandbox.detect())
    try:
        rows = _profile(r, meter, str(root), header, group)
    finally:
        r.close()
        meter.close()
        shutil.rmtree(root, ignore_errors=True)
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"{'step':62s} {'CPU s':>7s} {'wall s':>7s}")
    for row in rows:
        print(f"{row['step']:62s} {row['cpu']:7.2f} {row['wall']:7.2f}")
    out = {"header_proofs": len(group), "cpu_measured_by": meter.source, "load_average_after": load,
           "rows": rows}
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}))
    if a.json is not None:
        a.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


def _profile(r: Rechecker, meter: CpuMeter, root: str, header: str,
             group: list[tuple[Any, list[str]]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIMEOUT

    def measure(step: str, fn: Any) -> Any:
        cpu0, t0 = meter.seconds(), time.monotonic()
        out = fn()
        rows.append({"step": step, "cpu": round(meter.seconds() - cpu0, 3),
                     "wall": round(time.monotonic() - t0, 3)})
        return out

    def run(job: _Job) -> tuple[int, str]:
        (res,) = r._run([job], deadline)
        if isinstance(res, str) or res[0] != 0:
            raise RuntimeError(f"{job.argv}: {res if isinstance(res, str) else res[1][-2000:]}")
        return res

    measure("process start: coqc of an empty file", partial(run, r._compile(_mkdir(root, "empty"), "")))
    measure("header loading: coqc of the header alone",
            partial(run, r._compile(_mkdir(root, "header"), header.rstrip("\n") + "\n")))
    n = len(group)
    items = []
    for k, (thm, proof) in enumerate(group):
        tactics = final_tactics(proof)
        text = proof_file(header, thm.statement, tactics)
        items.append((thm, tactics, text, theorem_name(thm.statement) or thm.name,
                      f"Llemma{secrets.token_hex(8)}", _mkdir(root, f"proof{k}")))
    t, tactics, text, name, prefix, pdir = items[0]
    measure("step 0: structure parse, new coqidetop (start + header)",
            partial(r._structure, header, t.statement, text, deadline, tactics))
    measure("step 0: structure parse, warm coqidetop",
            partial(r._structure, header, t.statement, text, deadline, tactics))
    for k, (tk, _, text_k, _, prefix_k, dir_k) in enumerate(items):
        measure(f"step 1: coqc of proof {k + 1} ({tk.name[:30]})",
                partial(run, r._compile(dir_k, text_k, prefix_k)))
    measure("step 2: coqchk -o, one library", partial(run, r._coqchk(_mkdir(root, "chk1"), pdir, prefix)))
    libs = [x for *_, p, _ in items for x in ("-norec", f"{p}.{CHECK_MODULE}")]
    paths = [x for *_, p, d in items for x in ("-Q", d, p)]
    chk = _Job((r.coqchk, "-silent", "-o", *libs, *paths), _mkdir(root, "chkn"),
               read_only=tuple(d for *_, d in items))
    measure(f"step 2: coqchk -o, {n} libraries in one call", partial(run, chk))
    for label, assumptions in (("with", True), ("without", False)):
        src = _identity_file(header, t.statement, name, prefix, assumptions)
        measure(f"step 4b: identity file, one proof, {label} Print Assumptions",
                partial(run, r._print(_mkdir(root, "id1" + label), pdir, src, prefix)))
    theorems = [(it[0].statement, it[3], _Compiled(k, it[4], it[5])) for k, it in enumerate(items)]
    for label, assumptions, union in (("one Print Assumptions each", True, False),
                                      ("one Print Assumptions of all", True, True),
                                      ("no Print Assumptions", False, False)):
        src = _identity_batch_file(header, theorems, assumptions, union=union)
        job = _Job((r.coqc, "-q", *paths, "LlemmaPrint.v"), _mkdir(root, "idn" + label.replace(" ", "_")),
                   files=(("LlemmaPrint.v", src),), read_only=tuple(d for *_, d in items),
                   max_output=16 * 1024 * 1024)
        measure(f"step 4b: identity file, {n} proofs, {label}", partial(run, job))
    return rows


if __name__ == "__main__":
    sys.exit(main())
