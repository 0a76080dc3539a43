"""Preference losses over grouped rewards.

Rewards arrive as `GroupRewards`: a `(groups, max responses)` tensor, best response first, and
the mask of the responses that exist (a plain tensor means every entry exists). A NaN reward is
never taken for padding: it makes the loss NaN, and the trainer stops. Pairwise losses compare
`better` and `worse` rewards of the pairs drawn from each group (all pairs, or adjacent ones);
the listwise loss is Plackett-Luce over the whole ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from rewardforge.forward.plan import GroupRewards
from rewardforge.training.config import LOSSES

LossName = Literal["bt", "logexp", "hinge", "listwise"]
PairMode = Literal["all", "adjacent"]


@dataclass(frozen=True)
class LossOptions:
    """Which preference loss a run trains with, and over which pairs (`preference_loss`)."""

    loss: LossName = "bt"
    pairs: PairMode = "all"
    hinge_margin: float = 1.0
    center_coef: float = 0.0

    @property
    def pairs_mode(self) -> PairMode:
        """The pairs the loss compares: adjacent ones for `listwise`, else `pairs`."""
        return "adjacent" if self.loss == "listwise" else self.pairs

    @property
    def pairs_counted(self) -> str:
        """What `train_pairs` counts under these options, in words for metrics.json."""
        if self.pairs_mode == "adjacent":
            return "adjacent pairs: K-1 for a group of K responses"
        return "all pairs: K(K-1)/2 for a group of K responses"

    def __call__(self, rewards: GroupRewards | torch.Tensor, margins: torch.Tensor) -> LossOutput:
        """`preference_loss` of a batch under these options."""
        return preference_loss(
            rewards, margins, self.loss, self.pairs, self.hinge_margin, self.center_coef
        )


@dataclass
class PreferencePairs:
    """The pairs drawn from a batch of groups: rewards of the better and worse response."""

    better: torch.Tensor
    worse: torch.Tensor
    margin: torch.Tensor  # the data's margin for each pair, NaN where none was given


@dataclass
class LossOutput:
    """A loss to backpropagate and the pair statistics to log."""

    loss: torch.Tensor
    accuracy: torch.Tensor
    margin: torch.Tensor
    chosen_reward: torch.Tensor
    rejected_reward: torch.Tensor


def as_group_rewards(rewards: GroupRewards | torch.Tensor) -> GroupRewards:
    """`rewards` as `GroupRewards`; a plain tensor has every response present."""
    if isinstance(rewards, GroupRewards):
        return rewards
    return GroupRewards(rewards, torch.ones_like(rewards, dtype=torch.bool))


def preference_pairs(
    rewards: GroupRewards | torch.Tensor, margins: torch.Tensor, mode: PairMode = "all"
) -> PreferencePairs:
    """Draw (better, worse) pairs from each group: every i < j, or only j = i + 1."""
    grouped = as_group_rewards(rewards)
    rewards = grouped.values
    width = rewards.shape[1]
    if mode == "all":
        first, second = torch.triu_indices(width, width, offset=1, device=rewards.device)
    else:
        first = torch.arange(width - 1, device=rewards.device)
        second = first + 1
    better, worse = rewards[:, first], rewards[:, second]
    present = grouped.present[:, first] & grouped.present[:, second]
    pair_margins = margins[:, None].expand_as(better)
    return PreferencePairs(better[present], worse[present], pair_margins[present])


def preference_loss(
    rewards: GroupRewards | torch.Tensor,
    margins: torch.Tensor,
    loss: LossName = "bt",
    pairs: PairMode = "all",
    hinge_margin: float = 1.0,
    center_coef: float = 0.0,
) -> LossOutput:
    """Compute a preference loss and pair statistics for a batch of grouped rewards.

    - `bt`: Bradley-Terry, `-logsigmoid(r_better - r_worse - margin)` (margin 0 when absent).
    - `logexp`: `log(1 + exp(r_worse - r_better))`, the margin-free form used by OpenRLHF.
    - `hinge`: `max(0, m - (r_better - r_worse))`, m = the data's margin, else `hinge_margin`.
    - `listwise`: Plackett-Luce negative log-likelihood of each group's full ranking.

    `center_coef > 0` adds `center_coef * mean((r_better + r_worse) ** 2)`, which keeps rewards
    centred on zero.
    """
    pair_mode = LossOptions(loss, pairs).pairs_mode
    drawn = preference_pairs(rewards, margins, pair_mode)
    difference = drawn.better - drawn.worse
    data_margin = torch.nan_to_num(drawn.margin, nan=0.0)
    if loss == "bt":
        value = -F.logsigmoid(difference - data_margin).mean()
    elif loss == "logexp":
        value = F.softplus(-difference).mean()
    elif loss == "hinge":
        wanted = torch.where(drawn.margin.isnan(), hinge_margin, drawn.margin)
        value = F.relu(wanted - difference).mean()
    elif loss == "listwise":
        value = plackett_luce_loss(rewards)
    else:
        raise ValueError(f"Unknown loss {loss!r}; choose one of {', '.join(LOSSES)}.")
    if center_coef > 0:
        value = value + center_coef * ((drawn.better + drawn.worse) ** 2).mean()
    return LossOutput(
        loss=value,
        accuracy=(difference > 0).float().mean().detach(),
        margin=difference.mean().detach(),
        chosen_reward=drawn.better.mean().detach(),
        rejected_reward=drawn.worse.mean().detach(),
    )


def loss_terms(group_sizes: torch.Tensor, loss: LossName = "bt", pairs: PairMode = "all") -> int:
    """How many terms `preference_loss` averages over for groups of these sizes.

    Pairs for the pairwise losses, groups for `listwise`. Micro-batches of different sizes are
    weighted by this count, so that an accumulated step equals one batch of the same groups.
    """
    return len(group_sizes) if loss == "listwise" else pair_count(group_sizes, pairs)


def pair_count(group_sizes: torch.Tensor, mode: PairMode) -> int:
    """Pairs drawn from groups of these sizes: K(K-1)/2 each (`all`) or K-1 (`adjacent`)."""
    if mode == "adjacent":
        return int((group_sizes - 1).sum())
    return int((group_sizes * (group_sizes - 1) // 2).sum())


def plackett_luce_loss(rewards: GroupRewards | torch.Tensor) -> torch.Tensor:
    """Mean over groups of `-sum_i [r_i - logsumexp(r_i, ..., r_K)]` over present entries."""
    grouped = as_group_rewards(rewards)
    present = grouped.present
    filled = grouped.values.masked_fill(~present, float("-inf"))
    tail_logsumexp = torch.logcumsumexp(filled.flip(1), dim=1).flip(1)
    terms = torch.where(present, filled - tail_logsumexp, torch.zeros_like(filled))
    return -terms.sum(dim=1).mean()


@dataclass
class StepLossOutput:
    """A process reward model's loss and the step statistics logged with it."""

    loss: torch.Tensor
    accuracy: torch.Tensor
    mean_probability: torch.Tensor


def step_loss(logits: torch.Tensor, labels: torch.Tensor) -> StepLossOutput:
    """Binary cross-entropy of each step's reward (a logit) against its label, the probability
    that the step is correct; soft labels (Monte-Carlo estimates) train as they are."""
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    with torch.no_grad():
        accuracy = ((logits >= 0) == (labels >= 0.5)).float().mean()
        mean_probability = torch.sigmoid(logits).mean()
    return StepLossOutput(loss, accuracy, mean_probability)
