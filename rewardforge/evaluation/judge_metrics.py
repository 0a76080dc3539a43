"""How a verdict judge fails, beyond the accuracy of its rewards: its pairwise verdicts asked in
both orders, how often the position decides them, and whether its two questions agree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardforge.data.example import PreferenceExample
from rewardforge.evaluation.diagnostics import ScoredExample
from rewardforge.scoring.judge import Judge, position_bias


def judge_metrics(
    judge: Judge,
    examples: Sequence[PreferenceExample],
    scored: Sequence[ScoredExample] | None,
    progress: bool = False,
    samples: int = 1,
) -> dict[str, Any]:
    """The judge's pairwise figures on the best response against each other one:
    `pairwise_accuracy` (both orders averaged), `in_order_accuracy` and `swapped_accuracy` (the
    better answer shown first, then second), `position_bias` (share of pairs with the same
    position picked both times); with `scored` (a verdict judge's pointwise rewards)
    `agreement` (share where the pairwise verdict and the pointwise rewards pick the same
    answer); for a reasoning judge (`samples` replies an order) `unparsed_rate`, the share of
    its replies without a verdict."""
    pairs = [(example, index) for example in examples for index in range(1, len(example.responses))]
    verdicts = judge.judge_pairs(
        [example.prompt for example, _ in pairs],
        [example.responses[0] for example, _ in pairs],
        [example.responses[index] for example, index in pairs],
        progress=progress,
        samples=samples,
    )
    count = len(verdicts)
    picks = [verdict.first_better > 0.5 for verdict in verdicts]
    metrics: dict[str, Any] = {
        "pairs": count,
        "pairwise_accuracy": sum(picks) / count,
        "in_order_accuracy": sum(v.in_order > 0 for v in verdicts) / count,
        "swapped_accuracy": sum(v.swapped < 0 for v in verdicts) / count,
        "position_bias": position_bias(verdicts),
    }
    if scored is not None:  # the same pairs, in the same order
        pointwise = [
            rewards.rewards[0] > rewards.rewards[index]
            for rewards in scored
            for index in range(1, len(rewards.rewards))
        ]
        metrics["agreement"] = sum(p == q for p, q in zip(picks, pointwise)) / count
    replies = sum(verdict.replies for verdict in verdicts)
    if replies:
        metrics["replies"] = replies
        metrics["unparsed_rate"] = sum(verdict.unparsed for verdict in verdicts) / replies
    return metrics
