"""The PPO loop: roll out, score, compute advantages, then several epochs of clipped updates
over mini-batches of the rollout; log each step; measure held-out reward before and after.

The story of `train_ppo`: models (policy, reference, critic), then for each step: prompts,
rollout, rewards, advantages, updates, a log record.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM

from rewardforge.data.conversation import prompt_as_messages, prompt_as_text
from rewardforge.data.example import Prompt
from rewardforge.errors import UserError
from rewardforge.policy.ppo.advantages import (
    AdaptiveKLController,
    generalized_advantages,
    kl_per_token,
    masked_mean,
    masked_whiten,
    token_rewards,
)
from rewardforge.policy.ppo.losses import (
    clipped_policy_loss,
    clipped_value_loss,
    explained_variance,
)
from rewardforge.policy.ppo.rollout import Rollout, sample, token_logprobs, token_values
from rewardforge.policy.ppo.scores import rollout_scores
from rewardforge.policy.ppo.value_model import ValueModel
from rewardforge.policy.rlhf_config import RLHFConfig


@dataclass
class PromptRow:
    """A prompt as the policy reads it (rendered), and as the reward model reads it."""

    query: str
    prompt: Prompt
    reference: str | None


def prompt_rows(
    rows: list[tuple[int, Prompt, str | None]], tokenizer, chat: bool
) -> list[PromptRow]:
    """The policy reads a prompt through its chat template (with the assistant's turn opened)
    when it has one; the reward model always gets the prompt as the file wrote it."""

    def query(prompt: Prompt) -> str:
        if not chat:
            return prompt_as_text(prompt)
        messages = prompt_as_messages(prompt)
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    return [PromptRow(query(prompt), prompt, reference) for _, prompt, reference in rows]


class PPORun:
    """A policy, its frozen reference, a critic and a reward model, and `step()` to run one
    PPO step."""

    def __init__(
        self, config: RLHFConfig, policy_path: str, tokenizer, reward_model, critic: ValueModel
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        policy = AutoModelForCausalLM.from_pretrained(
            policy_path, dtype=torch.float32, use_safetensors=True
        )
        if config.lora:
            from peft import LoraConfig, get_peft_model

            # the reference is the same weights with the adapter switched off: no second copy
            policy = get_peft_model(
                policy, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")
            )
            self.reference = None
        else:
            self.reference = copy.deepcopy(policy).requires_grad_(False)
        self.policy, self.critic, self.reward_model = policy, critic, reward_model
        self.policy.eval()  # dropout off: the rollout's log-probabilities must be reproducible
        self.critic.eval()
        trainable = [
            p for p in itertools.chain(policy.parameters(), critic.parameters()) if p.requires_grad
        ]
        self.parameters = trainable
        self.optimizer = torch.optim.AdamW(trainable, lr=config.lr, eps=1e-5)
        self.kl = AdaptiveKLController(config.beta, config.kl_target or 1.0, config.kl_horizon)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.steps_done = 0

    def reference_logprobs(self, rollout: Rollout) -> torch.Tensor:
        if self.reference is not None:
            return token_logprobs(self.reference, rollout, self.config.temperature)[0]
        with self.policy.disable_adapter():
            return token_logprobs(self.policy, rollout, self.config.temperature)[0]

    def rollout(
        self, rows: list[PromptRow]
    ) -> tuple[Rollout, torch.Tensor, torch.Tensor, list[float]]:
        """Sampled responses, their scores placed at tokens, and each response's reward."""
        config = self.config
        rollout = sample(
            self.policy,
            self.tokenizer,
            [row.query for row in rows],
            config.max_new_tokens,
            config.temperature,
        )
        references = [row.reference for row in rows] if rows[0].reference is not None else None
        scores, positions, logged = rollout_scores(
            self.reward_model,
            [row.prompt for row in rows],
            references,
            rollout,
            self.tokenizer,
            prm_rewards=config.prm_rewards,
            normalize=config.normalize,
            missing_eos_penalty=config.missing_eos_penalty,
        )
        return rollout, scores, positions, logged

    def step(self, rows: list[PromptRow]) -> dict[str, float]:
        """One PPO step on the prompts `rows` (each already repeated per generation)."""
        config = self.config
        self.steps_done += 1
        rollout, scores, positions, logged = self.rollout(rows)
        mask = rollout.response_mask
        with torch.no_grad():
            old_logprobs, entropy = token_logprobs(self.policy, rollout, config.temperature)
            ref_logprobs = self.reference_logprobs(rollout)
            old_values = token_values(self.critic, rollout) * mask
        kl = kl_per_token(old_logprobs, ref_logprobs, config.kl_estimator) * mask
        rewards = token_rewards(kl, self.kl.kl_coef, mask, scores, positions)
        advantages, returns = generalized_advantages(
            rewards, old_values, mask, config.gamma, config.lam
        )
        advantages = masked_whiten(advantages, mask)
        stats = self.update(rollout, old_logprobs, old_values, advantages, returns)
        kl_per_response = kl.sum(dim=1).mean().item()
        record = {
            "reward": sum(logged) / len(logged),
            "kl": kl_per_response,
            "total_reward": rewards.sum(dim=1).mean().item(),
            "kl_coef": self.kl.kl_coef,
            "entropy": masked_mean(entropy, mask).item(),
            "explained_variance": explained_variance(old_values, returns, mask),
            "completions/mean_length": mask.sum(dim=1).mean().item(),
            "no_eos_share": (~rollout.ended_with_eos).float().mean().item(),
            **stats,
        }
        if config.kl_target is not None:
            self.kl.update(kl_per_response, len(rows))
        return record

    def update(self, rollout, old_logprobs, old_values, advantages, returns) -> dict[str, float]:
        """`ppo_epochs` passes over the rollout in `mini_batches` shuffled mini-batches."""
        config = self.config
        size = math.ceil(len(rollout.texts) / config.mini_batches)
        totals: dict[str, list[float]] = {}
        for _ in range(config.ppo_epochs):
            order = torch.randperm(len(rollout.texts), generator=self.generator)
            for index in order.split(size):
                part = rollout.rows(index)
                mask = part.response_mask
                logprobs, _ = token_logprobs(self.policy, part, config.temperature)
                values = token_values(self.critic, part)
                policy_loss, policy_stats = clipped_policy_loss(
                    logprobs, old_logprobs[index], advantages[index], mask, config.cliprange
                )
                value_loss, value_stats = clipped_value_loss(
                    values, old_values[index], returns[index], mask, config.cliprange_value
                )
                loss = policy_loss + config.vf_coef * value_loss
                if not torch.isfinite(loss):
                    raise UserError(
                        "The logged loss became nan at step ...; lower --lr or raise --beta."
                    )
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.parameters, 1.0)
                self.optimizer.step()
                measured = {
                    "policy_loss": policy_loss.item(),
                    "value_loss": value_loss.item(),
                    **policy_stats,
                    **value_stats,
                }
                for name, value in measured.items():
                    totals.setdefault(name, []).append(value)
        return {name: sum(values) / len(values) for name, values in totals.items()}

    def heldout_reward(self, rows: list[PromptRow]) -> float:
        """The mean reward of one sampled response to each held-out prompt."""
        rewards = []
        batch = self.config.batch_prompts * self.config.generations
        for start in range(0, len(rows), batch):
            rewards += self.rollout(rows[start : start + batch])[3]
        return sum(rewards) / len(rewards)


def batches(rows: list[PromptRow], config: RLHFConfig) -> Iterator[list[PromptRow]]:
    """`batch_prompts` prompts a step, each repeated `generations` times, in a shuffled order
    that starts again when the prompts run out."""
    order = random.Random(config.seed)
    while True:
        shuffled = rows[:]
        order.shuffle(shuffled)
        for start in range(0, len(shuffled) - config.batch_prompts + 1, config.batch_prompts):
            chosen = shuffled[start : start + config.batch_prompts]
            yield [row for row in chosen for _ in range(config.generations)]
        if len(shuffled) < config.batch_prompts:
            yield [row for row in shuffled for _ in range(config.generations)]


def train_ppo(
    run: PPORun, train: list[PromptRow], heldout: list[PromptRow] | None, log_path: Path
) -> dict[str, Any]:
    """`max_steps` PPO steps; a record per step in `log_path`; the held-out reward before and
    after."""
    config = run.config
    before = run.heldout_reward(heldout) if heldout else None
    records = []
    prompts = batches(train, config)
    with (
        log_path.open("w", encoding="utf-8") as log,
        tqdm(total=config.max_steps, desc="PPO", unit="step") as bar,
    ):
        if before is not None:
            log.write(json.dumps({"step": 0, "eval_reward": before}) + "\n")
        for step in range(1, config.max_steps + 1):
            record = {"step": step, **run.step(next(prompts))}
            if step % config.logging_steps == 0 or step == config.max_steps:
                log.write(json.dumps(record) + "\n")
                log.flush()
            records.append(record)
            bar.set_postfix(reward=f"{record['reward']:.3f}", kl=f"{record['kl']:.3f}")
            bar.update()
        after = run.heldout_reward(heldout) if heldout else None
        if after is not None:
            log.write(json.dumps({"step": config.max_steps, "eval_reward": after}) + "\n")
    return {
        "algo": "ppo",
        "steps": config.max_steps,
        "first_reward": records[0]["reward"],
        "last_reward": records[-1]["reward"],
        "last_kl": records[-1]["kl"],
        "heldout_reward_before": before,
        "heldout_reward_after": after,
    }
