"""`PPORun`: a policy, its frozen reference, a critic and a reward model, and one PPO step:
roll out, score, compute advantages, then several epochs of clipped updates over mini-batches.

Under `accelerate launch` each process rolls out its share of a step's prompts; advantages are
whitened over all processes' tokens and each loss is divided by its share of all of them, so
that DDP's averaged gradients are those of one process over the whole batch.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from transformers import AutoModelForCausalLM

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


@dataclass
class ScoredRollout:
    """A rollout, the reward model's scores placed at its tokens, and each response's reward."""

    rollout: Rollout
    scores: torch.Tensor
    positions: torch.Tensor
    rewards: list[float]


class PPORun:
    """The models of a PPO run and its step; `accelerator` says which process this is."""

    def __init__(
        self, config: RLHFConfig, policy_path: str, tokenizer, reward_model, critic: ValueModel
    ) -> None:
        self.config, self.tokenizer, self.reward_model = config, tokenizer, reward_model
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        responses, processes = (
            config.batch_prompts * config.generations,
            self.accelerator.num_processes,
        )
        if responses % processes or config.mini_batches > responses // processes:
            raise UserError(
                f"the {responses} responses of a step (--batch-prompts times --generations) do "
                f"not divide among {processes} processes in --mini-batches {config.mini_batches}"
                "; give a multiple of the process count."
            )
        policy = AutoModelForCausalLM.from_pretrained(
            policy_path, dtype=torch.float32, use_safetensors=True
        )
        self.reference = None  # with LoRA: the same weights with the adapter switched off
        if config.lora:
            from peft import LoraConfig, get_peft_model

            adapters = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")
            policy = get_peft_model(policy, adapters)
        else:
            self.reference = copy.deepcopy(policy).requires_grad_(False)
            self.reference.to(self.accelerator.device).eval()
        trainable = [
            p for p in itertools.chain(policy.parameters(), critic.parameters()) if p.requires_grad
        ]
        optimizer = torch.optim.AdamW(trainable, lr=config.lr, eps=1e-5)
        self.policy, self.critic, self.optimizer = self.accelerator.prepare(
            policy, critic, optimizer
        )
        self.parameters = trainable
        self.policy.eval()  # dropout off: the rollout's log-probabilities must be reproducible
        self.critic.eval()
        self.kl = AdaptiveKLController(config.beta, config.kl_target or 1.0, config.kl_horizon)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.steps_done = 0

    @property
    def unwrapped_policy(self):
        return self.accelerator.unwrap_model(self.policy)

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """`value` summed over the run's processes."""
        if self.accelerator.num_processes == 1:
            return value
        return self.accelerator.reduce(value.to(self.accelerator.device), reduction="sum")

    def share(self, rows: list) -> list:
        """This process's share of a step's rows."""
        processes = self.accelerator.num_processes
        return rows[self.accelerator.process_index :: processes]

    def reference_logprobs(self, rollout: Rollout) -> torch.Tensor:
        if self.reference is not None:
            return token_logprobs(self.reference, rollout, self.config.temperature)[0]
        with self.unwrapped_policy.disable_adapter():
            return token_logprobs(self.policy, rollout, self.config.temperature)[0]

    def rollout(self, rows: list[PromptRow]) -> ScoredRollout:
        """Responses sampled to `rows`, and the reward model's scores of them."""
        config = self.config
        queries = [row.query for row in rows]
        rollout = sample(
            self.unwrapped_policy,
            self.tokenizer,
            queries,
            config.max_new_tokens,
            config.temperature,
        )
        references = [row.reference for row in rows] if rows[0].reference is not None else None
        scores, positions, rewards = rollout_scores(
            self.reward_model,
            [row.prompt for row in rows],
            references,
            rollout,
            self.tokenizer,
            prm_rewards=config.prm_rewards,
            normalize=config.normalize,
            missing_eos_penalty=config.missing_eos_penalty,
        )
        return ScoredRollout(rollout, scores, positions, rewards)

    def step(self, rows: list[PromptRow]) -> dict[str, float]:
        """One PPO step on a step's prompt rows (each already repeated per generation)."""
        return self.learn(self.rollout(self.share(rows)))

    def learn(self, scored: ScoredRollout) -> dict[str, float]:
        """Advantages for this process's scored rollout, the updates, and the step's record
        (averaged over processes)."""
        config, rollout = self.config, scored.rollout
        self.steps_done += 1
        mask = rollout.response_mask
        with torch.no_grad():
            old_logprobs, entropy = token_logprobs(
                self.policy, rollout, config.temperature, with_entropy=True
            )
            ref_logprobs = self.reference_logprobs(rollout)
            old_values = token_values(self.critic, rollout) * mask
        kl = kl_per_token(old_logprobs, ref_logprobs, config.kl_estimator) * mask
        rewards = token_rewards(kl, self.kl.kl_coef, mask, scored.scores, scored.positions)
        advantages, returns = generalized_advantages(
            rewards, old_values, mask, config.gamma, config.lam
        )
        advantages = masked_whiten(advantages, mask, self.total)
        stats = self.update(rollout, old_logprobs, old_values, advantages, returns)
        record = self.mean_over_processes(
            {
                "reward": sum(scored.rewards) / len(scored.rewards),
                "kl": masked_mean(kl, mask).item(),  # per token, as TRL logs GRPO's
                "kl_per_response": kl.sum(dim=1).mean().item(),
                "total_reward": rewards.sum(dim=1).mean().item(),
                "kl_coef": self.kl.kl_coef,
                "entropy": masked_mean(entropy, mask).item(),
                "explained_variance": explained_variance(old_values, returns, mask),
                "completions/mean_length": mask.sum(dim=1).mean().item(),
                "no_eos_share": (~rollout.ended_with_eos).float().mean().item(),
                **stats,
            }
        )
        if config.kl_target is not None:
            responses = len(rollout.texts) * self.accelerator.num_processes
            self.kl.update(record["kl_per_response"], responses)
        return record

    def update(self, rollout, old_logprobs, old_values, advantages, returns) -> dict[str, float]:
        """`ppo_epochs` passes over the rollout in `mini_batches` shuffled mini-batches (under
        several processes, each mini-batch is every process's share of it)."""
        config = self.config
        size = math.ceil(len(rollout.texts) / config.mini_batches)
        processes = self.accelerator.num_processes
        totals: dict[str, list[float]] = {}
        for _ in range(config.ppo_epochs):
            order = torch.randperm(len(rollout.texts), generator=self.generator)
            for index in order.split(size):
                part = rollout.rows(index)
                mask = part.response_mask
                tokens = self.total(mask.sum()).to(mask.device) / processes
                logprobs, _ = token_logprobs(self.policy, part, config.temperature)
                values = token_values(self.critic, part)
                policy_loss, policy_stats = clipped_policy_loss(
                    logprobs, old_logprobs[index], advantages[index], mask, config.cliprange, tokens
                )
                value_loss, value_stats = clipped_value_loss(
                    values, old_values[index], returns[index], mask, config.cliprange_value, tokens
                )
                loss = policy_loss + config.vf_coef * value_loss
                if not torch.isfinite(loss):
                    raise UserError(
                        f"The logged loss became nan at step {self.steps_done}; lower --lr or "
                        "raise --beta."
                    )
                self.optimizer.zero_grad()
                self.accelerator.backward(loss)
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

    def mean_over_processes(self, record: dict[str, float]) -> dict[str, float]:
        if self.accelerator.num_processes == 1:
            return record
        values = self.total(torch.tensor(list(record.values()), dtype=torch.float64))
        return dict(zip(record, (values / self.accelerator.num_processes).tolist()))

    def heldout_reward(self, rows: list[PromptRow]) -> float:
        """The mean reward of one sampled response to each held-out prompt."""
        from accelerate.utils import gather_object

        rewards: list[float] = []
        batch = self.config.batch_prompts * self.config.generations
        mine = self.share(rows)
        for start in range(0, len(mine), batch):
            rewards += self.rollout(mine[start : start + batch]).rewards
        if self.accelerator.num_processes > 1:
            rewards = gather_object(rewards)
        return sum(rewards) / len(rewards)
