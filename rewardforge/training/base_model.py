"""What a training run starts from: a backbone, or a reward model to continue (ours or
trained elsewhere), and the recipe the run trains and saves: its kind (outcome or process), its
separator, its reference-mode markers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rewardforge.adoption.resolve import ResolvedRewardModel, resolve_reward_model
from rewardforge.errors import UserError
from rewardforge.models.reward_head import is_encoder_backbone
from rewardforge.recipe import (
    DEFAULT_REWARD_MARKER,
    DEFAULT_SPLIT_TOKEN,
    DEFAULT_STEP_SEPARATOR,
    ScoringRecipe,
)
from rewardforge.recipe.families import is_reward_model_folder, reads_token_classifier
from rewardforge.training.config import TrainConfig
from rewardforge.training.train_data import is_step_data


def trains_process_model(
    config: TrainConfig, base_recipe: ScoringRecipe | None, reference_mode: bool
) -> bool:
    """Whether this run trains a process reward model: `--kind prm`, a process model to
    continue, or step-labelled data under `--kind auto`."""
    process = config.kind == "prm" or (
        config.kind == "auto"
        and (base_recipe.kind == "process" if base_recipe else is_step_data(config.data))
    )
    if process and reference_mode:
        raise UserError(
            "a process reward model cannot be reference-based; leave out --reference-mode."
        )
    if not process and base_recipe is not None and reads_token_classifier(base_recipe):
        raise UserError(
            f"{config.model} is a PRM saved as a two-label token classifier; it can only be "
            "trained on step-labelled rows (--kind prm)."
        )
    return process


def recipe_of_this_kind(recipe: ScoringRecipe, config: TrainConfig, process: bool) -> ScoringRecipe:
    """`recipe` as this run trains: a process reward model (a reward at the end of every step,
    with this run's separator, else the one the model was trained with, else a blank line) or
    an outcome model. The recipe trained with is the recipe saved, so a model continued as the
    other kind is saved as what it became, in rewardforge's own encoding."""
    if not process:
        if recipe.kind == "outcome":
            return recipe
        return replace(recipe, kind="outcome", family="rewardforge")
    continuing = recipe.kind == "process"
    separator = config.step_separator or (recipe.step_separator if continuing else None)
    separator = separator or DEFAULT_STEP_SEPARATOR
    if continuing:
        return replace(recipe, step_separator=separator)
    return replace(
        recipe, kind="process", step_separator=separator, step_tokens="pieces", family="rewardforge"
    )


def base_reward_model(config: TrainConfig) -> ResolvedRewardModel | None:
    """The reward model `--model` names, ours or trained elsewhere (its recipe is kept), or
    None for a plain backbone, which gets a new head and recipe."""
    if config.reward_format == "auto" and not is_reward_model_folder(Path(config.model)):
        return None
    base = resolve_reward_model(config.model, config.reward_format, config.template)
    if base.summary is not None:
        print(f"{config.model}: continuing as {base.summary}")
    return base


def kept_recipe(
    config: TrainConfig, base_recipe: ScoringRecipe | None, reference_mode: bool
) -> ScoringRecipe | None:
    """The base model's recipe when it is of this run's mode, so that fine-tuning keeps its
    layout and markers (with this run's max length, and no reward statistics yet); else None."""
    if base_recipe is None or base_recipe.reference_mode != reference_mode:
        return None
    markers = [config.split_token, config.reward_marker]
    chosen = [
        token for token in markers if token not in (DEFAULT_SPLIT_TOKEN, DEFAULT_REWARD_MARKER)
    ]
    if chosen and base_recipe.added_tokens != markers:
        raise UserError(
            f"{config.model} reads the markers {base_recipe.added_tokens}; fine-tuning keeps "
            "them, so leave out --split-token and --reward-marker."
        )
    return replace(base_recipe, max_length=config.max_length, reward_mean=0.0, reward_std=1.0)


def new_markers(config: TrainConfig, reference_mode: bool) -> list[str]:
    """Special tokens a new reference-mode recipe adds to the tokenizer (encoders need none)."""
    if not reference_mode or is_encoder_backbone(config.model):
        return []
    return [config.split_token, config.reward_marker]
