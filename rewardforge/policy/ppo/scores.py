"""The reward model's verdict on a rollout, as scores placed at response tokens.

An outcome reward model (a folder, an adopted family, or a `serve` URL) gives one score a
response, at its last token. A process reward model gives one per step: with `dense`, each at
the token that ends its step, so the credit goes to the step that earned it; with `final`, its
aggregate at the last token. A response that stopped at the length limit, without EOS, loses
`missing_eos_penalty` at its last token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from rewardforge.data.example import Prompt
from rewardforge.policy.ppo.rollout import Rollout, placed_scores, step_end_positions
from rewardforge.scoring.remote_reward import RemoteRewardModel
from rewardforge.scoring.reward_model import RewardModel
from rewardforge.scoring.step_aggregates import aggregate, solution_steps

PrmRewards = Literal["dense", "final"]


def rollout_scores(
    reward_model: RewardModel | RemoteRewardModel,
    prompts: Sequence[Prompt],
    references: Sequence[str] | None,
    rollout: Rollout,
    tokenizer,
    *,
    prm_rewards: PrmRewards = "dense",
    normalize: bool = False,
    missing_eos_penalty: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """(scores [batch, k], their token positions [batch, k], each response's reward as a
    number to log: the outcome score or the PRM's aggregate)."""
    lengths = rollout.response_mask.sum(dim=1).long().tolist()
    last = [length - 1 for length in lengths]
    if isinstance(reward_model, RewardModel) and reward_model.is_process:
        separator = reward_model.recipe.step_separator
        steps = [solution_steps(text, separator) for text in rollout.texts]
        step_rewards = reward_model.score_steps(prompts, steps)
        logged = [aggregate(found, reward_model.aggregate) for found in step_rewards]
        if prm_rewards == "dense":
            rows = [list(found) for found in step_rewards]
            positions = [
                step_end_positions(tokenizer, response[:length].tolist(), solution[: len(found)])
                for response, length, solution, found in zip(
                    rollout.responses, lengths, steps, step_rewards
                )
            ]
        else:
            rows, positions = [[value] for value in logged], [[end] for end in last]
    else:
        logged = reward_model.score(prompts, rollout.texts, references, normalize=normalize)
        rows, positions = [[value] for value in logged], [[end] for end in last]
    if missing_eos_penalty:
        for row, where, end, ended in zip(rows, positions, last, rollout.ended_with_eos):
            if not ended:
                row.append(-missing_eos_penalty)
                where.append(end)
    scores, places = placed_scores(rows, positions, rollout.sequences.device)
    return scores, places, logged
