"""Long-run stability: ``prove`` on all 488 Coq problems (minif2f-test and minif2f-valid, two runs) with
2 Ray workers and the default generator, then a short run interrupted with SIGINT.

Every second it samples the resident memory (RSS, from /proc) of every coqtop and every Ray process under
the CLI: peak per coqtop process, peak of all coqtops together, peak of the Ray processes together. After
each run it counts the prover and Ray processes (raylet, gcs_server, ``ray::`` workers) that are still
running. It prints a table and writes JSON (default ``runs/long_run/long_run.json``; runs/ is gitignored).

    .venv/bin/python bench/long_run.py                      # the full measurement (~12 min on 2 cores)
    .venv/bin/python bench/long_run.py --limit 20            # a quick smoke run of the same code

Exit status 0 when nothing was left running, every theorem has exactly one record and the peak RSS of
each coqtop stayed under the recycling cap (``ProverConfig.recycle_rss_mb``) plus one sampling window of
growth (the cap is checked every few requests, so a process may pass it briefly before it is recycled).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llemma_prover.core import procfs  # noqa: E402

PROVER_NAMES = ("coqtop", "coqidetop", "coqc")
RAY_NAMES = ("raylet", "gcs_server", "ray::", "dashboard", "log_monitor", "monitor.py",
             "runtime_env_agent", "default_worker")


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(ppid, start time, comm) of a live, non-zombie process."""
    st = procfs.stat(pid)
    return (st.ppid, st.start, st.comm) if st is not None and st.alive else None


def _cmdline(pid: int) -> str:
    return procfs.cmdline(pid)


def _rss_mb(pid: int) -> float:
    return procfs.rss_bytes(pid) / 2**20


def _descendants(root: int) -> set[int]:
    return procfs.descendants(root)


def _kind(comm: str, cmd: str) -> str | None:
    if any(comm.startswith(n) for n in PROVER_NAMES):
        return "prover"
    if any(n in comm or n in cmd for n in RAY_NAMES) or "/ray/" in cmd:
        return "ray"
    return None


@dataclass
class Sampler:
    """Samples the process tree under ``root`` every ``interval`` seconds in a thread."""

    root: int
    interval: float = 1.0
    #: (pid, start time) -> (kind, comm, peak RSS MB)
    procs: dict[tuple[int, str], list[Any]] = field(default_factory=dict)
    peak_prover_total: float = 0.0
    peak_prover_count: int = 0
    peak_ray_total: float = 0.0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        prover_total = ray_total = 0.0
        provers = 0
        for pid in _descendants(self.root):
            st = _stat(pid)
            if st is None:
                continue
            key = (pid, st[1])
            if key not in self.procs:
                kind = _kind(st[2], _cmdline(pid))
                if kind is None:
                    continue
                self.procs[key] = [kind, st[2], 0.0]
            entry = self.procs[key]
            rss = _rss_mb(pid)
            entry[2] = max(entry[2], rss)
            if entry[0] == "prover":
                prover_total += rss
                provers += 1
            else:
                ray_total += rss
        self.peak_prover_total = max(self.peak_prover_total, prover_total)
        self.peak_prover_count = max(self.peak_prover_count, provers)
        self.peak_ray_total = max(self.peak_ray_total, ray_total)
        self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def alive(self, kind: str, grace: float) -> list[str]:
        """Recorded processes of ``kind`` still running after up to ``grace`` seconds."""
        deadline = time.monotonic() + grace
        while True:
            left = [f"{pid} {v[1]}" for (pid, start), v in self.procs.items()
                    if v[0] == kind and (st := _stat(pid)) is not None and st[1] == start]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.5)

    def summary(self, kind: str) -> dict[str, Any]:
        peaks = [v[2] for v in self.procs.values() if v[0] == kind]
        return {"processes": len(peaks), "peak_rss_mb_max": round(max(peaks, default=0.0), 1),
                "peak_rss_mb_median": round(sorted(peaks)[len(peaks) // 2], 1) if peaks else 0.0}


def _prove(args: list[str]) -> subprocess.Popen[str]:
    script = Path(sys.executable).parent / "prove"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "llemma_prover.cli.main", "prove"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # SIGINT back to its default in the child: a bench started in the background (``&``, nohup) inherits
    # an ignored SIGINT, and Python installs its KeyboardInterrupt handler only when SIGINT is not ignored
    return subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=REPO, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _records(out: Path) -> list[dict[str, Any]]:
    path = out / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _finish(proc: subprocess.Popen[str], sampler: Sampler, started: float,
            timeout: float) -> dict[str, Any]:
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
    wall = time.monotonic() - started
    sampler.stop()
    prover_left = sampler.alive("prover", grace=15)
    ray_left = sampler.alive("ray", grace=30)
    return {
        "exit_code": proc.returncode, "wall_s": round(wall, 1), "samples": sampler.samples,
        "prover": sampler.summary("prover"), "ray": sampler.summary("ray"),
        "peak_prover_total_mb": round(sampler.peak_prover_total, 1),
        "peak_prover_count": sampler.peak_prover_count,
        "peak_ray_total_mb": round(sampler.peak_ray_total, 1),
        "prover_left": prover_left, "ray_left": ray_left,
        "raylet_or_gcs_left": [p for p in ray_left if "raylet" in p or "gcs_server" in p],
        "traceback": "Traceback" in stderr, "stderr_tail": stderr[-600:],
    }


def full_run(split: str, out: Path, workers: int, limit: int | None, timeout: float) -> dict[str, Any]:
    args = ["--split", split, "--workers", str(workers), "--out", str(out)]
    if limit:
        args += ["--limit", str(limit)]
    started = time.monotonic()
    proc = _prove(args)
    sampler = Sampler(proc.pid).start()
    res = _finish(proc, sampler, started, timeout)
    recs = _records(out)
    names = [r["theorem"] for r in recs]
    res.update(split=split, records=len(recs), unique=len(set(names)),
               solved=sum(r["status"] == "proved" for r in recs),
               crashes=sum(r.get("reason") == "prover_crash" for r in recs),
               restarts=sum(int(r.get("restarts", 0)) for r in recs))
    return res


def interrupted_run(out: Path, workers: int, after_records: int, timeout: float) -> dict[str, Any]:
    """A run on minif2f-valid that gets SIGINT once ``after_records`` theorems are done and a prover runs."""
    started = time.monotonic()
    proc = _prove(["--split", "minif2f-valid", "--workers", str(workers), "--out", str(out), "--limit", "60"])
    sampler = Sampler(proc.pid, interval=0.2).start()
    sent = False
    while proc.poll() is None and time.monotonic() - started < timeout:
        busy = any(v[0] == "prover" and (st := _stat(pid)) is not None and st[1] == s
                   for (pid, s), v in list(sampler.procs.items()))
        if len(_records(out)) >= after_records and busy:
            proc.send_signal(signal.SIGINT)
            sent = True
            break
        time.sleep(0.2)
    interrupted_at = time.monotonic() - started
    res = _finish(proc, sampler, started, 120)
    res.update(split="minif2f-valid (SIGINT)", sigint_sent=sent, sigint_after_s=round(interrupted_at, 1),
               records=len(_records(out)))
    return res


def _table(runs: list[dict[str, Any]], cap: int) -> str:
    rows = [("run", "exit", "wall s", "solved/records", "coqtops", "peak coqtop MB", "peak all coqtop MB",
             "peak Ray MB", "provers left", "Ray left")]
    for r in runs:
        rows.append((r["split"], str(r["exit_code"]), f"{r['wall_s']:.0f}",
                     f"{r.get('solved', '-')}/{r['records']}", str(r["prover"]["processes"]),
                     f"{r['prover']['peak_rss_mb_max']:.0f}", f"{r['peak_prover_total_mb']:.0f}",
                     f"{r['peak_ray_total_mb']:.0f}", str(len(r["prover_left"])), str(len(r["ray_left"]))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"recycling cap per coqtop (ProverConfig.recycle_rss_mb): {cap} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    from llemma_prover.core.config import ProverConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "runs" / "long_run"), help="folder for the runs and JSON")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="theorems per split (default: all)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per full run before it is killed")
    ap.add_argument("--skip-full", action="store_true", help="only the interrupted run")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if out.exists() and any(out.iterdir()):
        print(f"{out} is not empty; choose another --out (this bench needs fresh run directories)",
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    cap = ProverConfig().recycle_rss_mb

    runs = []
    if not a.skip_full:
        for split in ("minif2f-test", "minif2f-valid"):
            print(f"running {split} ...", file=sys.stderr, flush=True)
            runs.append(full_run(split, out / split, a.workers, a.limit, a.timeout))
    print("running the interrupted run ...", file=sys.stderr, flush=True)
    runs.append(interrupted_run(out / "interrupted", a.workers, after_records=3, timeout=600))

    problems = []
    for r in runs:
        if r["prover_left"] or r["ray_left"]:
            problems.append(f"{r['split']}: processes left: {r['prover_left'] + r['ray_left']}")
        if r["traceback"]:
            problems.append(f"{r['split']}: traceback on stderr")
        if "unique" in r and (r["unique"] != r["records"] or r["exit_code"] != 0):
            problems.append(f"{r['split']}: exit {r['exit_code']}, {r['records']} records, "
                            f"{r['unique']} unique")
        if r["prover"]["peak_rss_mb_max"] > cap * 1.25:
            problems.append(f"{r['split']}: a coqtop reached {r['prover']['peak_rss_mb_max']:.0f} MB")
    interrupted = runs[-1]
    if not interrupted["sigint_sent"] or interrupted["exit_code"] != 130:
        problems.append(f"interrupted run: SIGINT sent={interrupted['sigint_sent']}, "
                        f"exit {interrupted['exit_code']}")
    report = {"recycle_rss_mb": cap, "workers": a.workers, "limit": a.limit, "runs": runs,
              "problems": problems, "host_cpus": os.cpu_count()}
    (out / "long_run.json").write_text(json.dumps(report, indent=2) + "\n")
    print(_table(runs, cap))
    print(f"json: {out / 'long_run.json'}")
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
