#!/usr/bin/env bash
# The experiments of docs/results.md (cpu preset, a 2-core machine), after #12. ST-VLM (A)
# runs alone with 2 threads, so its fit seconds are the preset's time; the baselines (B)
# take one thread each and may run beside other work. Resumable: rows already in
# benchmarks/results/<protocol>.csv are skipped, so a queue can be stopped and restarted.
# The rows from before #12 are in benchmarks/results/before-12/, ST-VLM's rows of the
# plateau preset in benchmarks/results/plateau-preset/, the trained models' rows from
# before the moving average of the weights (session 17) in benchmarks/results/before-ema/.
#
# C and D are #14's (Time-VLM and the long-term baselines on ETTh1 / ETTh2, one thread
# each, side by side): each fits one dataset's full data, saving the fits, so that the
# zero-shot rows scored on the other dataset reuse them instead of refitting.
#
#   bash benchmarks/run_experiments.sh        # A, then B
#   bash benchmarks/run_experiments.sh A      # one queue
#   bash benchmarks/run_experiments.sh C & bash benchmarks/run_experiments.sh D
set -euo pipefail
cd "$(dirname "$0")/.."
B="stvlm benchmark --preset cpu --results-dir benchmarks/results"
FEW=few-shot-0.05,few-shot-0.1,few-shot-0.2
BASE=stid,lstm,last-value,historical-average,seasonal-naive

queue_a() {
  export OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2
  $B --protocol pems08-tail --models stvlm --seeds 0,1,2
  $B --protocol pems08-tail --models stvlm --settings $FEW --seeds 0,1,2
  $B --protocol sz-taxi --models stvlm --seeds 0,1,2
  $B --protocol pems08-tail --models stvlm --settings wo-calendar,wo-saf,wo-ft,wo-image --seeds 0,1,2
}

queue_b() {
  export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
  $B --protocol pems08-tail --models $BASE --seeds 0,1,2
  $B --protocol pems08-tail --models $BASE --settings $FEW --seeds 0,1,2
  $B --protocol sz-taxi --models $BASE --seeds 0,1,2
  # ETT long-term protocol: the reference forecasts at inputs 96 and 512 (seconds)
  for p in etth1 etth2; do
    $B --protocol $p --models last-value,seasonal-naive
    $B --protocol $p --models last-value,seasonal-naive --history 512
  done
}

# $1: the dataset fitted on; $2: the other. Time-VLM's ablations run in queue C only.
queue_long_term() {
  export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
  local models_dir="${STVLM_MODELS_DIR:-/tmp/stvlm-models}"
  $B --protocol "$1" --history 512 --models timevlm,dlinear,patchtst --seeds 0,1,2 --models-dir "$models_dir"
  $B --protocol "$1" --history 512 --models timevlm,dlinear,patchtst --settings few-shot-0.05,few-shot-0.1 --seeds 0,1,2
  $B --protocol "$2" --history 512 --models timevlm --settings "zero-shot-$1" --seeds 0,1,2 --models-dir "$models_dir"
}

case "${1:-all}" in
  A) queue_a ;;
  B) queue_b ;;
  C) queue_long_term etth1 etth2
     $B --protocol etth1 --history 512 --models timevlm --settings wo-ral,wo-val,wo-tal --seeds 0,1,2 ;;
  D) queue_long_term etth2 etth1 ;;
  all) queue_a; queue_b ;;
esac
