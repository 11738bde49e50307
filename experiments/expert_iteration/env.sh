# Shared by run.sh and model.sh (sourced): the checkout's tools, the output folder, the stage to run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
LP=.venv/bin/llemma-prover
PY=.venv/bin/python
OUT=${OUT:-runs/expert-iteration}
STAGE=${STAGE:-all}
# Ray starts its workers at nice 15; timed runs give them the cores as equals
export RAY_worker_niceness=${RAY_worker_niceness:-0}
mkdir -p "$OUT"
