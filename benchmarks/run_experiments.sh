#!/usr/bin/env bash
# The experiments of docs/results.md (cpu preset, a 2-core machine). Three queues run side
# by side, one thread each: ST-VLM on the full fit period, ablations and sz-taxi (A), the
# baselines (B), ST-VLM few-shot (C). Resumable: rows already in
# benchmarks/results/<protocol>.csv are skipped, so a queue can be stopped and restarted.
#
#   bash benchmarks/run_experiments.sh        # all three queues, waits for them
#   bash benchmarks/run_experiments.sh A      # one queue
#
# In the session of docs/results.md, the first ST-VLM row and two STID rows ran with
# 2 threads before the queues were split; the rest ran as below, and the queues were
# stopped when the session's time ran out (docs/results.md says which rows exist).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
B="stvlm benchmark --preset cpu --results-dir benchmarks/results"
FEW=few-shot-0.05,few-shot-0.1,few-shot-0.2
BASE=stid,lstm,last-value,historical-average,seasonal-naive

queue_a() {
  # the seed-0 full model is kept for benchmarks/investigate_stvlm.py
  $B --protocol pems08-tail --models stvlm --seeds 0 --models-dir benchmarks/out/models
  $B --protocol pems08-tail --models stvlm --seeds 0,1,2
  $B --protocol pems08-tail --models stvlm --settings wo-saf,wo-ft --seeds 0
  $B --protocol sz-taxi --models stvlm --seeds 0,1,2
  $B --protocol pems08-tail --models stvlm --settings wo-saf,wo-ft --seeds 0,1,2
}

queue_b() {
  $B --protocol pems08-tail --models $BASE --seeds 0,1,2
  $B --protocol sz-taxi --models $BASE --seeds 0,1,2
  $B --protocol pems08-tail --models $BASE --settings $FEW --seeds 0,1,2
  # ETT long-term protocol: the reference forecasts at inputs 96 and 512 (seconds)
  for p in etth1 etth2; do
    $B --protocol $p --models last-value,seasonal-naive
    $B --protocol $p --models last-value,seasonal-naive --history 512
  done
}

queue_c() {
  $B --protocol pems08-tail --models stvlm --settings $FEW --seeds 0,1,2
}

case "${1:-all}" in
  A) queue_a ;;
  B) queue_b ;;
  C) queue_c ;;
  all) queue_a & queue_b & queue_c & wait ;;
esac
