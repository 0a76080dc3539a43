"""The scoring recipe: how a (prompt, response) becomes token ids, decided once and saved.

Training writes `rewardforge_recipe.json` next to the weights; evaluation, scoring and serving
read it back, so a response is always formatted the same way it was during training.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rewardforge.recipe.judge_prompt import JudgePrompt

if TYPE_CHECKING:  # transformers takes a second to import; the CLI reads this module
    from transformers import PreTrainedTokenizerBase

RECIPE_FILE = "rewardforge_recipe.json"
DEFAULT_SPLIT_TOKEN = "<|split|>"
DEFAULT_REWARD_MARKER = "<|reward|>"
DEFAULT_STEP_SEPARATOR = "\n\n"  # a blank line after each step of a process reward model
Template = Literal["chat", "plain", "pair"]


@dataclass(frozen=True)
class ScoringRecipe:
    """Formatting and normalisation settings that travel with a trained reward model.

    `template` is `chat` (the tokenizer's chat template; reward at the last token), `plain`
    (prompt text + " " + response + EOS; reward at EOS) or `pair` (encoders: prompt and response
    as a sentence pair; reward at the first token). Over-long inputs lose prompt tokens from the
    left (oldest turns first) and response tokens from the right, keeping the end-of-turn tokens
    that carry the reward.

    With `reference_mode` (POLAR-style reward models) a response is scored against a reference
    answer. Decoders read `{prompt}{reference}<split>{prompt}{response}<reward>`, both markers
    special tokens added to the tokenizer, and the reward at the `<reward>` token; the prompt is
    rendered by the template both times. Encoders read the sentence pair (prompt + reference,
    prompt + response) with the reward at the first token, and need no added tokens.
    """

    template: Template
    max_length: int = 1024
    prompt_truncation: Literal["left"] = "left"
    response_truncation: Literal["right"] = "right"
    reward_token: Literal["last", "first"] = "last"
    reward_mean: float = 0.0
    reward_std: float = 1.0
    reference_mode: bool = False
    split_token: str | None = None
    reward_marker: str | None = None
    format_version: int = 1
    # How a reward model trained elsewhere reads text (see `recipe/foreign.py`): its family (a
    # name in `recipe/families.py`'s registry), a
    # token id appended after the text (InternLM2 reward models), a pad id whose trailing copies
    # are dropped so the reward is read at the last other token (transformers' rule when the pad
    # token is EOS), and an answer's token limit (POLAR's client).
    family: str = "rewardforge"
    # A process reward model (`kind="process"`) gives one reward per step of a solution, read
    # at the last token of the separator that follows each step (`recipe/steps.py`).
    kind: Literal["outcome", "process"] = "outcome"
    step_separator: str = DEFAULT_STEP_SEPARATOR
    # How a solution becomes tokens: each step and its separator apart, so that every step's
    # reward is read at the same separator token (`pieces`); PRMs saved before this field read
    # the solution tokenized as one text (`whole`), and load that way.
    step_tokens: Literal["pieces", "whole"] = "pieces"
    reward_token_id: int | None = None
    trailing_pad_id: int | None = None
    max_response_length: int | None = None
    # A generative reward model (a verdict judge, `recipe/judge_prompt.py`): a language model
    # asked about each response; its reward is the log-odds of "Yes" over "No" at its reply.
    judge: JudgePrompt | None = None

    @classmethod
    def for_model(
        cls,
        tokenizer: PreTrainedTokenizerBase,
        is_encoder: bool,
        max_length: int,
        reference_mode: bool = False,
        markers: tuple[str, str] = (DEFAULT_SPLIT_TOKEN, DEFAULT_REWARD_MARKER),
    ) -> ScoringRecipe:
        """Choose the recipe for a backbone: pair for encoders, chat if a template exists.

        `markers` are the split and reward tokens of a reference-mode decoder recipe.
        """
        if is_encoder:
            return cls("pair", max_length, reward_token="first", reference_mode=reference_mode)
        template: Template = "chat" if tokenizer.chat_template else "plain"
        if not reference_mode:
            return cls(template=template, max_length=max_length, reward_token="last")
        return cls(
            template,
            max_length,
            reward_token="last",
            reference_mode=True,
            split_token=markers[0],
            reward_marker=markers[1],
        )

    @property
    def added_tokens(self) -> list[str]:
        """Special tokens this recipe needs in the tokenizer (the reference-mode markers)."""
        return [token for token in (self.split_token, self.reward_marker) if token is not None]

    def with_reward_stats(self, mean: float, std: float) -> ScoringRecipe:
        """Return a copy that normalises rewards with these statistics."""
        return replace(self, reward_mean=mean, reward_std=std if std > 0 else 1.0)

    def normalize(self, reward: float) -> float:
        """Map a raw reward to `(reward - mean) / std` with the stored statistics."""
        return (reward - self.reward_mean) / self.reward_std

    def save(self, directory: str | Path) -> None:
        """Write the recipe as JSON into a model directory."""
        path = Path(directory) / RECIPE_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> ScoringRecipe:
        """Read the recipe saved in a model directory."""
        path = Path(directory) / RECIPE_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{directory} has no {RECIPE_FILE}; it was not trained by rewardforge. Train it "
                "with `rewardforge train`, or load it with transformers directly."
            )
        values = json.loads(path.read_text(encoding="utf-8"))
        if values.get("kind") == "process":
            values.setdefault("step_tokens", "whole")  # saved before pieces were the rule
        if values.get("judge") is not None:
            values["judge"] = JudgePrompt(**values["judge"])
        return cls(
            **{key: value for key, value in values.items() if key in cls.__dataclass_fields__}
        )
