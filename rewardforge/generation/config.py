"""The settings of the commands where a policy writes answers and a reward model judges them:
`best-of-n`, `verify` and `polar-data`, one field a flag (and a `--config` YAML key). Kept apart
from the code that runs them so that the CLI builds its flags without importing torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rewardforge.adoption.config import (
    REWARD_MODEL_HELP,
    RewardFormat,
    TemplateChoice,
    reward_format_setting,
    template_setting,
)
from rewardforge.config_fields import require, setting
from rewardforge.errors import UserError
from rewardforge.output_paths import check_output_file, check_output_folder
from rewardforge.scoring.step_aggregates import Aggregate, aggregate_setting

if TYPE_CHECKING:
    from rewardforge.models.policy import SamplingSettings


@dataclass
class SamplingFlags:
    """The policy that writes answers, and how it samples them."""

    policy: str = setting(
        "smollm2-135m", "Causal LM that writes answers: alias, hub id, dir or .gguf."
    )
    max_new_tokens: int = setting(128, "Tokens per sampled answer.")
    temperature: float = setting(0.8, "Sampling temperature.")
    top_p: float = setting(0.95, "Nucleus sampling mass.")
    seed: int = setting(
        0, "Sampling seed: best-of-n adds the prompt's index, verify the attempt's number."
    )

    def sampling(self) -> SamplingSettings:
        """How the policy samples, as `Policy.sample` takes it."""
        from rewardforge.models.policy import SamplingSettings  # torch: only when a run starts

        return SamplingSettings(self.max_new_tokens, self.temperature, self.top_p, self.seed)


@dataclass
class BestOfNSettings(SamplingFlags):
    """`rewardforge best-of-n`."""

    reward_model: str = setting("", REWARD_MODEL_HELP, shown="required")
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    aggregate: Aggregate = aggregate_setting()
    prompts: str = setting("", "JSONL rows with prompt or messages.", shown="required")
    output: str = setting("", "SFT rows: the top-k answers per prompt.", shown="required")
    n: int = setting(8, "Answers sampled per prompt.")
    top_k: int = setting(1, "Best answers kept per prompt.")
    pairs_output: str | None = setting(
        None, "Also write best-vs-worst preference pairs here.", shown="none"
    )
    knockout: bool = setting(
        False,
        "A judge picks the best answer in a knockout over pairs (N - 1 comparisons, each in "
        "both orders) instead of ranking rewards: for judges that only compare two answers.",
    )
    judge_samples: int = setting(1, "With --knockout, a reasoning judge's replies per order.")

    def __post_init__(self) -> None:
        require(
            "best-of-n", reward_model=self.reward_model, prompts=self.prompts, output=self.output
        )
        if self.knockout and self.top_k != 1:
            raise UserError("--knockout finds one best answer; use it with --top-k 1.")
        if self.judge_samples < 1:
            raise UserError(f"--judge-samples must be at least 1, got {self.judge_samples}.")
        check_output_file(self.output, "--output")
        if self.pairs_output:
            check_output_file(self.pairs_output, "--pairs-output")


@dataclass
class VerifySettings(SamplingFlags):
    """`rewardforge verify`."""

    reward_model: str = setting("", REWARD_MODEL_HELP, shown="required")
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    aggregate: Aggregate = aggregate_setting()
    prompt: str = setting("", "The question to answer.", shown="required")
    reference: str | None = setting(
        None, "Reference answer, for a reference-based (POLAR) reward model.", shown="none"
    )
    threshold: float | None = setting(
        None, "An answer passes at this reward or above.", shown="required"
    )
    max_attempts: int = setting(3, "Answers generated before the fallback.")
    fallback: str = setting(
        "I'm sorry, I can't give a good answer to that.", "Answer when none passes."
    )
    normalized: bool = setting(False, "Threshold on (r - mean) / std instead of the raw reward.")
    as_json: bool = setting(False, "Print one JSON object.", flags=("--json",))

    def __post_init__(self) -> None:
        require("verify", reward_model=self.reward_model, prompt=self.prompt)
        if self.threshold is None:
            raise UserError("verify needs --threshold; see `rewardforge verify -h`.")
        if self.max_attempts < 1:
            raise UserError(f"--max-attempts must be at least 1, got {self.max_attempts}.")


@dataclass
class PolarDataSettings:
    """`rewardforge polar-data`."""

    pool: str = setting(
        "", "YAML list of policies: name, model, system, temperature, top_p, ...", shown="required"
    )
    prompts: str = setting("", "JSONL prompts: {'prompt'} or {'messages'}.", shown="required")
    output: str = setting(
        "", "Directory for answers.jsonl, train.jsonl and heldout.jsonl.", shown="required"
    )
    answers_per_policy: int = setting(
        2, "Answers per policy and prompt; the first is the reference."
    )
    heldout: float = setting(0.2, "Share of prompts kept for heldout.jsonl.")
    seed: int = setting(0, "Seed of the held-out split and of sampling (plus prompt line).")

    def __post_init__(self) -> None:
        require("polar-data", pool=self.pool, prompts=self.prompts, output=self.output)
        check_output_folder(self.output, "--output")
