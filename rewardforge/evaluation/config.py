"""The settings of `rewardforge eval`, one field a flag (and a `--config` YAML key). Kept apart
from the evaluation code so that the CLI builds its flags without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from rewardforge.adoption.config import (
    REWARD_MODEL_HELP,
    RewardFormat,
    TemplateChoice,
    reward_format_setting,
    template_setting,
)
from rewardforge.config_fields import require, setting
from rewardforge.data.steps import NeutralRating, neutral_rating_setting
from rewardforge.output_paths import check_output_folder


@dataclass
class EvalSettings:
    """`rewardforge eval`."""

    model: str = setting("", REWARD_MODEL_HELP, shown="required")
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    data: list[str] = setting(
        help="Preference data file, repeatable.", factory=list, shown="required"
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
    as_json: bool = setting(False, "Print one JSON object.", flags=("--json",))

    def __post_init__(self) -> None:
        require("eval", model=self.model, data=self.data)
        if self.report:
            check_output_folder(self.report, "--report")
