"""Per-token rewards, KL estimators and GAE for PPO, against hand computations and torchrl."""

from __future__ import annotations

import math

import pytest
import torch

from rewardforge.policy.ppo.advantages import (
    AdaptiveKLController,
    generalized_advantages,
    kl_per_token,
    last_token_positions,
    masked_whiten,
    missing_eos_penalised,
    token_rewards,
)


def test_gae_by_hand():
    """Two tokens, gamma 0.9, lambda 0.5: the recursion written out."""
    rewards = torch.tensor([[0.0, 1.0]])
    values = torch.tensor([[0.5, 0.2]])
    mask = torch.ones(1, 2)
    advantages, returns = generalized_advantages(rewards, values, mask, gamma=0.9, lam=0.5)
    delta_1 = 1.0 + 0.9 * 0.0 - 0.2  # the last token: no value after it
    delta_0 = 0.0 + 0.9 * 0.2 - 0.5
    assert advantages.tolist()[0] == pytest.approx([delta_0 + 0.9 * 0.5 * delta_1, delta_1])
    assert returns.tolist()[0] == pytest.approx([delta_0 + 0.45 * delta_1 + 0.5, delta_1 + 0.2])


def test_gae_stops_at_the_end_of_a_shorter_response():
    """Padding after the last token neither adds reward nor lends its value."""
    rewards = torch.tensor([[0.0, 2.0, 9.0]])
    values = torch.tensor([[1.0, 1.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    advantages, returns = generalized_advantages(rewards, values, mask, gamma=1.0, lam=1.0)
    assert advantages.tolist()[0] == pytest.approx([1.0, 1.0, 0.0])  # 2 - V, on both tokens
    assert returns.tolist()[0] == pytest.approx([2.0, 2.0, 0.0])


@pytest.mark.parametrize(("gamma", "lam"), [(1.0, 0.95), (0.99, 0.9), (0.5, 0.0), (1.0, 1.0)])
def test_gae_matches_torchrl(gamma, lam):
    from torchrl.objectives.value.functional import generalized_advantage_estimate

    generator = torch.Generator().manual_seed(0)
    lengths = [5, 3, 1]
    rewards = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    values = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    mask = torch.tensor([[1.0] * n + [0.0] * (5 - n) for n in lengths], dtype=torch.float64)
    advantages, _ = generalized_advantages(rewards, values, mask, gamma, lam)
    for row, length in enumerate(lengths):
        value = values[row, :length].unsqueeze(-1)
        next_value = torch.cat([value[1:], torch.zeros(1, 1, dtype=value.dtype)])
        done = torch.zeros(length, 1, dtype=torch.bool)
        done[-1] = True
        expected, _ = generalized_advantage_estimate(
            gamma, lam, value, next_value, rewards[row, :length].unsqueeze(-1), done, done
        )
        assert advantages[row, :length].tolist() == pytest.approx(expected.squeeze(-1).tolist())
        assert advantages[row, length:].abs().sum() == 0


def test_kl_estimators():
    """k1 = log p - log q; k3 = q/p - 1 - log(q/p), which is never negative."""
    logprobs = torch.tensor([math.log(0.5), math.log(0.2)])
    ref_logprobs = torch.tensor([math.log(0.25), math.log(0.4)])
    assert kl_per_token(logprobs, ref_logprobs, "k1").tolist() == pytest.approx(
        [math.log(2), math.log(0.5)]
    )
    assert kl_per_token(logprobs, ref_logprobs, "k3").tolist() == pytest.approx(
        [0.5 - 1 - math.log(0.5), 2 - 1 - math.log(2)]
    )
    assert (kl_per_token(logprobs, ref_logprobs, "k3") >= 0).all()


def test_rewards_put_the_score_at_the_last_token_and_the_kl_on_every_token():
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    positions = last_token_positions(mask)
    assert positions.tolist() == [[2], [1]]
    rewards = token_rewards(kl, 0.5, mask, torch.tensor([[1.0], [2.0]]), positions)
    expected = [-0.05, -0.1, -0.15 + 1.0, -0.2, -0.25 + 2.0, 0.0]
    assert rewards.flatten().tolist() == pytest.approx(expected)


def test_step_scores_land_where_they_are_placed():
    """A PRM's step rewards at the tokens given; -1 marks a slot with no step."""
    kl = torch.zeros(1, 6)
    mask = torch.ones(1, 6)
    rewards = token_rewards(
        kl, 0.1, mask, torch.tensor([[0.9, 0.2, 7.0]]), torch.tensor([[1, 4, -1]])
    )
    assert rewards.tolist() == [[0.0, pytest.approx(0.9), 0.0, 0.0, pytest.approx(0.2), 0.0]]


def test_a_response_without_eos_loses_the_penalty():
    scores = torch.tensor([1.0, 1.0])
    ended = torch.tensor([True, False])
    assert missing_eos_penalised(scores, ended, 2.0).tolist() == [1.0, -1.0]


def test_whitening_ignores_padding():
    values = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    whitened = masked_whiten(values, mask)
    # mean 2, unbiased std sqrt(2) over the two real entries
    assert whitened.tolist()[0] == pytest.approx(
        [-1 / math.sqrt(2), 1 / math.sqrt(2), 0.0], abs=1e-6
    )


def test_the_adaptive_kl_coefficient_follows_its_target():
    controller = AdaptiveKLController(kl_coef=0.1, target=6.0, horizon=100)
    assert controller.update(kl=12.0, samples=10) == pytest.approx(0.1 * (1 + 0.2 * 0.1))
    controller = AdaptiveKLController(kl_coef=0.1, target=6.0, horizon=100)
    assert controller.update(kl=3.0, samples=10) == pytest.approx(0.1 * (1 - 0.5 * 0.1 * 0.4))
