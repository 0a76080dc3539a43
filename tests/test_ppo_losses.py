"""PPO's clipped policy and value losses on numbers worked by hand, inside and outside the clip."""

from __future__ import annotations

import math

import pytest
import torch

from rewardforge.policy.ppo.losses import (
    clipped_policy_loss,
    clipped_value_loss,
    explained_variance,
)

ONE = torch.ones(1, 1)


@pytest.mark.parametrize(
    ("ratio", "advantage", "loss", "clipped"),
    [
        (1.1, 1.0, -1.1, 0.0),  # inside the range: the plain objective
        (1.5, 1.0, -1.2, 1.0),  # above 1 + eps with a positive advantage: no more gain
        (1.5, -1.0, 1.5, 0.0),  # a worse action made likelier: the full penalty stays
        (0.5, -1.0, 0.8, 1.0),  # below 1 - eps with a negative advantage: clipped at 0.8
        (0.5, 1.0, -0.5, 0.0),
    ],
)
def test_clipped_policy_loss(ratio, advantage, loss, clipped):
    old = torch.zeros(1, 1)
    new = torch.full((1, 1), math.log(ratio))
    value, stats = clipped_policy_loss(new, old, torch.full((1, 1), advantage), ONE, 0.2)
    assert value.item() == pytest.approx(loss)
    assert stats["clipfrac"] == clipped
    assert stats["approx_kl"] == pytest.approx(0.5 * math.log(ratio) ** 2)


def test_policy_loss_averages_over_response_tokens_only():
    new = torch.tensor([[0.0, 0.0, 5.0]])
    advantages = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    value, _ = clipped_policy_loss(new, torch.zeros(1, 3), advantages, mask, 0.2)
    assert value.item() == pytest.approx(-2.0)


@pytest.mark.parametrize(
    ("value", "old", "returns", "loss", "clipped"),
    [
        (1.1, 1.0, 2.0, 0.5 * 0.81, 0.0),  # moved less than the clip: the plain error
        (3.0, 1.0, 2.0, 0.5 * 1.0, 0.0),  # past the clip, overshooting: its own error is larger
        (1.9, 1.0, 2.0, 0.5 * 0.64, 1.0),  # past the clip towards the return: (1.2 - 2)^2
    ],
)
def test_clipped_value_loss(value, old, returns, loss, clipped):
    result, stats = clipped_value_loss(
        torch.full((1, 1), value), torch.full((1, 1), old), torch.full((1, 1), returns), ONE, 0.2
    )
    assert result.item() == pytest.approx(loss)
    assert stats["value_clipfrac"] == clipped


def test_explained_variance():
    returns = torch.tensor([[1.0, 2.0, 3.0]])
    mask = torch.ones(1, 3)
    assert explained_variance(returns, returns, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full((1, 3), 2.0), returns, mask) == pytest.approx(0.0)
