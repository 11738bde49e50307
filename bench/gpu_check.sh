#!/usr/bin/env bash
# One command for a machine with one NVIDIA GPU, PyTorch and transformers (nothing else: no vLLM, no
# network, no Coq, Ray optional):
#
#   bash bench/gpu_check.sh            # Llemma-7B's shape, random weights, bf16 on the GPU (< 8 min on an H200)
#   bash bench/gpu_check.sh --cpu      # a tiny shape on CPU, server in-process (the CI variant, < 1 min)
#   bash bench/gpu_check.sh --out DIR  # keep the logs and JSON there (default: a new temp dir)
#
# Parts, each under its own timeout (GPU budget: 60 + 320 + 75 s = 7.6 min at most):
#   1. preflight: torch imports, transformers is installed, torch sees the GPU, Ray present or not;
#   2. bench/generation.py: per-worker HF generate at batch 1 vs the batched model server at 1/4/16
#      workers, k = 32 beams, 64 new tokens (Ray actors when Ray is installed, else the same server
#      in-process under asyncio: --in-process), plus the prefix-KV-cache ablation;
#   3. the doctor's model and GPU checks (random:llemma-7b, hf engine: model loads, beam and sampling
#      give 32 distinct tactics with finite scores, bf16 matmul rate);
# then one table (bench/gpu_check_report.py). Exit 0 only if every part passed. Runs from a checkout
# with PYTHONPATH set to it; nothing is installed, nothing is downloaded.
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
MODE=gpu
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (use --cpu, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$OUT" ] || OUT="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
mkdir -p "$OUT"
: > "$OUT/parts.tsv"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false RAY_USAGE_STATS_ENABLED=0

if [ "$MODE" = gpu ]; then
  T_PRE=60; T_BENCH=320; T_DOC=75
  BENCH=(--shape llemma-7b --k 32 --max-new-tokens 64 --workers 1,4,16 --goals-per-worker 2
         --baseline-goals 4 --ablation-goals 2 --max-batch-rows 128 --device cuda --dtype bfloat16)
  DOCTOR=(--model random:llemma-7b --device cuda --dtype bfloat16 --k 32 --budget 70)
else
  T_PRE=120; T_BENCH=240; T_DOC=180  # generous: CI machines are shared
  BENCH=(--shape small --layers 1 --hidden 64 --k 4 --max-new-tokens 4 --workers 1,4,16
         --goals-per-worker 1 --baseline-goals 1 --ablation-goals 1 --device cpu --dtype float32)
  DOCTOR=(--model random:tiny --device cpu --dtype float32 --k 4 --no-matmul --budget 170)
fi

part() {  # part NAME LIMIT CMD...: run CMD under `timeout LIMIT`, log to OUT/NAME.log, record exit and time
  local name="$1" limit="$2"; shift 2
  local t0 rc ms; t0=$(date +%s%N)
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1; rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%s\t%s\t%s.%03d\t%s\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000)) "$limit" >> "$OUT/parts.tsv"
  echo "gpu_check: $name exit $rc ($(tail -1 "$OUT/$name.log" | cut -c1-150))" >&2
  return $rc
}

PREFLIGHT=$(cat <<'PYEOF'
import importlib.metadata, importlib.util, sys
import torch
transformers = importlib.metadata.version("transformers")  # installed (imported by the parts below)
gpu = torch.cuda.is_available()
ray = importlib.util.find_spec("ray") is not None
name = torch.cuda.get_device_name(0) if gpu else None
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers}, "
      f"GPU: {name}, ray: {ray}")
if sys.argv[1] == "gpu" and not gpu:
    sys.exit("no CUDA GPU visible to torch: run on the GPU machine, or use --cpu")
PYEOF
)
if ! part preflight "$T_PRE" "$PY" -c "$PREFLIGHT" "$MODE"; then
  cat "$OUT/preflight.log" >&2
  "$PY" "$REPO/bench/gpu_check_report.py" "$OUT"
  exit 2
fi
INPROC=()
if [ "$MODE" = cpu ]; then
  INPROC=(--in-process)  # the CI variant: the same server without starting a Ray cluster
elif ! "$PY" -c 'import ray' >/dev/null 2>&1; then
  INPROC=(--in-process)
  echo "gpu_check: Ray is not installed: the model-server benchmark runs the same server in-process" >&2
fi
part bench "$T_BENCH" "$PY" "$REPO/bench/generation.py" "${BENCH[@]}" ${INPROC[@]+"${INPROC[@]}"} --tokenizer synthetic \
  --threads "$([ "$MODE" = cpu ] && echo 1 || echo 4)" --out "$OUT/bench.json"
part doctor "$T_DOC" "$PY" -m llemma_prover.cli.doctor_cmd --backend none --engine hf "${DOCTOR[@]}" \
  --json "$OUT/doctor.json"
"$PY" "$REPO/bench/gpu_check_report.py" "$OUT"
