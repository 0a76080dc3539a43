"""`evaluate()`: pairwise accuracy, margin and loss of a reward model on preference data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardforge.api.reward_model import RewardModel
from rewardforge.data import load_preferences
from rewardforge.training.metrics import pairwise_metrics


def evaluate(
    model: str | Path | RewardModel,
    data: str | Path | Sequence[str | Path],
    *,
    columns: dict[str, str] | None = None,
    skip_invalid: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every preference example in `data` and return pairwise metrics.

    Returns `accuracy` (ties count as wrong), `n_pairs`, `mean_margin`, `loss` (Bradley-Terry),
    `n_examples` and the data `formats` detected.
    """
    reward_model = model if isinstance(model, RewardModel) else RewardModel.load(model)
    report = load_preferences(data, columns=columns, skip_invalid=skip_invalid)
    rewards = reward_model.score_examples(report.examples, progress=progress)
    return {
        **pairwise_metrics(rewards),
        "n_examples": len(report.examples),
        "rows_skipped": sum(report.skipped.values()),
        "formats": report.formats,
    }
