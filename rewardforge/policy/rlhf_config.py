"""The settings of `rewardforge rlhf`, one field a flag (kept apart from the trainer code so
that the CLI can build its flags without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rewardforge.adoption.config import (
    RewardFormat,
    TemplateChoice,
    reward_format_setting,
    template_setting,
)
from rewardforge.config_fields import setting
from rewardforge.errors import UserError
from rewardforge.output_paths import check_output_folder
from rewardforge.scoring.step_aggregates import Aggregate, aggregate_setting

ALGORITHMS = ("grpo", "rloo", "ppo")
KLEstimator = Literal["k1", "k3"]
PrmRewards = Literal["dense", "final"]


@dataclass
class RLHFConfig:
    """Everything `rewardforge rlhf` needs (each field is also its flag)."""

    reward_model: str = setting(
        "",
        "A reward model (a folder written by `rewardforge train` or `adopt`, or one trained "
        "elsewhere), or the http(s) URL of a `rewardforge serve` server.",
        shown="required",
    )
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    aggregate: Aggregate | None = aggregate_setting(
        default=None, shown="min; a served PRM: the server's own --aggregate"
    )
    reward_api_key_env: str | None = setting(
        None, "Environment variable that holds the reward server's API key.", shown="none"
    )
    prompts: str = setting(
        "", 'Training prompts: rows of {"prompt"} or {"messages"}.', shown="required"
    )
    policy: str = setting("smollm2-135m", "Policy to train: bundled alias, hub id or folder.")
    eval_prompts: str | None = setting(
        None, "Held-out prompts; their mean reward is measured before and after.", shown="none"
    )
    output: str = setting("runs/policy", "Output directory.")
    algo: str = setting("grpo", "grpo or rloo (TRL's trainers), or ppo (rewardforge's).")
    max_steps: int = setting(100, "Optimizer steps.")
    lr: float = setting(1e-6, "Learning rate.")
    beta: float = setting(
        0.04, "Weight of the KL penalty to the starting policy (PPO: its starting KL coefficient)."
    )
    generations: int = setting(4, "Completions sampled per prompt (PPO: 1 or more).")
    batch_prompts: int = setting(2, "Prompts per optimizer step.")
    max_new_tokens: int = setting(64, "Tokens per completion, at most.")
    temperature: float = setting(1.0, "Sampling temperature.")
    normalize: bool = setting(False, "Use the reward model's normalised rewards.")
    logging_steps: int = setting(1, "Log every N steps.")
    seed: int = setting(42, "Random seed.")
    # PPO's own settings (rlhf --algo ppo); the defaults are those of "The N+ Implementation
    # Details of RLHF with PPO" (Huang et al., 2024), but for the epochs, fewer on a CPU.
    value_model: str | None = setting(
        None,
        "PPO's critic: a reward model or backbone folder (default: the reward model, when it "
        "reads the policy's tokens, else the policy's backbone with a new head).",
        shown="the reward model",
    )
    lora: bool = setting(False, "PPO: train LoRA adapters; the reference is the adapter off.")
    kl_estimator: KLEstimator = setting("k1", "PPO: KL estimator per token, k1 or k3.")
    kl_target: float | None = setting(
        None, "PPO: adapt the KL coefficient towards this KL per response.", shown="fixed"
    )
    kl_horizon: int = setting(10_000, "PPO: samples over which the adaptive KL coefficient moves.")
    gamma: float = setting(1.0, "PPO: discount of GAE.")
    lam: float = setting(0.95, "PPO: lambda of GAE.")
    cliprange: float = setting(0.2, "PPO: clip range of the policy ratio.")
    cliprange_value: float = setting(0.2, "PPO: clip range of the value update.")
    vf_coef: float = setting(0.1, "PPO: weight of the value loss.")
    ppo_epochs: int = setting(2, "PPO: passes over each rollout batch.")
    mini_batches: int = setting(1, "PPO: mini-batches each pass is split into.")
    missing_eos_penalty: float = setting(
        0.0, "PPO: taken off the score of a response cut at --max-new-tokens without EOS."
    )
    prm_rewards: PrmRewards = setting(
        "dense",
        "PPO with a process reward model: dense (each step's reward at its last token) or "
        "final (the aggregate at the last token).",
    )

    def __post_init__(self) -> None:
        if not self.reward_model or not self.prompts:
            raise UserError("rlhf needs --reward-model DIR and --prompts FILE.")
        check_output_folder(self.output, "--output")
        if self.algo not in ALGORITHMS:
            raise UserError(f"--algo must be one of {', '.join(ALGORITHMS)}, got {self.algo!r}.")
        for name in (
            "max_steps",
            "generations",
            "batch_prompts",
            "max_new_tokens",
            "logging_steps",
        ):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1.")
        if self.generations < 2 and self.algo != "ppo":
            raise UserError("--generations must be at least 2: rewards are compared in a group.")
        if not self.lr > 0 or self.beta < 0:
            raise UserError("--lr must be above 0 and --beta at least 0.")
        if self.algo == "ppo":
            self._check_ppo()
        elif self.lora or self.value_model is not None:
            raise UserError("--lora and --value-model apply to --algo ppo only.")

    def _check_ppo(self) -> None:
        for name in ("ppo_epochs", "mini_batches", "kl_horizon"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1.")
        if self.mini_batches > self.batch_prompts * self.generations:
            raise UserError(
                f"--mini-batches {self.mini_batches} is more than the "
                f"{self.batch_prompts * self.generations} responses of a step "
                "(--batch-prompts times --generations)."
            )
        if not (0 <= self.gamma <= 1 and 0 <= self.lam <= 1):
            raise UserError("--gamma and --lam must be in [0, 1].")
        if not (self.cliprange > 0 and self.cliprange_value > 0 and self.vf_coef >= 0):
            raise UserError(
                "--cliprange and --cliprange-value must be above 0, --vf-coef at least 0."
            )
        if self.kl_target is not None and not self.kl_target > 0:
            raise UserError(f"--kl-target must be above 0, got {self.kl_target}.")
        if self.missing_eos_penalty < 0:
            raise UserError("--missing-eos-penalty must be at least 0; it is taken off the score.")
