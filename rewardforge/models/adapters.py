"""Merge a trained LoRA adapter into a plain (unquantized) copy of its backbone.

A model trained with `--load-in-4bit/8bit` keeps its base weights quantized; merging the adapter
into those would save bitsandbytes weights that only load on a CUDA machine. Merging into the
backbone loaded in float32 instead gives a plain model that loads anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transformers import PreTrainedModel

from rewardforge.models.reward_head import load_reward_backbone


def merge_into_plain_backbone(
    backbone: str, adapter_dir: str | Path, added_tokens: Sequence[str] = ()
) -> PreTrainedModel:
    """The float32 `backbone` with the adapter and reward head saved in `adapter_dir` merged.

    `added_tokens` are the special tokens training added (its embedding table's extra rows).
    """
    from peft import PeftModel

    base, _, _ = load_reward_backbone(backbone, dtype="float32", added_tokens=added_tokens)
    return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
