"""`StepRewardTrainer`: the `RewardTrainer` of a process reward model. The batching, the
micro-batches cut by tokens and the distribution are the same; the loss is binary cross-entropy
per step, each micro-batch weighted by its share of the step's labelled steps, and evaluation
reports step accuracy and ProcessBench's metrics."""

from __future__ import annotations

from typing import Any

import torch

from rewardforge.forward.steps import sigmoid, step_rewards
from rewardforge.training.losses import step_loss
from rewardforge.training.step_metrics import step_metrics
from rewardforge.training.trainer import RewardTrainer


class StepRewardTrainer(RewardTrainer):
    """Trains a process reward model: a reward (a logit) at the end of every step."""

    def loss_and_stats(
        self, model: torch.nn.Module, inputs: dict[str, torch.Tensor]
    ) -> tuple[Any, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Binary cross-entropy of every step's reward against its label."""
        rewards = step_rewards(model, inputs)
        output = step_loss(rewards.values, inputs["step_labels"])
        stats = {"step_accuracy": output.accuracy, "step_probability": output.mean_probability}
        return rewards, output.loss, rewards.values.detach(), stats

    def _loss_terms(self, batch: dict[str, torch.Tensor]) -> int:
        return int(batch["step_index"].numel())  # every labelled step is one term

    def _pairs_compared(self, batch: dict[str, torch.Tensor]) -> int:
        return self._loss_terms(batch)  # a process reward model trains steps

    def score_eval_set(self, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Step accuracy (also as `accuracy`, which --load-best compares) and ProcessBench's
        metrics of the model as it is now."""
        logits = [solution for problem in self._score_eval_rows() for solution in problem]
        self.eval_rewards = logits
        labels = [solution for row in self.eval_rows for solution in row["step_labels"]]
        probabilities = [[sigmoid(value) for value in solution] for solution in logits]
        metrics = step_metrics(probabilities, labels)
        metrics["accuracy"] = metrics["step_accuracy"]
        return {f"{metric_key_prefix}_{key}": value for key, value in metrics.items()}
