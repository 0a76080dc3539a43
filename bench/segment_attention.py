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

from rewardforge.models.segment_attention import segment_sdpa_forward  # noqa: E402

SEGMENT_LENGTHS = [260, 180, 310, 240]
QUERY_HEADS, KEY_VALUE_HEADS, HEAD_DIM = 9, 3, 64
REPEATS = 60


class Attention(torch.nn.Module):
    """The attributes transformers' SDPA reads from an attention module."""

    num_key_value_groups = QUERY_HEADS // KEY_VALUE_HEADS
    is_causal = True


def spans() -> list[tuple[int, int]]:
    ends = torch.tensor(SEGMENT_LENGTHS).cumsum(0).tolist()
    return [(end - length, end) for length, end in zip(SEGMENT_LENGTHS, ends)]


def segment_blocks() -> torch.Tensor:
    blocks = torch.zeros((1, 1, sum(SEGMENT_LENGTHS), max(SEGMENT_LENGTHS)), dtype=torch.bool)
    for start, end in spans():
        blocks[:, :, start:end, : end - start] = torch.ones(end - start, end - start).tril().bool()
    return blocks


def sliced(module, query, key, value, mask, segment_spans):
    outputs = [
        sdpa_attention_forward(
            module,
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            mask[:, :, start:end, : end - start],
        )[0]
        for start, end in segment_spans
    ]
    return torch.cat(outputs, dim=1), None


def inputs() -> tuple[torch.Tensor, ...]:
    """The same queries, keys and values each call (leaves that collect gradients), and the mask."""
    torch.manual_seed(0)
    length = sum(SEGMENT_LENGTHS)
    query = torch.randn(1, QUERY_HEADS, length, HEAD_DIM, requires_grad=True)
    key = torch.randn(1, KEY_VALUE_HEADS, length, HEAD_DIM, requires_grad=True)
    value = torch.randn(1, KEY_VALUE_HEADS, length, HEAD_DIM, requires_grad=True)
    return query, key, value, segment_blocks()


def forward_backward(attention, query, key, value, mask) -> float:
    """Seconds for one forward and backward of `attention`."""
    start = time.perf_counter()
    output = attention(Attention(), query, key, value, mask, segment_spans=spans())[0]
    output.sum().backward()
    return time.perf_counter() - start


def main() -> None:
    ways = {"slice per segment": sliced, "split (current)": segment_sdpa_forward}
    gradients = []
    for attention in ways.values():  # also warms up
        query, *rest = inputs()
        forward_backward(attention, query, *rest)
        gradients.append(query.grad)
    assert torch.allclose(*gradients), "the two ways disagree"
    seconds = dict.fromkeys(ways, 0.0)
    for repeat in range(REPEATS):
        for name in list(ways)[:: 1 if repeat % 2 else -1]:
            seconds[name] += forward_backward(ways[name], *inputs())
    print(f"segments {SEGMENT_LENGTHS}, {REPEATS} alternating repeats, torch {torch.__version__}")
    for name, attention in ways.items():
        tensors = inputs()
        with profile() as profiler:
            forward_backward(attention, *tensors)
        calls = {event.key: event.count for event in profiler.key_averages()}
        print(
            f"{name:<18} {seconds[name] / REPEATS * 1000:6.2f} ms forward+backward, "
            f"{calls.get('aten::fill_', 0)} fill_, {calls.get('aten::add_', 0)} add_"
        )


if __name__ == "__main__":
    main()
