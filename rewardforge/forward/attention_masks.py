"""The forward plan's attention mask, described once and realised per attention backend.

Every token carries a segment id (which sequence it belongs to; -1 for padding) and, for
decoders, a subtree size: a segment is a prefix tree laid out depth-first (`prefix_tree`), so
the tokens that see token k are k itself and the `subtree_size - 1` tokens right after it (its
descendants). A token sees another when both sit in the same segment and, for decoders, the
query is the key or one of its descendants. Padding sees only itself, so that no row of the mask
is empty.

`visible` states that rule once. `dense_mask` evaluates it on index grids for SDPA and eager
attention (any device); `block_mask` hands the same function to FlexAttention, which skips the
blocks it masks out (CUDA); `segment_blocks` evaluates it on each packed segment's own grid, for
`SEGMENT_SDPA`, which runs attention one segment at a time (CPU).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch

from rewardforge.forward.segment_attention import SEGMENT_SDPA

MaskMod = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def visible(segment_ids: torch.Tensor, subtree_sizes: torch.Tensor, causal: bool) -> MaskMod:
    """The mask rule as a FlexAttention `mask_mod(batch, head, query, key) -> bool`."""

    def mask_mod(
        batch: torch.Tensor, head: torch.Tensor, query: torch.Tensor, key: torch.Tensor
    ) -> torch.Tensor:
        query_segment = segment_ids[batch, query]
        seen = (query_segment == segment_ids[batch, key]) & (query_segment >= 0)
        if causal:  # the query is the key or one of its descendants
            seen = seen & (key <= query) & (query < key + subtree_sizes[batch, key])
        return seen | (query == key)

    return mask_mod


def dense_mask(
    segment_ids: torch.Tensor, subtree_sizes: torch.Tensor, causal: bool
) -> torch.Tensor:
    """`(rows, 1, L, L)` boolean mask (True = attend), for SDPA or eager attention."""
    rows, length = segment_ids.shape
    device = segment_ids.device
    batch = torch.arange(rows, device=device)[:, None, None]
    positions = torch.arange(length, device=device)
    mask_mod = visible(segment_ids, subtree_sizes, causal)
    return mask_mod(batch, None, positions[None, :, None], positions[None, None, :])[:, None]


def block_mask(segment_ids: torch.Tensor, subtree_sizes: torch.Tensor, causal: bool):
    """A FlexAttention `BlockMask` of the same rule, built on the ids' device."""
    from torch.nn.attention.flex_attention import create_block_mask

    rows, length = segment_ids.shape
    mask_mod = visible(segment_ids, subtree_sizes, causal)
    return create_block_mask(mask_mod, rows, None, length, length, device=segment_ids.device)


def segment_spans(segment_ids: torch.Tensor) -> list[tuple[int, int]]:
    """`(start, end)` of each segment of one packed row, in order."""
    counts = torch.unique_consecutive(segment_ids[0], return_counts=True)[1].tolist()
    return [(end - count, end) for count, end in zip(counts, itertools.accumulate(counts))]


def segment_blocks(
    segment_ids: torch.Tensor,
    subtree_sizes: torch.Tensor,
    causal: bool,
    spans: Sequence[tuple[int, int]],
) -> torch.Tensor:
    """`(1, 1, L, longest segment)` boolean mask of one packed row whose segments are `spans`
    (`segment_spans`): row `q` holds the rule for the keys of q's own segment, from that
    segment's first token on (False past its end)."""
    longest = max(end - start for start, end in spans)
    blocks = torch.zeros(
        (1, 1, segment_ids.shape[1], longest), dtype=torch.bool, device=segment_ids.device
    )
    for start, end in spans:
        piece = dense_mask(segment_ids[:, start:end], subtree_sizes[:, start:end], causal)
        blocks[:, :, start:end, : end - start] = piece
    return blocks


def attention_inputs(
    segment_ids: torch.Tensor, subtree_sizes: torch.Tensor, causal: bool, backend: str
) -> dict[str, Any]:
    """The mask (and, for `SEGMENT_SDPA` on one packed row, the segment spans) in the form the
    model's attention implementation (`backend`) takes, as keyword arguments of its forward."""
    if backend == "flex_attention":
        return {"attention_mask": block_mask(segment_ids, subtree_sizes, causal)}
    if backend == SEGMENT_SDPA and segment_ids.shape[0] == 1:
        spans = segment_spans(segment_ids)
        return {
            "attention_mask": segment_blocks(segment_ids, subtree_sizes, causal, spans),
            "segment_spans": spans,
        }
    return {"attention_mask": dense_mask(segment_ids, subtree_sizes, causal)}
