"""The settings of `rewardforge rlhf`, one field a flag (kept apart from the trainer code so
that the CLI can build its flags without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

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

ALGORITHMS = ("grpo", "rloo")


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
    algo: str = setting("grpo", "grpo or rloo (TRL's trainers).")
    max_steps: int = setting(100, "Optimizer steps.")
    lr: float = setting(1e-6, "Learning rate.")
    beta: float = setting(0.04, "Weight of the KL penalty to the starting policy.")
    generations: int = setting(4, "Completions sampled per prompt.")
    batch_prompts: int = setting(2, "Prompts per optimizer step.")
    max_new_tokens: int = setting(64, "Tokens per completion, at most.")
    temperature: float = setting(1.0, "Sampling temperature.")
    normalize: bool = setting(False, "Use the reward model's normalised rewards.")
    logging_steps: int = setting(1, "Log every N steps.")
    seed: int = setting(42, "Random seed.")

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
        if self.generations < 2:
            raise UserError("--generations must be at least 2: rewards are compared in a group.")
        if not self.lr > 0 or self.beta < 0:
            raise UserError("--lr must be above 0 and --beta at least 0.")
