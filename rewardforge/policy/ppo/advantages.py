"""A rollout's scores as per-token rewards, and GAE advantages and returns over them.

Tensors are [batch, response tokens], right-padded; `mask` is 1 on the tokens a response has
(up to and including its EOS) and 0 after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

KLEstimator = Literal["k1", "k3"]


def kl_per_token(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: KLEstimator = "k1"
) -> torch.Tensor:
    """KL(policy || reference) estimated at each sampled token. k1 is `log p - log p_ref`
    (unbiased, can be negative); k3 is `r - 1 - log r` with `r = p_ref / p` (unbiased and never
    negative; Schulman, "Approximating KL divergence")."""
    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}; use k1 or k3")


def token_rewards(
    kl: torch.Tensor,
    kl_coef: float,
    mask: torch.Tensor,
    scores: torch.Tensor,
    score_positions: torch.Tensor,
) -> torch.Tensor:
    """`-kl_coef * KL` at every response token, plus each score at its position.

    `scores` and `score_positions` are [batch, k]: an outcome reward model gives one score a
    response, at its last token; a process reward model gives one per step, at the last token
    of each step. A position of -1 adds nothing (a padded slot)."""
    rewards = -kl_coef * kl * mask
    placed = score_positions >= 0
    rows = torch.arange(kl.shape[0], device=kl.device).unsqueeze(1).expand_as(score_positions)
    rewards = rewards.index_put(
        (rows[placed], score_positions[placed]), scores[placed].to(rewards.dtype), accumulate=True
    )
    return rewards


def last_token_positions(mask: torch.Tensor) -> torch.Tensor:
    """The index of each response's last token ([batch, 1]), where its score goes."""
    return (mask.sum(dim=1, keepdim=True) - 1).long().clamp(min=0)


def missing_eos_penalised(
    scores: torch.Tensor, ended_with_eos: torch.Tensor, penalty: float
) -> torch.Tensor:
    """Scores with `penalty` taken off the responses that stopped at the length limit rather
    than at EOS (a truncated answer should not win by being cut before its mistake)."""
    return scores - penalty * (~ended_with_eos).to(scores.dtype)


def generalized_advantages(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al., 2016): `delta_t = r_t + gamma * V_{t+1} - V_t`,
    `A_t = delta_t + gamma * lam * A_{t+1}`, with V = 0 after a response's last token.
    Returns (advantages, returns = advantages + values), both 0 on padding."""
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


Total = Callable[[torch.Tensor], torch.Tensor]


def one_process(value: torch.Tensor) -> torch.Tensor:
    """The sum over processes of a run in one process: the value itself."""
    return value


def masked_mean(
    values: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor | None = None
) -> torch.Tensor:
    """The mean over unmasked entries, or their sum over `tokens` when given (a loss under
    several processes divides by its share of all processes' tokens, so that the averaged
    gradients are those of one process over the whole batch)."""
    count = mask.sum() if tokens is None else tokens
    return (values * mask).sum() / count.clamp(min=1)


def masked_whiten(
    values: torch.Tensor, mask: torch.Tensor, total: Total = one_process, shift_mean: bool = True
) -> torch.Tensor:
    """(values - mean) / std over the unmasked entries of every process (`total` sums over
    them), with the mean added back when `shift_mean` is False; 0 on padding. The variance is
    the unbiased one, as in TRL and OpenRLHF."""
    count = total(mask.sum())
    mean = total((values * mask).sum()) / count.clamp(min=1)
    variance = total((((values - mean) * mask) ** 2).sum()) / (count - 1).clamp(min=1)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


@dataclass
class AdaptiveKLController:
    """The KL coefficient of Ziegler et al. (2019): raised when the measured KL is over
    `target`, lowered when under, by at most 20% of the error per `horizon` samples."""

    kl_coef: float
    target: float
    horizon: int = 10_000

    def update(self, kl: float, samples: int) -> float:
        error = max(-0.2, min(0.2, kl / self.target - 1))
        self.kl_coef *= 1 + error * samples / self.horizon
        return self.kl_coef
