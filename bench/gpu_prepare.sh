#!/usr/bin/env bash
# Run here, after setup.sh: gather into .device/ what bench/gpu_run.sh needs on a lent GPU machine
# that has CUDA torch but cannot download anything. That is the wheels it lacks or holds in other
# versions (this .venv's versions, so the GPU runs the tested code) and SmolLM2's tokenizer,
# which the random-weight Llama rows use. About 17 MB; carry `.device` with the device tool.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE_PYTHON="${DEVICE_PYTHON:-3.12}"  # the GPU machine's python3
PREPARED=.device
rm -rf "$PREPARED"
mkdir -p "$PREPARED/wheels" "$PREPARED/cache/bench"
specs=()
for name in transformers datasets dill multiprocess trl peft regex; do
  specs+=("$name==$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('$name'))")")
done
.venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version "$DEVICE_PYTHON" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$PREPARED/wheels" "${specs[@]}"
cache=$(.venv/bin/python -c "
import sys; sys.path.insert(0, 'bench')
import throughput
from rewardforge.models.backbones import cache_dir
throughput.shape_tokenizer()
print(cache_dir())")
cp -r "$cache/bench/tokenizer" "$PREPARED/cache/bench/"
echo "prepared for the GPU machine: ${specs[*]}, and the shape rows' tokenizer"
du -sh "$PREPARED"
