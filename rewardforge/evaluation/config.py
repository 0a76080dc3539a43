"""The settings of `rewardforge eval`, one field a flag (and a `--config` YAML key). Kept apart
from the evaluation code so that the CLI builds its flags without importing torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rewardforge.adoption.config import (
    REWARD_MODEL_HELP,
    RewardFormat,
    TemplateChoice,
    reward_format_setting,
    template_setting,
)
from rewardforge.config_fields import require, setting
from rewardforge.data.steps import NeutralRating, neutral_rating_setting
from rewardforge.errors import UserError
from rewardforge.output_paths import check_output_folder

Benchmark = Literal["preferences", "rewardbench2"]


@dataclass
class EvalSettings:
    """`rewardforge eval`."""

    model: str = setting("", REWARD_MODEL_HELP, shown="required")
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    data: list[str] = setting(
        help="Preference data file, repeatable.", factory=list, shown="required"
    )
    benchmark: Benchmark = setting(
        "preferences",
        "What --data holds: preference rows, or RewardBench 2's file (best-of-4 per subset, "
        "Ties by its own rule, the mean of six).",
    )
    report: str | None = setting(
        None, "Write metrics.json, plots and report.html here.", shown="none"
    )
    compare: str | None = setting(
        None, "A second model directory to evaluate side by side.", shown="none"
    )
    columns: dict[str, str] = setting(
        help="Key mapping, e.g. prompt=question.", factory=dict, shown="none"
    )
    skip_invalid: bool = setting(False, "Skip bad rows, counted.")
    neutral_rating: NeutralRating = neutral_rating_setting()
    samples: int = setting(
        1,
        "A judge that writes: replies per pair and order (votes), or per answer (grades).",
    )
    as_json: bool = setting(False, "Print one JSON object.", flags=("--json",))

    def __post_init__(self) -> None:
        require("eval", model=self.model, data=self.data)
        if self.report:
            check_output_folder(self.report, "--report")
        if self.samples < 1:
            raise UserError(f"--samples must be at least 1, got {self.samples}.")
        if self.benchmark == "rewardbench2":
            _check_benchmark_flags(self)


def _check_benchmark_flags(run: EvalSettings) -> None:
    """RewardBench 2 is one model on every row of a fixed schema: no flag that changes that."""
    if run.compare is not None:
        raise UserError(
            "eval --benchmark rewardbench2 scores one model; run it once for each model and "
            "compare the two tables."
        )
    if run.skip_invalid or run.columns:
        flag = "--skip-invalid" if run.skip_invalid else "--columns"
        raise UserError(
            f"eval --benchmark rewardbench2 scores every row of RewardBench 2's own file, so "
            f"{flag} does not apply; drop it."
        )
