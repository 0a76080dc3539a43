"""What a training run measured, as one object: the CLI prints its summary, `metrics.json` holds
its `as_dict()` (the keys documented in docs/training.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class TrainMetrics:
    """A finished run's figures. `unit` is what the loss compares: preference pairs, or a
    process reward model's labelled steps; `compared` counts them."""

    unit: Literal["pairs", "labelled_steps"]
    compared: int
    pairs_counted: str
    tokens: int
    runtime_s: float
    loss: float | None
    examples: int
    reward_mean: float = 0.0
    reward_std: float = 1.0
    reward_stats_from: str = ""
    reward_count: int = 0  # the rewards the statistics come from
    resumed_from_step: int | None = None
    best_step: int | None = None
    best_eval_accuracy: float | None = None
    last_step: int | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)  # eval_* of the saved model

    @property
    def per_second(self) -> float:
        return self.compared / self.runtime_s if self.runtime_s else 0.0

    def summary(self) -> str:
        """One line: what was trained, how long it took, how fast."""
        shown = self.unit.replace("_", " ")
        return (
            f"trained {self.compared} {shown} in {self.runtime_s:.1f}s "
            f"({self.per_second:.2f} {shown}/s)"
        )

    def as_dict(self) -> dict[str, Any]:
        """The figures under the names `metrics.json` has always used."""
        figures: dict[str, Any] = {
            "train_runtime_s": self.runtime_s,
            f"train_{self.unit}": self.compared,
            "train_pairs_counted": self.pairs_counted,
            "train_tokens": self.tokens,
            f"{self.unit}_per_s": self.per_second,
            "tokens_per_s": self.tokens / self.runtime_s if self.runtime_s else 0.0,
            "train_loss": self.loss,
            "train_examples": self.examples,
        }
        optional = {
            "resumed_from_step": self.resumed_from_step,
            "best_step": self.best_step,
            "best_eval_accuracy": self.best_eval_accuracy,
            "last_step": self.last_step,
        }
        figures |= {key: value for key, value in optional.items() if value is not None}
        figures |= self.evaluation
        figures |= {
            "reward_mean": self.reward_mean,
            "reward_std": self.reward_std,
            "reward_stats_from": self.reward_stats_from,
        }
        return figures
