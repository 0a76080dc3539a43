"""A solution's reward from its steps' probabilities of being correct: the weakest step (`min`,
the default), the last step, the product (every step right) or the mean."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from rewardforge.config_fields import setting

Aggregate = Literal["min", "last", "prod", "mean"]
AGGREGATES: tuple[Aggregate, ...] = ("min", "last", "prod", "mean")


def aggregate(probabilities: Sequence[float], how: Aggregate = "min") -> float:
    """One reward for a solution from its step probabilities."""
    if not probabilities:
        return math.nan
    if how == "min":
        return min(probabilities)
    if how == "last":
        return probabilities[-1]
    if how == "prod":
        return math.prod(probabilities)
    if how == "mean":
        return sum(probabilities) / len(probabilities)
    raise ValueError(f"unknown aggregate {how!r}; use one of {', '.join(AGGREGATES)}")


def split_steps(text: str, separator: str) -> list[str]:
    """A generated solution's steps: the text cut at the separator, empty pieces dropped."""
    return [step.strip() for step in text.split(separator) if step.strip()]


def solution_steps(response: str, separator: str, steps: Sequence[str] | None = None) -> list[str]:
    """The steps to score for one item: its given steps, else its response cut at the
    separator, else the whole response as one step."""
    if steps:
        return list(steps)
    return split_steps(response, separator) or [response]


def aggregate_setting(default: Aggregate | None = "min", shown: str | None = None) -> Any:
    """A field for `--aggregate`: how a process reward model's steps make one reward."""
    return setting(
        default,
        "A process reward model's reward from its steps: min, last, prod or mean.",
        shown=shown,
    )
