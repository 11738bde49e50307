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

    .venv/bin/python scripts/coq_bank_study.py --split valid --jobs 2 --timeout 2 --out /tmp/study.jsonl
    .venv/bin/python scripts/coq_bank_study.py --summary /tmp/study.jsonl     # table only
    .venv/bin/python scripts/coq_bank_study.py --summary /tmp/study.jsonl \
        --write-priors llemma_prover/backends/coq/bank_priors.json           # the bank's order

Only minif2f-valid is ever used to choose the bank (``--write-priors`` refuses rows of another split).

``--tactics FILE`` takes one candidate per line (default: every closing tactic of ``COQ_POOL`` in
``backends/coq/bank.py``; steps such as ``intros`` never close a goal alone and are not probed).
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
    from llemma_prover.data.minif2f import resolve_data_dir

    return resolve_data_dir(None, os.environ.get("LLEMMA_PROVER_DATA"))


def default_tactics() -> list[str]:
    """Every closing candidate of the Coq pool (steps never close a goal alone: not probed)."""
    from llemma_prover.backends.coq.bank import COQ_POOL, COQ_STUDY_EXTRA

    pool = [e.tactic for e in COQ_POOL if e.cost != "step"]
    return pool + [t for t in COQ_STUDY_EXTRA if t not in pool]


def root_goal_text(statement: str) -> str:
    """The root goal roughly as coqtop prints it (binders before the colon as hypotheses), for the
    bank's goal features; it only decides which probes are worth running."""
    body = statement.split(None, 2)[2] if len(statement.split(None, 2)) == 3 else statement
    depth = 0
    for i, ch in enumerate(body):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == ":" and depth == 0 and not body.startswith(":=", i):
            binders, concl = body[:i], body[i + 1 :]
            break
    else:
        binders, concl = "", body
    hyps = "\n".join(b.strip("() ") for b in re.findall(r"\([^()]*\)", binders))
    return f"{hyps}\n============================\n{' '.join(concl.rstrip().rstrip('.').split())}"


def applicable(tactics: list[str], statement: str) -> list[bool]:
    """Which probes the bank would offer at the root (``requires`` vs the goal's features)."""
    from llemma_prover.backends.coq.bank import COQ_POOL, coq_goal_features

    feats = coq_goal_features(root_goal_text(statement))
    req = {e.tactic: e.requires for e in COQ_POOL}
    return [req.get(t, frozenset()) <= feats for t in tactics]


def probe(
    workdir: Path, idx: int, rec: dict, tactics: list[str], timeout: float, filtered: bool = True
) -> dict:
    """Run every probe for one problem; a coqc crash mid-way restarts after the crashing probe.
    With ``filtered``, a probe the bank would not offer for this goal is recorded as a failure
    (``[false, 0.0]``) without running."""
    results: dict[str, list] = {}
    if filtered:
        keep = applicable(tactics, rec["statement"])
        results = {t: [False, 0.0] for t, k in zip(tactics, keep, strict=True) if not k}
        tactics = [t for t, k in zip(tactics, keep, strict=True) if k]
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


def greedy_cover(rows: list[dict]) -> list[tuple[str, int]]:
    """Order tactics greedily: first the one closing the most root goals, then the one closing the
    most goals not closed yet, ...; ties go to the cheaper tactic (less time on failures). Stops
    when no tactic adds a goal. Returns (tactic, goals it added)."""
    solved_by: dict[str, set[str]] = {}
    cost: dict[str, float] = {}
    for r in rows:
        for t, (ok, secs) in r["results"].items():
            solved_by.setdefault(t, set())
            cost[t] = cost.get(t, 0.0) + (secs if secs == secs else 0.0)
            if ok:
                solved_by[t].add(r["name"])
    covered: set[str] = set()
    order: list[tuple[str, int]] = []
    while True:
        best = max(solved_by, key=lambda t: (len(solved_by[t] - covered), -cost[t]), default=None)
        if best is None or not solved_by[best] - covered:
            return order
        order.append((best, len(solved_by[best] - covered)))
        covered |= solved_by.pop(best)


def write_priors(rows: list[dict], path: Path, command: str) -> None:
    """The bank's order and weights (1 + goals added to the cover), for ``backends/coq/bank.py``."""
    splits = sorted({r["split"] for r in rows})
    if splits != ["valid"]:
        sys.exit(f"refusing to write priors from {splits}: the bank is chosen on minif2f-valid only")
    cover = greedy_cover(rows)
    data = {
        "split": "valid",
        "problems": len(rows),
        "covered": sum(n for _, n in cover),
        "command": command,
        "bank": [{"tactic": t, "weight": n + 1, "added": n} for t, n in cover],
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


# -- the ablation: which family's tactics the proofs of a full run use, and what each costs ---------


def read_runs(dirs: list[Path]) -> dict[str, dict]:
    """theorem -> record, over the (sharded) run directories."""
    out: dict[str, dict] = {}
    for d in dirs:
        for line in (d / "results.jsonl").read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["theorem"]] = {**rec, "_dir": str(d)}
    return out


def edge_families(rec: dict, gen: object) -> list[tuple[str | None, float, bool]]:
    """(family, seconds, on the proof path) for every tactic the search ran for this theorem."""
    trace = json.loads((Path(rec["_dir"]) / rec["trace"]).read_text())
    goals = {n["id"]: n["goals"] for n in trace["nodes"]}
    on_path = set(trace["graph"].get("proof_nodes") or [])
    out = []
    for e in trace["edges"]:
        fam = gen.family_of(goals[e["source"]], e["tactic"])  # type: ignore[attr-defined]
        out.append((fam, float(e["elapsed"]), e["source"] in on_path and e["target"] in on_path))
    return out


def shard_prove(names: list[str], out: Path, families: list[str], shards: int, split: str) -> float:
    """``prove --workers 0`` in ``shards`` parallel processes (no Ray: robust on a loaded machine);
    returns the wall-clock seconds."""
    t0 = time.monotonic()
    procs = []
    for i in range(shards):
        part = names[i::shards]
        if not part:
            continue
        cmd = [sys.executable, "-m", "llemma_prover.cli.main", "prove", "--split", f"minif2f-{split}",
               "--workers", "0", "--theorems", ",".join(part), "--out", str(out / f"s{i}")]
        if families:
            cmd += ["--bank-families", ",".join(families)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for p in procs:
        p.wait()
    return time.monotonic() - t0


#: a search that found a proof (``check_failed``: the re-check rejected it, counted as found here;
#: docs/bank.md says how many and why)
FOUND = ("proved", "check_failed")


def ablate(full: list[Path], out: Path, table: Path, shards: int) -> None:
    """Leave-one-family-out on minif2f-valid, from one full run (``full``: its shard directories).

    A family's tactics are removed from the bank and only the problems whose proof in the full run
    used that family are proved again: a problem whose proof did not use it finds the same proof
    (best-first over the same remaining nodes, with budget to spare), so the count is the full-valid
    count without the family. Seconds: what the family's tactics cost in the full run (all problems).
    """
    from llemma_prover.generators.bank import FAMILIES, BankGenerator

    recs = read_runs(full)
    if any(r["split"] != "minif2f-valid" for r in recs.values()):
        sys.exit("the ablation runs on minif2f-valid only")
    gen = BankGenerator("coq")
    fam_time: dict[str | None, float] = {}
    fam_proofs: dict[str, set[str]] = {f: set() for f in FAMILIES}
    for name, rec in recs.items():
        for fam, secs, on_path in edge_families(rec, gen):
            fam_time[fam] = fam_time.get(fam, 0.0) + secs
            if on_path and rec["reason"] in FOUND and fam is not None:
                fam_proofs[fam].add(name)
    solved = {n for n, r in recs.items() if r["reason"] in FOUND}
    checked = sum(1 for r in recs.values() if r["status"] == "proved")
    total_prover = sum(fam_time.values())
    rows = []
    for fam in FAMILIES:
        names = sorted(fam_proofs[fam])
        without = [f for f in FAMILIES if f != fam]
        kept = 0
        wall = 0.0
        if names and fam != "closers":
            d = out / f"without-{fam}"
            wall = shard_prove(names, d, without, shards, "valid")
            kept = sum(1 for r in read_runs(sorted(d.glob("s*"))).values() if r["reason"] in FOUND)
        lost = len(names) - kept if fam != "closers" else len(names)
        rows.append((fam, len(names), lost, fam_time.get(fam, 0.0), wall))
        print(f"{fam}: used by {len(names)} proofs, lost without it {lost}", flush=True)
    lines = [
        f"Full run: proofs found for **{len(solved)}/{len(recs)}** minif2f-valid problems ({checked} passed "
        f"the re-check of that run); tactic time {total_prover:.0f} s in all.",
        "",
        "| component | proofs using it | solved without it | lost | its tactics' time (s, all problems) |",
        "|---|---:|---:|---:|---:|",
    ]
    for fam, used, lost, secs, _ in rows:
        without = "-" if fam == "closers" else f"{len(solved) - lost}"
        lost_s = "- (the base: never removed)" if fam == "closers" else f"{lost}"
        lines.append(f"| {fam} | {used} | {without} | {lost_s} | {secs:.0f} |")
    lines.append(f"| (not a bank tactic) | | | | {fam_time.get(None, 0.0):.0f} |")
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=default_data_dir())
    ap.add_argument("--split", default="valid", help="valid (default); never choose anything on test")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds per probe (Coq's timeout)")
    ap.add_argument("--tactics", type=Path, default=None)
    ap.add_argument("--names", default="", help="comma-separated subset of problems")
    ap.add_argument("--resume", action="store_true", help="keep the problems --out already holds")
    ap.add_argument("--all-probes", action="store_true",
                    help="run every probe on every goal (default: only those the bank would offer there)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--summary", type=Path, default=None, help="only print the table of a previous --out")
    ap.add_argument("--write-priors", type=Path, default=None,
                    help="with --summary: write the bank's order and weights (greedy cover) here")
    ap.add_argument("--ablate", type=Path, nargs="+", default=None, metavar="RUN_DIR",
                    help="leave-one-family-out on a full minif2f-valid run (its shard directories)")
    ap.add_argument("--ablate-out", type=Path, default=Path("/tmp/coq_bank_ablation"))
    ap.add_argument("--table", type=Path, default=REPO / "docs" / "bank_ablation.md")
    args = ap.parse_args(argv)

    if args.ablate:
        ablate(args.ablate, args.ablate_out, args.table, args.jobs)
        return 0
    if args.summary:
        rows = [json.loads(line) for line in args.summary.read_text().splitlines() if line.strip()]
        print(summarize(rows, args.timeout))
        if args.write_priors:
            cmd = "scripts/coq_bank_study.py " + " ".join(argv if argv is not None else sys.argv[1:])
            write_priors(rows, args.write_priors, cmd)
            print(f"priors: {args.write_priors}")
        return 0

    tactics = (
        [t.strip() for t in args.tactics.read_text().splitlines() if t.strip() and not t.startswith("#")]
        if args.tactics
        else default_tactics()
    )
    from llemma_prover.data.minif2f import data_file, read_data_bytes

    text = read_data_bytes(data_file(args.data_dir, "coq", args.split)).decode("utf-8")
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    if args.names:
        wanted = set(args.names.split(","))
        records = [r for r in records if r["name"] in wanted]
    # --resume: keep what --out already holds and probe only what it lacks (new problems, or new
    # tactics for old ones); probes the bank would not offer there are masked as failures
    old: dict[str, dict] = {}
    if args.resume and args.out and args.out.exists():
        by_name = {r["name"]: r for r in records}
        for line in args.out.read_text().splitlines():
            row = json.loads(line) if line.strip() else None
            if not row or row["name"] not in by_name:
                continue
            if not args.all_probes:
                keep = applicable(list(row["results"]), by_name[row["name"]]["statement"])
                for (t, res), k in zip(list(row["results"].items()), keep, strict=True):
                    row["results"][t] = res if k else [False, 0.0]
            old[row["name"]] = row

    t0 = time.monotonic()
    rows: list[dict] = []
    tmp_out = args.out.with_suffix(".tmp") if args.out else None
    out = open(tmp_out, "w", encoding="utf-8") if tmp_out else None  # noqa: SIM115
    try:
        with (
            tempfile.TemporaryDirectory(prefix="coq_bank_study_") as tmp,
            ThreadPoolExecutor(args.jobs) as pool,
        ):
            work = Path(tmp)
            futures = []
            for i, r in enumerate(records):
                have = old.get(r["name"], {"results": {}})["results"]
                missing = [t for t in tactics if t not in have]
                futures.append(
                    (have, pool.submit(probe, work, i, r, missing, args.timeout, not args.all_probes))
                    if missing
                    else (have, None)
                )
            for rec, (have, fut) in zip(records, futures, strict=True):
                row = {"name": rec["name"], "split": rec["split"], "results": dict(have)}
                if fut is not None:
                    row["results"].update(fut.result()["results"])
                rows.append(row)
                if out:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
    finally:
        if out:
            out.close()
    if tmp_out and args.out:
        tmp_out.replace(args.out)
    print(summarize(rows, args.timeout))
    print(f"({time.monotonic() - t0:.0f} s wall, {args.jobs} coqc processes, {len(tactics)} probes/problem)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
