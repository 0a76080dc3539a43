"""The two settings every command that loads a reward model takes, for a model trained elsewhere:
its family (`--reward-format`) and its template (`--template`). Declared once here, without
torch, so that the CLI builds the flags fast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rewardforge.config_fields import require, setting
from rewardforge.errors import UserError
from rewardforge.output_paths import check_output_folder
from rewardforge.recipe.families import FAMILY_NAMES, REWARD_FORMATS

RewardFormat = Literal[REWARD_FORMATS]  # type: ignore[valid-type]  # from the registry
TemplateChoice = Literal["chat", "plain"]
REWARD_MODEL_HELP = (
    "A reward model: a folder written by `rewardforge train` or `adopt`, or one trained "
    "elsewhere (TRL, OpenRLHF, Skywork, POLAR, InternLM2; docs/reward-models.md)."
)


def reward_format_setting() -> Any:
    """A field for `--reward-format`: how the reward model scores, `auto` to read its folder."""
    return setting(
        "auto",
        "How a reward model trained elsewhere scores: auto (read from its folder), "
        f"{', '.join(FAMILY_NAMES[:-1])} or {FAMILY_NAMES[-1]}.",
    )


def template_setting() -> Any:
    """A field for `--template`: a foreign reward model's chat or plain-text rendering."""
    return setting(
        None,
        "chat or plain: how a reward model trained elsewhere renders a conversation.",
        shown="chat if its tokenizer has a chat template",
    )


@dataclass
class AdoptSettings:
    """`rewardforge adopt`."""

    source: str = setting(
        "",
        "A reward model trained elsewhere: its folder, or a hub id when online.",
        shown="required",
    )
    output: str = setting("", "Where to write it as a rewardforge model folder.", shown="required")
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    step_separator: str | None = setting(
        None,
        "A process reward model's step separator, where the source does not record it (a TRL "
        "PRM was trained with PRMConfig.step_separator).",
        shown="the family's own: a newline for trl-prm",
    )
    judge_template: str | None = setting(
        None,
        "With --reward-format judge: the questions the judge is asked, a bundled template "
        "(prometheus2-absolute, prometheus2-relative, rewardbench2-ratings, skywork-critic) or "
        "a YAML file.",
        shown="rewardforge's own Yes/No and A/B questions",
    )

    def __post_init__(self) -> None:
        require("adopt", source=self.source, output=self.output)
        check_output_folder(self.output, "--output")
        output = Path(self.output)
        if output.is_dir() and any(output.iterdir()) and not (output / "config.json").is_file():
            raise UserError(
                f"--output {output} holds other files and no model; give an empty or new folder "
                "(or a model folder to replace)."
            )
        if self.step_separator == "":
            raise UserError("--step-separator must not be empty: each step's reward is read there.")
