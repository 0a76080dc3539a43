import torch

from rewardforge.forward.attention_masks import (
    block_mask,
    dense_mask,
    segment_blocks,
    segment_spans,
)

# Row 0, packed: segment 0 = prompt (2 tokens), response 1 (2), response 2 (1); segment 1 =
# prompt (1), response 1 (1); then one pad. Each token's subtree: itself and what follows it in
# its own response (and, for a prompt token, every response).
SEGMENTS = torch.tensor([[0, 0, 0, 0, 0, 1, 1, -1]])
SUBTREE_SIZES = torch.tensor([[5, 4, 2, 1, 1, 2, 1, 1]])


def test_decoder_mask_by_hand():
    mask = dense_mask(SEGMENTS, SUBTREE_SIZES, causal=True)[0, 0].int().tolist()
    assert mask == [
        [1, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0, 0],
        [1, 1, 0, 0, 1, 0, 0, 0],  # response 2 sees the prompt and itself, not response 1
        [0, 0, 0, 0, 0, 1, 0, 0],  # a new segment sees nothing before it
        [0, 0, 0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0, 1],  # padding sees only itself
    ]


def test_a_branch_below_the_prompt_sees_its_own_ancestors_only():
    # prompt p, step x shared by two solutions, which then go on with y and with z, w
    sizes = torch.tensor([[5, 4, 1, 2, 1]])
    mask = dense_mask(torch.zeros_like(sizes), sizes, causal=True)[0, 0].int().tolist()
    assert mask == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 0, 1, 0],  # z follows x, not y
        [1, 1, 0, 1, 1],
    ]


def test_encoder_mask_reads_both_ways_inside_a_segment():
    segments = torch.tensor([[0, 0, 1, 1, 1]])
    sizes = torch.tensor([[1, 1, 1, 1, 1]])  # not read without causality
    mask = dense_mask(segments, sizes, causal=False)[0, 0].int().tolist()
    assert mask == [
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 1],
    ]


def test_flex_block_mask_realises_the_same_rule():
    torch.manual_seed(0)
    segments = torch.randint(0, 3, (2, 300)).sort(dim=1).values
    blocks = torch.randint(1, 60, (2, 300))
    segments[1, 250:] = -1
    flex = block_mask(segments, blocks, causal=True)
    dense = flex.to_dense()  # which 128 x 128 blocks FlexAttention computes at all
    expected = dense_mask(segments, blocks, causal=True)
    size = flex.BLOCK_SIZE[0]
    for row in range(2):
        for q_block in range(dense.shape[2]):
            for kv_block in range(dense.shape[3]):
                tile = expected[
                    row,
                    0,
                    q_block * size : (q_block + 1) * size,
                    kv_block * size : (kv_block + 1) * size,
                ]
                assert bool(dense[row, 0, q_block, kv_block]) == bool(tile.any())


def test_segment_blocks_hold_each_packed_segment_on_its_own_grid():
    segments = torch.tensor([[0, 0, 0, 0, 0, 1, 1]])  # row 0 above, without the pad
    blocks = torch.tensor([[5, 4, 2, 1, 1, 2, 1]])
    spans = segment_spans(segments)
    assert spans == [(0, 5), (5, 7)]
    mask = segment_blocks(segments, blocks, causal=True, spans=spans)
    assert mask.shape == (1, 1, 7, 5)  # 7 tokens, the longest segment has 5
    full = dense_mask(segments, blocks, causal=True)
    for start, end in spans:
        assert torch.equal(mask[..., start:end, : end - start], full[..., start:end, start:end])
        assert not mask[..., start:end, end - start :].any()  # nothing past the segment's end
