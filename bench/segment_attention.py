"""Segment SDPA on CPU: forward and backward time of `segment_sdpa_forward` against a slice per
segment, the way it took each segment's queries, keys and values before 2026-11-30.

    .venv/bin/python bench/segment_attention.py

SmolLM2-135M's attention shapes (9 query heads, 3 key/value heads, head dim 64) on one packed
row of four causal segments; the two ways run alternately, and torch's profiler counts the
`fill_` and `add_` calls of one forward and backward of each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.profiler import profile
from transformers.integrations.sdpa_attention import sdpa_attention_forward

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rewardforge.forward.attention_masks import attention_inputs  # noqa: E402
from rewardforge.forward.segment_attention import SEGMENT_SDPA, segment_sdpa_forward  # noqa: E402

SEGMENT_LENGTHS = [260, 180, 310, 240]
QUERY_HEADS, KEY_VALUE_HEADS, HEAD_DIM = 9, 3, 64
REPEATS = 60


class Attention(torch.nn.Module):
    """The attributes transformers' SDPA reads from an attention module."""

    num_key_value_groups = QUERY_HEADS // KEY_VALUE_HEADS
    is_causal = True


def packed_row_attention() -> dict:
    """The mask and spans the forward plan hands `SEGMENT_SDPA` for one row of causal segments."""
    segment_ids = torch.cat(
        [torch.full((length,), index) for index, length in enumerate(SEGMENT_LENGTHS)]
    )[None]
    # no shared prefixes: each token is seen by the rest of its own segment
    subtree_sizes = torch.cat([torch.arange(length, 0, -1) for length in SEGMENT_LENGTHS])[None]
    return attention_inputs(segment_ids, subtree_sizes, causal=True, backend=SEGMENT_SDPA)


def sliced(module, query, key, value, attention_mask, segment_spans):
    outputs = [
        sdpa_attention_forward(
            module,
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            attention_mask[:, :, start:end, : end - start],
        )[0]
        for start, end in segment_spans
    ]
    return torch.cat(outputs, dim=1), None


def inputs() -> tuple[torch.Tensor, ...]:
    """The same queries, keys and values each call, as leaves that collect gradients."""
    torch.manual_seed(0)
    length = sum(SEGMENT_LENGTHS)
    query = torch.randn(1, QUERY_HEADS, length, HEAD_DIM, requires_grad=True)
    key = torch.randn(1, KEY_VALUE_HEADS, length, HEAD_DIM, requires_grad=True)
    value = torch.randn(1, KEY_VALUE_HEADS, length, HEAD_DIM, requires_grad=True)
    return query, key, value


def forward_backward(attention, query, key, value, row: dict) -> float:
    """Seconds for one forward and backward of `attention` over the packed `row`."""
    start = time.perf_counter()
    output = attention(Attention(), query, key, value, **row)[0]
    output.sum().backward()
    return time.perf_counter() - start


def main() -> None:
    ways = {"slice per segment": sliced, "split (current)": segment_sdpa_forward}
    row = packed_row_attention()
    gradients = []
    for attention in ways.values():  # also warms up
        query, key, value = inputs()
        forward_backward(attention, query, key, value, row)
        gradients.append(query.grad)
    assert torch.allclose(*gradients), "the two ways disagree"
    seconds = dict.fromkeys(ways, 0.0)
    for repeat in range(REPEATS):
        for name in list(ways)[:: 1 if repeat % 2 else -1]:
            seconds[name] += forward_backward(ways[name], *inputs(), row)
    print(f"segments {SEGMENT_LENGTHS}, {REPEATS} alternating repeats, torch {torch.__version__}")
    for name, attention in ways.items():
        tensors = inputs()
        with profile() as profiler:
            forward_backward(attention, *tensors, row)
        calls = {event.key: event.count for event in profiler.key_averages()}
        print(
            f"{name:<18} {seconds[name] / REPEATS * 1000:6.2f} ms forward+backward, "
            f"{calls.get('aten::fill_', 0)} fill_, {calls.get('aten::add_', 0)} add_"
        )


if __name__ == "__main__":
    main()
