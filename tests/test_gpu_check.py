"""``bench/gpu_check.sh``: the CPU variant runs end to end (what CI runs); the GPU variant refuses
clearly on a machine without a GPU; the report flags failed and timed-out parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.sh"


def run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO, check=False)


@pytest.mark.model
def test_cpu_variant_runs_bench_and_doctor(tmp_path: Path) -> None:
    proc = run("--cpu", "--out", str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = proc.stdout
    for row in ("part: preflight", "part: bench", "part: doctor", "throughput (a) generate, batch 1",
                "throughput (b) server, 1 workers", "throughput (b) server, 4 workers",
                "throughput (b) server, 16 workers", "doctor model: beam search", "doctor model: sampling"):
        assert row in table, row
    assert "all parts passed" in table
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert [r["workers"] for r in bench["server"]] == [1, 4, 16]
    assert all(r["tactics_per_s"] > 0 for r in bench["server"])
    assert bench["shape"]["vocab_size"] == 32016 and bench["tokenizer"].startswith("synthetic")
    doctor = json.loads((tmp_path / "doctor.json").read_text())
    assert doctor["ok"] and {c["name"] for c in doctor["checks"]} >= {"model loads", "beam search"}


def test_gpu_variant_without_a_gpu_stops_at_preflight(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = run("--out", str(tmp_path), timeout=300)
    assert proc.returncode == 2
    assert "no CUDA GPU visible to torch" in proc.stderr
    assert "part: preflight" in proc.stdout and "FAILED" in proc.stdout
    assert not (tmp_path / "bench.json").exists()


def test_report_flags_timeouts_and_failed_checks(tmp_path: Path) -> None:
    (tmp_path / "parts.tsv").write_text("preflight\t0\t3.2\t45\nbench\t124\t330.0\t330\n")
    (tmp_path / "doctor.json").write_text(json.dumps({"checks": [
        {"component": "gpu", "name": "bf16 matmul rate", "outcome": "fail", "seen": "3 TFLOP/s",
         "remedy": "check nvidia-smi"}]}))
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check_report.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "TIMEOUT" in proc.stdout and "330 s of 330 s" in proc.stdout
    assert "doctor gpu: bf16 matmul rate" in proc.stdout and "check nvidia-smi" in proc.stdout
