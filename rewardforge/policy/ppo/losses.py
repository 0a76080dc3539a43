"""PPO's clipped objectives, with the statistics a run logs."""

from __future__ import annotations

import torch

from rewardforge.policy.ppo.advantages import masked_mean


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
    tokens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """`max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps))` averaged over response tokens,
    with the share of tokens where the clip was taken and the approximate KL to the rollout
    policy (`0.5 * mean(log_ratio^2)`, as TRL and OpenRLHF log it). `tokens` divides the sum
    in place of the mask's count (see `masked_mean`)."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - cliprange, 1 + cliprange)
    loss = masked_mean(torch.max(unclipped, clipped), mask, tokens)
    stats = {
        "clipfrac": masked_mean((clipped > unclipped).float(), mask).item(),
        "approx_kl": masked_mean(0.5 * log_ratio.detach() ** 2, mask).item(),
    }
    return loss, stats


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
    tokens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """`0.5 * max((V - R)^2, (clip(V, V_old - eps, V_old + eps) - R)^2)` over response tokens:
    the value may not move further than `cliprange_value` from the rollout's in one update
    without losing its gradient."""
    clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(unclipped_error, clipped_error), mask, tokens)
    stats = {"value_clipfrac": masked_mean((clipped_error > unclipped_error).float(), mask).item()}
    return loss, stats


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns): 1 when the critic predicts the returns, 0 when
    it does no better than their mean, negative when worse."""
    variance = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
    residual = returns - values
    residual_variance = masked_mean((residual - masked_mean(residual, mask)) ** 2, mask)
    return (1 - residual_variance / variance.clamp(min=1e-8)).item()
