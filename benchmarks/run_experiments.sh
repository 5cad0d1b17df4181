#!/usr/bin/env bash
# The experiments of docs/results.md (cpu preset, a 2-core machine), after #12. Two queues
# run side by side, one thread each: ST-VLM (A) and the baselines (B). Resumable: rows
# already in benchmarks/results/<protocol>.csv are skipped, so a queue can be stopped and
# restarted. The rows from before #12 are in benchmarks/results/before-12/.
#
#   bash benchmarks/run_experiments.sh        # both queues, waits for them
#   bash benchmarks/run_experiments.sh A      # one queue
#   bash benchmarks/run_experiments.sh timing # the 2-thread fit time of the cpu preset, alone
set -euo pipefail
cd "$(dirname "$0")/.."
B="stvlm benchmark --preset cpu --results-dir benchmarks/results"
FEW=few-shot-0.05,few-shot-0.1,few-shot-0.2
BASE=stid,lstm,last-value,historical-average,seasonal-naive

queue_a() {
  export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
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

timing() {  # on a quiet machine, 2 threads: the fit time the cpu preset promises
  stvlm benchmark --preset cpu --results-dir benchmarks/results/timing --protocol pems08-tail --models stvlm,stid --seeds 0
}

case "${1:-all}" in
  A) queue_a ;;
  B) queue_b ;;
  timing) timing ;;
  all) queue_a & queue_b & wait ;;
esac
