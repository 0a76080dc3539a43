"""Side by side: how two reward models rank each example's responses, and what moved.

Made for checking a fine-tuned model against its base on a few verification prompts: every
candidate with both rewards and ranks, and the share of prompts whose preferred (first-labelled)
answer each model puts on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardforge.data.example import PreferenceExample
from rewardforge.evaluation.diagnostics import ScoredExample


def rank_changes(
    examples: Sequence[PreferenceExample], scored: dict[str, list[ScoredExample]]
) -> list[dict[str, Any]]:
    """Per example: its candidates, best-labelled first, with each model's reward and rank.

    `rank_change` is the first model's rank minus the second's: positive when the second
    model ranks the candidate higher.
    """
    (first, first_scored), (second, second_scored) = scored.items()
    table = []
    for example, a, b in zip(examples, first_scored, second_scored):
        ranks_a, ranks_b = _ranks(a.rewards), _ranks(b.rewards)
        candidates = [
            {
                "response": response,
                "labelled_rank": index + 1,
                "rewards": {first: a.rewards[index], second: b.rewards[index]},
                "ranks": {first: ranks_a[index], second: ranks_b[index]},
                "rank_change": ranks_a[index] - ranks_b[index],
            }
            for index, response in enumerate(example.responses)
        ]
        table.append(
            {
                "source": example.source,
                "prompt": example.prompt,
                "reference": example.reference,
                "candidates": candidates,
            }
        )
    return table


def _ranks(rewards: Sequence[float]) -> list[int]:
    """1 for the highest reward, 2 for the next, ... (ties in input order)."""
    order = sorted(range(len(rewards)), key=lambda index: -rewards[index])
    ranks = [0] * len(rewards)
    for rank, index in enumerate(order, start=1):
        ranks[index] = rank
    return ranks
