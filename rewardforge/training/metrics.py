"""Pairwise metrics over scored preference groups (ties count as wrong, as in RewardBench)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rewardforge.errors import UserError


def pairwise_metrics(group_rewards: Sequence[Sequence[float]]) -> dict[str, float]:
    """Accuracy, mean margin and Bradley-Terry loss over every (better, worse) pair.

    Each group lists rewards best response first; a K-way group contributes all K(K-1)/2 pairs.
    """
    margins = [
        rewards[i] - rewards[j]
        for rewards in group_rewards
        for i in range(len(rewards))
        for j in range(i + 1, len(rewards))
    ]
    if not margins:
        raise UserError("No preference pairs to evaluate.")
    return {
        "accuracy": sum(margin > 0 for margin in margins) / len(margins),
        "n_pairs": len(margins),
        "mean_margin": sum(margins) / len(margins),
        "loss": sum(_softplus(-margin) for margin in margins) / len(margins),
    }


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
