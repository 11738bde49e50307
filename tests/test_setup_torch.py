"""``scripts/torch_build.sh``: which torch build ``scripts/setup.sh`` installs. The CPU build stays the
default; a GPU that ``nvidia-smi`` lists gets the CUDA build for its driver's CUDA version. ``nvidia-smi``
is a stand-in here (no GPU on the test machines), printing the header lines the real one prints."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "torch_build.sh"

FAKE_SMI = """#!/bin/sh
if [ "$1" = "-L" ]; then {listing}; exit 0; fi
echo "+-----------------------------------------------------------------------------------------+"
echo "| NVIDIA-SMI 570.124.06             Driver Version: 570.124.06     CUDA Version: {cuda}     |"
"""


def _run(tmp_path: Path, cuda: str | None, *, gpus: bool = True, build: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "TORCH_BUILD"}
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    if cuda is not None:
        listing = 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"' if gpus else "true"
        smi = bindir / "nvidia-smi"
        smi.write_text(FAKE_SMI.format(listing=listing, cuda=cuda))
        smi.chmod(0o755)
    # only the stand-in's folder and the basic tools: a real nvidia-smi elsewhere on PATH must not count
    env["PATH"] = f"{bindir}:/usr/bin:/bin"
    if build is not None:
        env["TORCH_BUILD"] = build
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("cuda", "want"), [("13.1", "cu130"), ("13.0", "cu130"), ("12.9", "cu128"),
                                            ("12.8", "cu128"), ("12.6", "cu126")])
def test_a_gpu_gets_the_cuda_build_its_driver_runs(tmp_path, cuda, want):
    r = _run(tmp_path, cuda)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == want


def test_no_nvidia_smi_or_no_gpu_listed_is_the_cpu_build(tmp_path):
    r = _run(tmp_path, None)
    assert (r.returncode, r.stdout.strip()) == (0, "cpu")
    r = _run(tmp_path, "12.8", gpus=False)
    assert (r.returncode, r.stdout.strip()) == (0, "cpu")


def test_a_driver_too_old_stops_with_the_reason(tmp_path):
    r = _run(tmp_path, "12.4")
    assert r.returncode == 1 and r.stdout == ""
    assert "12.4" in r.stderr and "TORCH_BUILD" in r.stderr


def test_torch_build_overrides_the_probe(tmp_path):
    r = _run(tmp_path, "12.8", build="cpu")
    assert (r.returncode, r.stdout.strip()) == (0, "cpu")


def test_setup_installs_the_build_it_is_told(tmp_path):
    """setup.sh pins the CUDA build by its local version from PyTorch's index, and the CPU build as before."""
    text = (REPO / "scripts" / "setup.sh").read_text()
    assert 'TORCH_BUILD="$(bash "$ROOT/scripts/torch_build.sh")"' in text
    assert '"torch==$TORCH_VERSION+$TORCH_BUILD"' in text
    assert "https://download.pytorch.org/whl/$TORCH_BUILD" in text
    assert '"${PIP[@]}" install "${extra[@]}" "torch==$TORCH_VERSION"' in text
