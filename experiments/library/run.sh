#!/usr/bin/env bash
# Issue 19: stdlib test-split lemmas in their own context, one configuration per call, all with the same
# per-lemma budget (6 s wall, 5 s per tactic, k = 64, 24 expansions), 2 Ray workers, the same fixed sample.
#
#   bash experiments/library/run.sh CONFIG [valid|test]     (run from the repository root)
#
# DATA: an `extract --coq-stdlib --out DATA` folder (retrieval indexes its train split only).
# OUT:  where the run folders go (default runs/library).
set -euo pipefail
config="$1"; split="${2:-test}"
DATA="${DATA:-runs/extract-coq-stdlib}"
OUT="${OUT:-runs/library}"
case "$split" in
  test) sample=(--sample 400 --seed 20261205) ;;
  valid) sample=(--sample 120 --seed 20261205 --limit 60) ;;
  *) echo "split: valid or test" >&2; exit 2 ;;
esac
export OMP_NUM_THREADS=1 RAY_worker_niceness=0
budget=(--workers 2 --time-budget 6 --tactic-timeout 5 --candidates 64 --max-expansions 24)
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
hammer_automation="Coq.micromega.Lia,Coq.micromega.Lra,Coq.micromega.Psatz,Coq.setoid_ring.Ring,Coq.setoid_ring.Field,Coq.omega.PreOmega,Coq.micromega.ZifyNat,Coq.micromega.ZifyN,Hammer.Tactics.Tactics,Hammer.Plugin.Hammer"
case "$config" in
  bank)              gen=(--generator bank) ;;
  bank-retr-online)  gen=(--generator bank+retrieval --retrieval-data "$DATA" --online-learning) ;;
  bank-retr)         gen=(--generator bank+retrieval --retrieval-data "$DATA") ;;
  retr-online)       gen=(--generator retrieval --retrieval-data "$DATA" --online-learning) ;;
  # CoqHammer: `hammer` (E, Z3, CVC4) alone; its reconstruction tactics alone
  hammer)            gen=(--generator replay --replay-file "$here/hammer.txt" --automation "$hammer_automation") ;;
  sauto)             gen=(--generator replay --replay-file "$here/sauto.txt") ;;
  *) echo "unknown config $config" >&2; exit 2 ;;
esac
exec .venv/bin/prove --library coq-stdlib --split "$split" "${sample[@]}" "${budget[@]}" "${gen[@]}" \
  --out "$OUT/$split-$config"
