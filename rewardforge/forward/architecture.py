"""How the forward path reads a transformers model: encoder or decoder, whether its head is BERT's
(which the plan can apply to packed segments), and which attention implementation runs the plan's
packed rows on the model's device."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel
from transformers.utils import is_torch_flex_attn_available

from rewardforge.forward.segment_attention import SEGMENT_SDPA


def default_device() -> str:
    """Where models train and score unless told otherwise: CUDA when there is a GPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def use_plan_attention(model: PreTrainedModel, is_encoder: bool, device: str) -> None:
    """Switch a model loaded with transformers' default attention (SDPA where the architecture
    has it, else eager) to the implementation that runs the forward plan's packed rows.

    The plan packs decoders, and encoders with BERT's head (which it can apply to each packed
    segment's first token), end to end into one row. On CUDA, FlexAttention runs such a row:
    its block masks skip the blocks the plan's mask hides. Elsewhere `SEGMENT_SDPA` does (SDPA
    one segment at a time; FlexAttention has no backward pass on CPU). Other encoders keep
    SDPA's fused kernels for their padded rows, and architectures without SDPA their own.
    """
    if is_encoder and not has_bert_style_head(model):
        return
    if device.startswith("cuda") and is_torch_flex_attn_available() and model._supports_flex_attn:
        model.set_attn_implementation("flex_attention")
    elif not device.startswith("cuda") and model._supports_sdpa:
        model.set_attn_implementation(SEGMENT_SDPA)


def has_bert_style_head(model: PreTrainedModel) -> bool:
    """Whether a classifier's head is BERT's: a pooler over token 0, dropout, a linear layer.

    The forward plan packs encoders only with such a head, which it can apply to each packed
    segment's first token.
    """
    backbone = getattr(model, model.base_model_prefix, None)
    return (
        getattr(backbone, "pooler", None) is not None
        and hasattr(model, "dropout")
        and hasattr(model, "classifier")
    )
