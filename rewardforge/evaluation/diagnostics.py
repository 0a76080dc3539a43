"""The numbers of an evaluation: how often, how confidently and why a reward model is right.

Every function takes `ScoredExample`s (one preference group with the model's rewards) and returns
plain numbers, so each can be checked by hand on a few fixed inputs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from rewardforge.training.metrics import pairwise_metrics


@dataclass(frozen=True)
class ScoredExample:
    """One preference group, best-labelled response first, with the model's rewards."""

    rewards: tuple[float, ...]
    lengths: tuple[int, ...]  # response lengths in tokens, same order
    category: str | None = None
    source: str = ""

    def pairs(self) -> list[tuple[int, int]]:
        """(better, worse) response indices: every i < j."""
        size = len(self.rewards)
        return [(i, j) for i in range(size) for j in range(i + 1, size)]


def diagnose(examples: Sequence[ScoredExample], seed: int = 0) -> dict[str, Any]:
    """Every diagnostic of the evaluation report, as one JSON-ready dict."""
    low, high = bootstrap_accuracy_interval(examples, seed=seed)
    metrics: dict[str, Any] = {
        **pairwise_metrics([example.rewards for example in examples]),
        "accuracy_ci95": [low, high],
        "n_examples": len(examples),
        "length_bias": length_bias(examples),
        "calibration": calibration(examples),
    }
    categories = category_accuracy(examples, seed=seed)
    if categories:
        metrics["categories"] = categories
    groups = [example for example in examples if len(example.rewards) > 2]
    if groups:
        metrics["ranking"] = {
            "n_groups": len(groups),
            "best_of_n_accuracy": best_of_n_accuracy(groups),
            "kendall_tau": mean_kendall_tau(groups),
        }
    return metrics


def pair_outcomes(examples: Sequence[ScoredExample]) -> np.ndarray:
    """Per example: the share of its pairs ranked right (ties count as wrong)."""
    return np.array(
        [np.mean([ex.rewards[i] > ex.rewards[j] for i, j in ex.pairs()]) for ex in examples]
    )


def bootstrap_accuracy_interval(
    examples: Sequence[ScoredExample], resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval of pairwise accuracy, resampling whole examples.

    Pairs of one ranked group share a prompt and are not independent, so the unit drawn is the
    example; each draw's accuracy weights examples by their number of pairs.
    """
    correct = pair_outcomes(examples) * [len(ex.pairs()) for ex in examples]
    counts = np.array([len(ex.pairs()) for ex in examples])
    draws = np.random.default_rng(seed).integers(0, len(examples), (resamples, len(examples)))
    accuracies = correct[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.percentile(accuracies, [2.5, 97.5])
    return float(low), float(high)


def category_accuracy(
    examples: Sequence[ScoredExample], seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Accuracy, pair count and bootstrap interval per `category` (empty if none is set)."""
    by_category: dict[str, list[ScoredExample]] = defaultdict(list)
    for example in examples:
        if example.category is not None:
            by_category[example.category].append(example)
    result = {}
    for name, members in sorted(by_category.items()):
        pairs = pairwise_metrics([member.rewards for member in members])
        result[name] = {
            "accuracy": pairs["accuracy"],
            "n_pairs": pairs["n_pairs"],
            "accuracy_ci95": list(bootstrap_accuracy_interval(members, seed=seed)),
        }
    return result


def best_of_n_accuracy(groups: Sequence[ScoredExample]) -> float:
    """Share of groups whose best-labelled response gets the top reward (ties split the credit)."""
    credit = 0.0
    for group in groups:
        top = max(group.rewards)
        tied = sum(reward == top for reward in group.rewards)
        credit += (group.rewards[0] == top) / tied
    return credit / len(groups)


def mean_kendall_tau(groups: Sequence[ScoredExample]) -> float:
    """Mean Kendall tau-b between the rewards and the given order (best first)."""
    taus = []
    for group in groups:
        given = list(range(len(group.rewards), 0, -1))  # higher is better, like a reward
        tau = stats.kendalltau(group.rewards, given).statistic
        taus.append(0.0 if math.isnan(tau) else float(tau))  # all rewards tied: no order
    return float(np.mean(taus))


def length_bias(examples: Sequence[ScoredExample]) -> dict[str, Any]:
    """How much the rewards follow response length instead of quality.

    Pearson and Spearman correlation of reward with length (tokens) over all responses, and
    pairwise accuracy split by whether the preferred response is the longer or the shorter one.
    A model that learned length scores well on `chosen_longer` and badly on `chosen_shorter`.
    """
    rewards = [reward for ex in examples for reward in ex.rewards]
    lengths = [length for ex in examples for length in ex.lengths]
    split: dict[str, list[bool]] = {"chosen_longer": [], "chosen_shorter": [], "same_length": []}
    for ex in examples:
        for better, worse in ex.pairs():
            if ex.lengths[better] > ex.lengths[worse]:
                key = "chosen_longer"
            elif ex.lengths[better] < ex.lengths[worse]:
                key = "chosen_shorter"
            else:
                key = "same_length"
            split[key].append(ex.rewards[better] > ex.rewards[worse])
    constant = len(set(rewards)) < 2 or len(set(lengths)) < 2
    return {
        "pearson": None if constant else float(stats.pearsonr(rewards, lengths).statistic),
        "spearman": None if constant else float(stats.spearmanr(rewards, lengths).statistic),
        **{
            key: {"accuracy": float(np.mean(hits)) if hits else None, "n_pairs": len(hits)}
            for key, hits in split.items()
        },
    }


def calibration(examples: Sequence[ScoredExample], bins: int = 10) -> dict[str, Any]:
    """Expected calibration error of `sigmoid(r_a - r_b)` as the probability that a wins.

    Each pair is counted in both orders, (p, won) and (1 - p, lost), so the labels' order does
    not matter. Bins split [0, 1] evenly; ECE is the pair-weighted mean gap between a bin's mean
    predicted probability and its observed win rate. The bins feed the reliability diagram.
    """
    differences = np.array(
        [ex.rewards[i] - ex.rewards[j] for ex in examples for i, j in ex.pairs()]
    )
    chosen_wins = 1.0 / (1.0 + np.exp(-differences))
    probabilities = np.concatenate([chosen_wins, 1.0 - chosen_wins])
    outcomes = np.concatenate([np.ones_like(chosen_wins), np.zeros_like(chosen_wins)])
    which = np.minimum((probabilities * bins).astype(int), bins - 1)
    table = []
    ece = 0.0
    for index in range(bins):
        inside = which == index
        if not inside.any():
            continue
        confidence = float(probabilities[inside].mean())
        win_rate = float(outcomes[inside].mean())
        ece += inside.mean() * abs(confidence - win_rate)
        table.append(
            {
                "low": index / bins,
                "high": (index + 1) / bins,
                "count": int(inside.sum()),
                "mean_probability": confidence,
                "win_rate": win_rate,
            }
        )
    return {"ece": float(ece), "bins": table}
