"""What a tokenizer adds around a text or a sentence pair, learnt from probes, so that the recipe
can rebuild those special tokens around ids it has truncated itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from transformers import PreTrainedTokenizerBase

from rewardforge.errors import UserError


def common_prefix_length(a: Sequence, b: Sequence) -> int:
    """How many leading items (characters, token ids) `a` and `b` share."""
    length = 0
    for char_a, char_b in zip(a, b):
        if char_a != char_b:
            break
        length += 1
    return length


def added_specials(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer adds before and after one text (a BOS, an EOS), from a
    probe."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    start = find(full, bare, 0)
    return full[:start], full[start + len(bare) :]


def pair_builder(tokenizer: PreTrainedTokenizerBase) -> PairBuilder:
    """Learn how an encoder's tokenizer wraps a sentence pair in special tokens, from a probe."""
    first = tokenizer("a", add_special_tokens=False)["input_ids"]
    second = tokenizer("b", add_special_tokens=False)["input_ids"]
    probe = tokenizer("a", "b")
    ids = probe["input_ids"]
    types = probe.get("token_type_ids") or [0] * len(ids)
    start_first = find(ids, first, 0)
    start_second = find(ids, second, start_first + len(first))
    end_first, end_second = start_first + len(first), start_second + len(second)

    def build(prompt_ids: list[int], response_ids: list[int]) -> tuple[list[int], list[int]]:
        input_ids = (
            ids[:start_first]
            + prompt_ids
            + ids[end_first:start_second]
            + response_ids
            + ids[end_second:]
        )
        type_ids = (
            types[:start_first]
            + [types[start_first]] * len(prompt_ids)
            + types[end_first:start_second]
            + [types[start_second]] * len(response_ids)
            + types[end_second:]
        )
        return input_ids, type_ids

    return build


PairBuilder = Callable[[list[int], list[int]], tuple[list[int], list[int]]]


def special_token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """The id of one of the recipe's added special tokens, which the tokenizer must hold."""
    if token not in tokenizer.get_vocab():
        raise UserError(
            f"the tokenizer has no {token} token, which this reference-based recipe needs. Load "
            "the model directory that `rewardforge train --reference-mode` wrote."
        )
    return tokenizer.convert_tokens_to_ids(token)


def find(haystack: list[int], needle: list[int], start: int) -> int:
    for index in range(start, len(haystack) - len(needle) + 1):
        if haystack[index : index + len(needle)] == needle:
            return index
    raise UserError("could not find how this tokenizer joins a sentence pair.")
