"""The data of a training run, loaded and encoded: preference pairs for an outcome reward model,
step-labelled solutions for a process reward model (which `--kind auto` tells from the files)."""

from __future__ import annotations

from typing import Any

from rewardforge.data import LoadReport, load_preferences
from rewardforge.data.formats import RowError
from rewardforge.data.loader import read_rows
from rewardforge.data.step_loader import StepLoadReport, load_step_examples
from rewardforge.data.steps import detect_step_format
from rewardforge.recipe import RecipeEncoder
from rewardforge.recipe.steps import encode_step_example
from rewardforge.training.config import TrainConfig


def is_step_data(paths: list[str]) -> bool:
    """Whether the first row of the first file is step-labelled (a process reward model's)."""
    for _, row in read_rows(paths[0]):
        return not isinstance(row, RowError) and detect_step_format(row) is not None
    return False


def load_data(
    paths: list[str], config: TrainConfig, reference_mode: bool, process: bool
) -> LoadReport | StepLoadReport:
    """Preference examples, or step-labelled examples for a process reward model."""
    if process:
        report = load_step_examples(
            paths,
            skip_invalid=config.skip_invalid,
            neutral_is_correct=config.neutral_rating == "correct",
        )
    else:
        report = load_preferences(
            paths,
            columns=config.columns,
            skip_invalid=config.skip_invalid,
            min_score_gap=config.min_score_gap,
            reference_mode=reference_mode,
        )
    for path, fmt in report.formats.items():
        print(f"{path}: detected format '{fmt}'")
    return report


def encode_data(
    encoder: RecipeEncoder, report: LoadReport | StepLoadReport, split: str
) -> list[dict[str, Any]]:
    """Dataset rows of every example, with a one-line account of the data."""
    if isinstance(report, StepLoadReport):
        groups = [encode_step_example(encoder, example) for example in report.examples]
        truncated = sum(group.truncated for group in groups)
        print(f"{split} data: {report.summary()}; {truncated} solutions cut to fit")
    else:
        groups = [encoder.encode_example(example) for example in report.examples]
        truncated = sum(group.truncated for group in groups)
        print(f"{split} data: {report.summary(truncated=truncated)}")
    return [group.as_row() for group in groups]
