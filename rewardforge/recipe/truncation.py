"""Fitting token ids into the recipe's length: prompts lose their start, answers their end, and
the tokens that carry the reward are kept."""

from __future__ import annotations


def truncate(
    prompt: list[int], response: list[int], budget: int, keep_tail: int
) -> tuple[list[int], list[int], bool]:
    """Fit prompt + response into `budget` tokens: prompt loses its start, response its end."""
    if len(prompt) + len(response) <= budget:
        return prompt, response, False
    keep_prompt = min(len(prompt), max(budget - len(response), budget // 2))
    prompt = prompt[len(prompt) - keep_prompt :]
    return prompt, cut_end(response, budget - keep_prompt, keep_tail), True


def truncate_with_reference(
    prompt: list[int], reference: list[int], response: list[int], budget: int, keep_tail: int
) -> tuple[list[int], list[int], list[int], bool]:
    """Fit two copies of the prompt, the reference and the response into `budget` tokens.

    The prompt loses its start (keeping at least an eighth of the budget a copy), then the
    reference and the response share what is left, each losing its end but not its last
    `keep_tail` tokens.
    """
    if 2 * len(prompt) + len(reference) + len(response) <= budget:
        return prompt, reference, response, False
    answers = len(reference) + len(response)
    keep_prompt = min(len(prompt), max((budget - answers) // 2, budget // 8))
    rest = budget - 2 * keep_prompt
    keep_response = min(len(response), max(rest - len(reference), rest // 2))
    keep_reference = min(len(reference), rest - keep_response)
    keep_response = min(len(response), rest - keep_reference)
    return (
        prompt[len(prompt) - keep_prompt :],
        cut_end(reference, keep_reference, keep_tail),
        cut_end(response, keep_response, keep_tail),
        True,
    )


def cut_end(ids: list[int], keep: int, keep_tail: int) -> list[int]:
    """The first `keep` tokens of `ids`, of which the last `keep_tail` are the end of `ids`."""
    if len(ids) <= keep:
        return ids
    tail = ids[len(ids) - keep_tail :] if keep_tail else []
    return ids[: max(keep - len(tail), 0)] + tail
