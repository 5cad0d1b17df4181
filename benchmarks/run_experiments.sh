#!/usr/bin/env bash
# The experiments of docs/results.md (cpu preset, a 2-core machine), after #12. ST-VLM (A)
# runs alone with 2 threads, so its fit seconds are the preset's time; the baselines (B)
# take one thread each and may run beside other work. Resumable: rows already in
# benchmarks/results/<protocol>.csv are skipped, so a queue can be stopped and restarted.
# The rows from before #12 are in benchmarks/results/before-12/, ST-VLM's rows of the
# plateau preset in benchmarks/results/plateau-preset/.
#
#   bash benchmarks/run_experiments.sh        # A, then B
#   bash benchmarks/run_experiments.sh A      # one queue
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

case "${1:-all}" in
  A) queue_a ;;
  B) queue_b ;;
  all) queue_a; queue_b ;;
esac
