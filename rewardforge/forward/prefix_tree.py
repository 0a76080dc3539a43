"""A group's token sequences as one prefix tree, laid out depth-first: what decoders share.

Responses to one prompt begin with the same tokens (the prompt), and the solutions a process
reward model reads often go on together for several steps, or repeat one another outright. A
causal decoder computes the same hidden states for the same leading tokens at the same
positions, whatever follows them, so each distinct prefix needs to be fed once. The tree of the
group's sequences (one node a token) is laid out in depth-first order, which puts every token's
descendants right after it: a token is seen by exactly the `subtree_size` tokens that start at
it (itself and its descendants), and its position id is its depth. One prompt and K responses
that part right after it is the plan's shared-prompt segment `[prompt][response 1]...`; solutions
that share their first steps share those too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class FlatPrefixTree:
    """The tree of a group's sequences, depth-first, one entry per distinct prefix.

    `where[s][p]` is the index in `ids` of token `p` of sequence `s`.
    """

    ids: list[int]
    positions: list[int]
    subtree_sizes: list[int]
    where: list[list[int]]


class _Node:
    __slots__ = ("children", "index", "size", "token")

    def __init__(self, token: int) -> None:
        self.token = token
        self.children: dict[int, _Node] = {}
        self.index = -1
        self.size = 1


def flat_prefix_tree(sequences: Sequence[Sequence[int]]) -> FlatPrefixTree:
    """Lay `sequences` out as their prefix tree, depth-first, children in first-seen order (so a
    single sequence comes out as it went in)."""
    root = _Node(-1)
    paths: list[list[_Node]] = []
    for sequence in sequences:
        node, path = root, []
        for token in sequence:
            child = node.children.get(token)
            if child is None:
                child = node.children[token] = _Node(token)
            path.append(child)
            node = child
        paths.append(path)
    ids: list[int] = []
    positions: list[int] = []
    order: list[_Node] = []
    stack = [(child, 0) for child in reversed(root.children.values())]
    while stack:  # iterative pre-order: sequences may be thousands of tokens deep
        node, depth = stack.pop()
        node.index = len(ids)
        ids.append(node.token)
        positions.append(depth)
        order.append(node)
        stack += [(child, depth + 1) for child in reversed(node.children.values())]
    for node in reversed(order):  # children come after their parent in pre-order
        node.size = 1 + sum(child.size for child in node.children.values())
    where = [[node.index for node in path] for path in paths]
    return FlatPrefixTree(ids, positions, [node.size for node in order], where)
