#!/usr/bin/env bash
# Run on a lent GPU machine (its python3 holds CUDA torch; no network), with `.device` from
# bench/gpu_prepare.sh carried: bench/throughput.py with these arguments, results under $OUT.
#   bash bench/gpu_run.sh --rows llama-1b --data hh,long
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .device/wheels/*.whl
export PYTHONPATH="/tmp/site:$PWD" REWARDFORGE_CACHE="$PWD/.device/cache"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
OUT="${OUT:-runs/gpu}"
mkdir -p "$OUT"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
fi
python3 -c "
import datasets, peft, torch, transformers, trl
print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__,
      'peft', peft.__version__, 'datasets', datasets.__version__)" | tee -a "$OUT/device.txt"
python3 bench/throughput.py "$@" --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
