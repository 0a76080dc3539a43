"""The forward plan's attention mask, described once and realised per attention backend.

Every token carries a segment id (which sequence it belongs to; -1 for padding) and a block id
(0 for a shared prompt, 1..K for the K responses after it). A token sees another when both sit
in the same segment, the other is in the prompt or in its own block, and, for decoders, the
other does not come later. Padding sees only itself, so that no row of the mask is empty.

`visible` states that rule once. `dense_mask` evaluates it on index grids for SDPA and eager
attention (any device); `block_mask` hands the same function to FlexAttention, which skips the
blocks it masks out (CUDA).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

MaskMod = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def visible(segment_ids: torch.Tensor, block_ids: torch.Tensor, causal: bool) -> MaskMod:
    """The mask rule as a FlexAttention `mask_mod(batch, head, query, key) -> bool`."""

    def mask_mod(
        batch: torch.Tensor, head: torch.Tensor, query: torch.Tensor, key: torch.Tensor
    ) -> torch.Tensor:
        query_segment = segment_ids[batch, query]
        query_block, key_block = block_ids[batch, query], block_ids[batch, key]
        same_segment = (query_segment == segment_ids[batch, key]) & (query_segment >= 0)
        seen = same_segment & ((key_block == 0) | (key_block == query_block))
        if causal:
            seen = seen & (key <= query)
        return seen | (query == key)

    return mask_mod


def dense_mask(segment_ids: torch.Tensor, block_ids: torch.Tensor, causal: bool) -> torch.Tensor:
    """`(rows, 1, L, L)` boolean mask (True = attend), for SDPA or eager attention."""
    rows, length = segment_ids.shape
    device = segment_ids.device
    batch = torch.arange(rows, device=device)[:, None, None]
    positions = torch.arange(length, device=device)
    mask_mod = visible(segment_ids, block_ids, causal)
    return mask_mod(batch, None, positions[None, :, None], positions[None, None, :])[:, None]


def block_mask(segment_ids: torch.Tensor, block_ids: torch.Tensor, causal: bool):
    """A FlexAttention `BlockMask` of the same rule, built on the ids' device."""
    from torch.nn.attention.flex_attention import create_block_mask

    rows, length = segment_ids.shape
    mask_mod = visible(segment_ids, block_ids, causal)
    return create_block_mask(mask_mod, rows, None, length, length, device=segment_ids.device)


def attention_mask(
    segment_ids: torch.Tensor, block_ids: torch.Tensor, causal: bool, backend: str
) -> torch.Tensor:
    """The mask in the form the model's attention implementation (`backend`) takes."""
    if backend == "flex_attention":
        return block_mask(segment_ids, block_ids, causal)
    return dense_mask(segment_ids, block_ids, causal)
