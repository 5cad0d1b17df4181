#!/usr/bin/env bash
# The validation search of session 10 on a lent GPU (one call of the device tool): eight
# benchmarks/tune.py processes side by side on one GPU, 2 CPU threads each, every ST-VLM
# fit in float32 (the CPU preset's arithmetic). Each worker runs one variant over seeds
# 0-2 on the full fit period, then the same seeds on the 10 % few-shot part (scored on
# the full period's validation windows too). Validation windows only: nothing here reads
# a test window. Rows from every worker are gathered into $OUT/tuning-gpu.jsonl, which
# survives a worker stopped at the time limit (a row is written when its fit ends).
#
#   OUT=/tmp/out LIMIT=480 bash benchmarks/gpu_tune.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-tune}; LIMIT=${LIMIT:-480}; DEVICE=${DEVICE:-cuda}; SEEDS=${SEEDS:-0,1,2}
SETTINGS=${SETTINGS:-full,few-shot-0.1}
# a fresh work folder: rows of an earlier call on a warm machine are not gathered again
rm -rf /tmp/gpu-tune-work; mkdir -p "$OUT" /tmp/gpu-tune-work
export PYTHONPATH=$PWD OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/gpu-tune-numba
WORKERS=${WORKERS:-"stid:change,stvlm:mlp-wd
stvlm:change+tod-e30-cos4-mlp
stvlm:mlp-drop15
stvlm:mlp-l3
stvlm:mlp-hcal
stvlm:mlp-hcal-drop15
stvlm:mlp-hcal-node
stvlm:mlp-stidhead"}
DEADLINE=$(( $(date +%s) + LIMIT ))
i=0
while read -r line; do
  i=$((i + 1))
  (
    for job in ${line//,/ }; do
      # TERM, not INT: the loop would take Ctrl-C as "stop here" and record a cut-short fit
      left=$(( DEADLINE - $(date +%s) )); [ "$left" -gt 5 ] || break
      timeout -s TERM "$left" python3 benchmarks/tune.py --model "${job%%:*}" --variants "${job#*:}" \
        --settings "$SETTINGS" --seeds "$SEEDS" --device "$DEVICE" --out /tmp/gpu-tune-work/w$i.jsonl
    done
  ) > /tmp/gpu-tune-work/w$i.log 2>&1 &
done <<< "$WORKERS"
while [ "$(jobs -rp | wc -l)" -gt 0 ] && [ "$(date +%s)" -lt $((DEADLINE + 30)) ]; do
  cat /tmp/gpu-tune-work/w*.jsonl > "$OUT/tuning-gpu.jsonl" 2>/dev/null
  sleep 10
done
wait
cat /tmp/gpu-tune-work/w*.jsonl > "$OUT/tuning-gpu.jsonl" 2>/dev/null
for f in /tmp/gpu-tune-work/w*.log; do echo "== $f"; grep -v Warning "$f" | tail -n 12; done | tee "$OUT/workers.log"
(nvidia-smi --query-gpu=name,memory.used --format=csv 2>/dev/null || true) | tee -a "$OUT/workers.log"
