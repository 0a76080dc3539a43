"""The sequences a group of responses becomes under the segment layouts.

A `Segment` is one sequence the model reads: its tokens, each token's position id and subtree
size (how many tokens, from it on, see it: `attention_masks`), and, for each response it holds,
where that response's tokens sit in it. Decoders read a group as one segment, the prefix tree of
its responses; encoders read both ways, so only identical responses can share one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rewardforge.forward.prefix_tree import flat_prefix_tree


@dataclass
class Segment:
    """One sequence of a collated batch. `where[i][p]` is the index in `ids` of token p of
    response `ranks[i]`."""

    ids: list[int]
    positions: list[int]
    subtree_sizes: list[int]
    ranks: list[int]
    where: list[list[int]]
    token_type_ids: list[int] | None = None


def prefix_tree_segment(responses: Sequence[Sequence[int]]) -> Segment:
    """A decoder's group: the prompt and every prefix the responses share, fed once."""
    tree = flat_prefix_tree(responses)
    ranks = list(range(len(responses)))
    return Segment(tree.ids, tree.positions, tree.subtree_sizes, ranks, tree.where)


def distinct_segments(
    responses: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None
) -> list[Segment]:
    """An encoder's group: a segment per distinct response; identical ones point at one."""
    segments: list[Segment] = []
    seen: dict[tuple, Segment] = {}
    types = token_type_ids or [None] * len(responses)
    for rank, (ids, type_ids) in enumerate(zip(responses, types)):
        key = (tuple(ids), tuple(type_ids or ()))
        if key not in seen:
            length = len(ids)
            sizes = [length - index for index in range(length)]
            seen[key] = Segment(list(ids), list(range(length)), sizes, [], [], type_ids)
            segments.append(seen[key])
        seen[key].ranks.append(rank)
        seen[key].where.append(list(range(len(ids))))
    return segments
