"""Process-wide torch settings that only take effect when set before torch is imported."""

from __future__ import annotations

import os

# PyTorch backs CPU allocations of 2 MB and more with transparent huge pages when this is 1. A
# training step allocates large gradient and activation buffers afresh each micro-batch, and
# huge pages spare most of the page faults that fill them: smollm2-135m trained 12% faster in
# BENCHMARKS.md (minilm-l6 unchanged). Linux only; elsewhere torch ignores it.
TORCH_ENVIRONMENT_DEFAULTS = {"THP_MEM_ALLOC_ENABLE": "1"}
# Set by the `rewardforge` command only: the libraries' own bars (transformers' "Loading
# weights" and "Writing model shards" on every load and save) are noise beside rewardforge's
# bars, which stay. `HF_HUB_DISABLE_PROGRESS_BARS=0` brings them back.
COMMAND_ENVIRONMENT_DEFAULTS = {"HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def apply_torch_environment_defaults() -> None:
    """Set each of rewardforge's torch environment defaults the user has not set already.

    Call it before the first `import torch`: torch reads these once, at its first allocation.
    """
    for name, value in TORCH_ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)


def apply_command_environment_defaults() -> None:
    """The `rewardforge` command's environment defaults (see COMMAND_ENVIRONMENT_DEFAULTS),
    where the user has not set them; before transformers is imported."""
    for name, value in COMMAND_ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)


def unset_torch_environment_defaults() -> list[str]:
    """`NAME=value` for each default this process's environment lacks."""
    return [
        f"{name}={value}"
        for name, value in TORCH_ENVIRONMENT_DEFAULTS.items()
        if name not in os.environ
    ]
