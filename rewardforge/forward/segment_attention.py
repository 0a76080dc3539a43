"""SDPA over packed rows, one segment at a time: the forward plan's attention on CPU.

The plan packs a micro-batch's segments (a prompt and its responses) end to end into one row.
The linear layers then see the whole row at once, which is where a CPU gains: a matmul over a
thousand tokens runs faster per token than several over a couple of hundred. Attention must not
see the whole row, though: SDPA computes every query against every key whatever the mask hides,
so one long row would cost quadratic attention compute. This implementation runs SDPA on each
segment's own slice of the queries, keys and values, with that segment's block of the mask
(as `attention_masks.segment_blocks` lays it out), and joins the outputs.

It is registered with transformers as `SEGMENT_SDPA`, so models select it like any attention
implementation. Called without `segment_spans` (a padded batch through the model's own forward)
it is plain SDPA.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

SEGMENT_SDPA = "rewardforge_segment_sdpa"


def segment_sdpa_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    segment_spans: Sequence[tuple[int, int]] | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: `(batch, heads, length, head dim)` in, `(batch,
    length, heads, head dim)` out. `segment_spans` are the `(start, end)` of each segment of one
    packed row, and `attention_mask[..., start:end, :end - start]` is that segment's mask."""
    if segment_spans is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if attention_mask is None:
        raise ValueError("Packed segments reached attention without their mask.")
    # The spans cover the row end to end, so one split per tensor gives every segment's slice:
    # a split's backward is one concatenation, where each basic slice's backward would zero-fill
    # a whole-row gradient and add into it.
    lengths = [end - start for start, end in segment_spans]
    pieces = zip(
        query.split(lengths, dim=2),
        key.split(lengths, dim=2),
        value.split(lengths, dim=2),
        segment_spans,
    )
    outputs = [
        sdpa_attention_forward(
            module, q, k, v, attention_mask[:, :, start:end, : end - start], **kwargs
        )[0]
        for q, k, v, (start, end) in pieces
    ]
    return torch.cat(outputs, dim=1), None


AttentionInterface.register(SEGMENT_SDPA, segment_sdpa_forward)
AttentionMaskInterface.register(SEGMENT_SDPA, sdpa_mask)
