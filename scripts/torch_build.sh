#!/usr/bin/env bash
# Print which torch build scripts/setup.sh installs: `cpu`, or on a machine where `nvidia-smi` lists a
# GPU the CUDA build for the newest CUDA the driver supports, as named on PyTorch's wheel index
# (https://download.pytorch.org/whl/<build>): cu130, cu128 or cu126. TORCH_BUILD, if set, wins.
# Exit 1 (with the reason on stderr) for a GPU whose driver is older than CUDA 12.6.
set -euo pipefail
if [ -n "${TORCH_BUILD:-}" ]; then echo "$TORCH_BUILD"; exit 0; fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo cpu; exit 0
fi
# the header of `nvidia-smi` says e.g. "CUDA Version: 12.8": the newest CUDA this driver runs
ver="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p' | head -n 1)"
if [ -z "$ver" ]; then
  echo "torch_build: nvidia-smi lists a GPU but no CUDA version; set TORCH_BUILD=cu126|cu128|cu130|cpu" >&2
  exit 1
fi
read -r major minor <<<"$ver"
v=$((major * 10 + minor))
if [ "$v" -ge 130 ]; then echo cu130
elif [ "$v" -ge 128 ]; then echo cu128
elif [ "$v" -ge 126 ]; then echo cu126
else
  echo "torch_build: the NVIDIA driver supports CUDA $major.$minor only; torch's CUDA builds need 12.6 or newer (update the driver, or set TORCH_BUILD=cpu)" >&2
  exit 1
fi
