#!/usr/bin/env bash
# Expert iteration with retrieval (issue 12, items 5-6), as run on 2 CPU cores (README.md here).
# 1. the default bank on minif2f-valid; its re-checked proofs become proof-step data (`extract --from-run`)
# 2. tuning, valid only, 2 folds (folds.py, fixed before any run): each fold proved by bank+retrieval
#    whose data holds only the OTHER fold's proofs; compared with step 1 on the same fold
# 3. minif2f-test, once, with what step 2 chose: bank+retrieval (and retrieval alone) on the data of
#    all valid proofs; same budgets as the default bank run (the defaults, no flags)
# Stages can be run one at a time: STAGE=valid|folds|test (default: all).
source "$(dirname "$0")/env.sh"
if [[ $STAGE == all || $STAGE == valid ]]; then
  $LP prove --split minif2f-valid --out "$OUT/valid-bank"
fi
if [[ $STAGE == all || $STAGE == folds ]]; then
  for f in 0 1; do
    other=$((1 - f))
    $LP extract --from-run "$OUT/valid-bank" --match "$($PY experiments/expert_iteration/folds.py $other --regex)" \
      --out "$OUT/data-fold$other"
    $LP prove --split minif2f-valid --theorems "$($PY experiments/expert_iteration/folds.py $f)" \
      --generator bank+retrieval --retrieval-data "$OUT/data-fold$other" --out "$OUT/valid-fold$f-bank+retrieval"
  done
  $PY experiments/expert_iteration/compare_folds.py "$OUT"
fi
if [[ $STAGE == all || $STAGE == test ]]; then
  $LP extract --from-run "$OUT/valid-bank" --out "$OUT/data-valid"
  $LP prove --split minif2f-test --generator bank+retrieval --retrieval-data "$OUT/data-valid" \
    --out "$OUT/test-bank+retrieval"
  $LP prove --split minif2f-test --generator retrieval --retrieval-data "$OUT/data-valid" \
    --out "$OUT/test-retrieval"
fi
