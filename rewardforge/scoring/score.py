"""`score_file()`: add a `reward` to every row of a file, in input order, losing no row."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rewardforge.data.loader import invalid_rows_error, row_place
from rewardforge.data.scoring_rows import RejectedRow, ScoringRow, read_scoring_rows
from rewardforge.errors import UserError
from rewardforge.scoring.config import ScoreSettings
from rewardforge.scoring.reward_model import RewardModel, recipe_before_loading
from rewardforge.scoring.step_aggregates import Aggregate, solution_steps
from rewardforge.scoring.step_aggregates import aggregate as aggregate_steps


@dataclass
class ScoreReport:
    """How many rows were scored and rejected, and where the rejects went."""

    scored: int
    rejected: int
    rejects_path: Path | None
    tokens_in_rows: int = 0  # the scored rows' tokens
    tokens_fed: int = 0  # tokens the model read: a prompt shared by several rows counts once


def score_file(
    model: str | Path | RewardModel,
    input_path: str | Path,
    output_path: str | Path,
    *,
    normalize: bool = False,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    progress: bool = True,
    reward_format: str = "auto",
    template: str | None = None,
    aggregate: Aggregate = "min",
) -> ScoreReport:
    """Score every row of `input_path` and write it, with a `reward` field, to `output_path`.

    Rows hold `prompt` (text or messages) and `response`, or `messages` ending with the
    assistant's reply; for a reference-based model also `reference`. Output rows keep every
    input field and the input order. A bad row stops the run before anything is scored, with an
    error naming each bad line; with `skip_invalid` bad rows go to `rejects_path` (default:
    `<output>.rejects.jsonl`) with the reason instead. `reward_format` and `template` describe
    a model trained elsewhere (`RewardModel.load`). A process reward model adds each row's
    `step_rewards` (its `completions`, or its response cut at the model's step separator) and
    their `aggregate` as the reward.
    """
    rows, rejected = read_scoring_rows(input_path)
    # The rows are checked against the model's recipe before its weights load.
    recipe, resolved = recipe_before_loading(model, reward_format, template)
    if recipe.kind == "process" and normalize:
        raise UserError(
            "--normalize does not apply to a process reward model: its rewards are probabilities."
        )
    rows, misfits = _split_by_reference(rows, recipe.reference_mode)
    rejected = sorted(rejected + misfits, key=lambda item: item.number)
    if rejected and not skip_invalid:
        raise invalid_rows_error(
            [f"{row_place(input_path, item.number)}: {item.error}" for item in rejected],
            "invalid row(s); nothing was scored. Fix them, or pass --skip-invalid to write them "
            "to a rejects file",
        )
    reward_model = (
        model
        if resolved is None
        else RewardModel.load_resolved(resolved, model, aggregate=aggregate)
    )
    extra: list[dict] = [{} for _ in rows]
    tokens_before = (reward_model.tokens.in_rows, reward_model.tokens.fed)
    if reward_model.is_process:  # step rewards, and their aggregate as the reward
        separator = reward_model.recipe.step_separator
        steps = reward_model.score_steps(
            [row.prompt for row in rows],
            [solution_steps(row.response, separator, row.steps) for row in rows],
            progress,
        )
        rewards = [aggregate_steps(found, reward_model.aggregate) for found in steps]
        extra = [{"step_rewards": probabilities} for probabilities in steps]
    else:
        rewards = reward_model.score(
            [row.prompt for row in rows],
            [row.response for row in rows],
            [row.reference for row in rows] if reward_model.reference_mode else None,
            normalize=normalize,
            progress=progress,
        )
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with output_path.open("w", encoding="utf-8") as out:
        for row, reward, more in zip(rows, rewards, extra):
            record = {**row.row, **more, "reward": reward}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    written_rejects = None
    if rejected:
        written_rejects = Path(rejects_path or f"{output_path}.rejects.jsonl")
        with written_rejects.open("w", encoding="utf-8") as out:
            for item in rejected:
                record = {"line": item.number, "error": item.error, "row": item.row}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    in_rows = reward_model.tokens.in_rows - tokens_before[0]
    fed = reward_model.tokens.fed - tokens_before[1]
    return ScoreReport(len(rows), len(rejected), written_rejects, in_rows, fed)


def score_with(settings: ScoreSettings) -> ScoreReport:
    """`rewardforge score`: `score_file` as its settings say."""
    return score_file(
        settings.model,
        settings.input,
        settings.output,
        normalize=settings.normalize,
        skip_invalid=settings.skip_invalid,
        rejects_path=settings.rejects,
        reward_format=settings.reward_format,
        template=settings.template,
        aggregate=settings.aggregate,
    )


def _split_by_reference(
    rows: list[ScoringRow], reference_mode: bool
) -> tuple[list[ScoringRow], list[RejectedRow]]:
    """Rows that fit the model, and the rejects: rows without a reference for a reference-based
    model, rows with one for any other."""
    if reference_mode:
        problem = "the row has no 'reference', which this reference-based reward model needs."
    else:
        problem = "the row has a 'reference', which this reward model cannot use."
    fits: list[ScoringRow] = []
    misfits: list[RejectedRow] = []
    for row in rows:
        if (row.reference is not None) == reference_mode:
            fits.append(row)
        else:
            misfits.append(RejectedRow(row.number, row.row, problem))
    return fits, misfits
