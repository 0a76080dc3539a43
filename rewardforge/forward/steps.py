"""The forward plan for process reward models: a reward at the end of every step of every
solution, all read in one forward, and the labels that go with them.

Rows carry `step_ends` (where each solution's step rewards are read, as token positions in the
solution's ids) and `step_labels`; collated batches carry one `reward_index` entry per step with
its `group_index` (problem), `rank_index` (solution) and `step_index`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardforge.forward.reward_forward import MODEL_INPUTS

Row = dict[str, Any]


def sigmoid(logit: float) -> float:
    """A step reward (a logit) as the probability that the step is correct."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    return math.exp(logit) / (1.0 + math.exp(logit))


@dataclass
class StepRewards:
    """A batch's step rewards (logits), flat, with the problem, solution and step of each."""

    values: torch.Tensor
    group_index: torch.Tensor
    rank_index: torch.Tensor
    step_index: torch.Tensor

    def as_lists(self, groups: int) -> list[list[list[float]]]:
        """rewards[problem][solution][step]."""
        nested: list[list[list[float]]] = [[] for _ in range(groups)]
        for value, group, rank in zip(
            self.values.tolist(), self.group_index.tolist(), self.rank_index.tolist()
        ):
            solutions = nested[group]
            while len(solutions) <= rank:
                solutions.append([])
            solutions[rank].append(value)
        return nested


def with_steps(batch: dict[str, torch.Tensor], rows: Sequence[Row], step_index: list[int]) -> dict:
    """A process reward model's batch also says which step each reward is, and its label."""
    if "step_ends" not in rows[0]:
        return batch
    batch["step_index"] = torch.tensor(step_index)
    labels = [label for row in rows for solution in row["step_labels"] for label in solution]
    if len(labels) == len(step_index):  # training and evaluation rows are labelled
        batch["step_labels"] = torch.tensor(labels, dtype=torch.float32)
    return batch


def padded_steps(batch: dict[str, torch.Tensor], rows: Sequence[Row]) -> dict:
    """Padded rows (one solution a row): every step's spot in the flattened batch."""
    width, spots, groups, ranks, steps = batch["input_ids"].shape[1], [], [], [], []
    sequence = 0
    for group, row in enumerate(rows):
        for rank, ends in enumerate(row["step_ends"]):
            spots += [sequence * width + end for end in ends]
            groups += [group] * len(ends)
            ranks += [rank] * len(ends)
            steps += range(len(ends))
            sequence += 1
    batch.update(
        reward_index=torch.tensor(spots),
        group_index=torch.tensor(groups),
        rank_index=torch.tensor(ranks),
    )
    return with_steps(batch, rows, steps)


def step_rewards(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> StepRewards:
    """Run a `RewardForward` on a collated batch of step-labelled rows."""
    flat = model(**{key: batch[key] for key in MODEL_INPUTS if key in batch})
    return StepRewards(flat, batch["group_index"], batch["rank_index"], batch["step_index"])
