"""`evaluate()` and `compare()`: score preference data and diagnose how a reward model fails."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardforge.adoption.resolve import ResolvedRewardModel
from rewardforge.data import LoadReport, load_preferences
from rewardforge.data.conversation import prompt_as_text
from rewardforge.data.example import PreferenceExample
from rewardforge.errors import UserError
from rewardforge.evaluation.config import EvalSettings
from rewardforge.evaluation.diagnostics import (
    ScoredExample,
    best_of_n_accuracy,
    diagnose,
    pair_outcomes,
)
from rewardforge.evaluation.judge_metrics import judge_metrics
from rewardforge.evaluation.plots import write_plots
from rewardforge.evaluation.rank_changes import rank_changes
from rewardforge.evaluation.report import write_html
from rewardforge.evaluation.report_files import report_directory, write_json, write_jsonl
from rewardforge.evaluation.rewardbench2 import evaluate_rewardbench2
from rewardforge.evaluation.step_evaluation import evaluate_steps
from rewardforge.scoring.judge import Judge
from rewardforge.scoring.reward_model import RewardModel, recipe_before_loading
from rewardforge.training.callbacks import LOG_FILE

DataPaths = str | Path | Sequence[str | Path]


def evaluate(
    model: str | Path | RewardModel,
    data: DataPaths,
    *,
    columns: dict[str, str] | None = None,
    skip_invalid: bool = False,
    progress: bool = True,
    report_dir: str | Path | None = None,
    reward_format: str = "auto",
    template: str | None = None,
    neutral_rating: str = "correct",
    samples: int = 1,
) -> dict[str, Any]:
    """Score every preference example in `data` and diagnose the model.

    Returns pairwise `accuracy` (ties count as wrong) with a 95% bootstrap interval
    (`accuracy_ci95`), `n_pairs`, `mean_margin`, `loss` (Bradley-Terry), `length_bias`,
    `calibration` (ECE and reliability bins), `categories` when the data has a category column,
    `ranking` (best-of-N accuracy, Kendall tau) when it has groups of more than two responses,
    and the data `formats`. With `report_dir`, also writes `metrics.json`, `scores.jsonl`, the
    PNG plots and a self-contained `report.html` there. A process reward model is measured on
    step-labelled rows instead (`evaluate_steps`; `neutral_rating` says how a PRM800K rating of
    0 counts). A judge adds its figures under `judge`; a judge that writes its verdicts or
    grades, or only compares two answers, gives no reward to one answer and has only those
    (`samples` written replies an order or an answer).
    """
    recipe, resolved = recipe_before_loading(model, reward_format, template)
    if recipe.judge is not None and (
        recipe.judge.style == "reasoning" or not recipe.judge.pointwise
    ):
        # a folder: a judge that writes, or only compares, gives no reward to one answer
        assert resolved is not None and not isinstance(model, RewardModel)
        report = _load(data, columns, skip_invalid, reference_mode=False)
        judge = Judge.load_resolved(resolved, model)
        metrics = {"judge": judge_metrics(judge, report.examples, None, progress, samples)}
        metrics.update(_data_account(report))
        if report_dir is not None:  # its figures only: there are no rewards to plot
            write_json(report_directory(report_dir) / "metrics.json", metrics)
        return metrics
    if recipe.kind == "process":  # step-labelled data: step accuracy and ProcessBench's metrics
        label, reward_model = _model(model, resolved)
        directory = None if report_dir is None else report_directory(report_dir)
        neutral_is_correct = neutral_rating == "correct"
        return evaluate_steps(
            reward_model, data, label, skip_invalid, progress, directory, neutral_is_correct
        )
    report = _load(data, columns, skip_invalid, recipe.reference_mode)  # before the weights load
    label, reward_model = _model(model, resolved)
    scored = score_examples(reward_model, report.examples, progress)
    metrics = {**diagnose(scored), **_data_account(report)}
    if reward_model.recipe.judge is not None:  # a verdict judge: its pairwise verdicts too
        metrics["judge"] = judge_metrics(Judge(reward_model), report.examples, scored, progress)
    if report_dir is not None:
        directory = report_directory(report_dir)
        plots = write_plots(scored, metrics, directory, training_log=_training_log(model))
        write_json(directory / "metrics.json", metrics)
        _write_scores(directory / "scores.jsonl", report.examples, {label: scored})
        write_html(
            directory / "report.html",
            f"Reward model report: {label}",
            {label: metrics},
            {label: plots},
        )
    return metrics


def compare(
    model: str | Path | RewardModel,
    other: str | Path | RewardModel,
    data: DataPaths,
    *,
    columns: dict[str, str] | None = None,
    skip_invalid: bool = False,
    progress: bool = True,
    report_dir: str | Path | None = None,
    reward_format: str = "auto",
    template: str | None = None,
) -> dict[str, Any]:
    """Evaluate two reward models on the same data, side by side.

    Returns `{"models": {label: metrics}, "disagreements": [...], "rank_changes": [...],
    "preferred_first": {label: share}}`. A disagreement is an example that one model orders
    right and the other does not (for groups: a different share of its pairs right);
    `rank_changes` lists every example's candidates with both models' rewards and ranks, and
    `preferred_first` is the share of examples whose preferred response each model ranks first.
    Both models must be reference-based, or neither. With `report_dir`, writes both models'
    plots, `metrics.json`, `scores.jsonl`, `disagreements.jsonl`, `rank_changes.jsonl` and
    `report.html`. `reward_format` and `template` describe `model` when it was trained
    elsewhere; `other`'s are read from its folder.
    """
    first_recipe, first_resolved = recipe_before_loading(model, reward_format, template)
    second_recipe, second_resolved = recipe_before_loading(other)  # its family: from its folder
    if first_recipe.kind == "process" or second_recipe.kind == "process":
        raise UserError(
            "eval --compare compares two outcome reward models; evaluate a process reward model "
            "on its own (rewardforge eval --model PRM --data STEPS.jsonl)."
        )
    if first_recipe.reference_mode != second_recipe.reference_mode:
        based = _label(model) if first_recipe.reference_mode else _label(other)
        raise UserError(
            f"{based} is reference-based and the other model is not, so no data fits both; "
            "compare two reference-based models, or two plain ones."
        )
    report = _load(data, columns, skip_invalid, first_recipe.reference_mode)
    first, first_model = _model(model, first_resolved)
    second, second_model = _model(other, second_resolved)
    if first == second:
        first, second = f"A: {first}", f"B: {second}"
    scored = {
        first: score_examples(first_model, report.examples, progress),
        second: score_examples(second_model, report.examples, progress),
    }
    reports = {label: {**diagnose(s), **_data_account(report)} for label, s in scored.items()}
    differences = disagreements(report.examples, scored)
    changes = rank_changes(report.examples, scored)
    if report_dir is not None:
        directory = report_directory(report_dir)
        plots = {
            label: write_plots(
                scored[label],
                reports[label],
                directory,
                prefix=f"model{index}_",
                training_log=_training_log(source),
            )
            for index, (label, source) in enumerate(((first, model), (second, other)), start=1)
        }
        write_json(directory / "metrics.json", {"models": reports})
        _write_scores(directory / "scores.jsonl", report.examples, scored)
        write_jsonl(directory / "disagreements.jsonl", differences)
        write_jsonl(directory / "rank_changes.jsonl", changes)
        write_html(
            directory / "report.html",
            f"Reward model comparison: {first} vs {second}",
            reports,
            plots,
            differences,
            changes,
        )
    return {
        "models": reports,
        "disagreements": differences,
        "rank_changes": changes,
        "preferred_first": {label: best_of_n_accuracy(s) for label, s in scored.items()},
    }


def score_examples(
    reward_model: RewardModel, examples: Sequence[PreferenceExample], progress: bool = True
) -> list[ScoredExample]:
    """Rewards and response lengths (tokens) of every example, through the saved recipe."""
    rewards = reward_model.score_examples(examples, progress=progress)
    tokenizer = reward_model.encoder.tokenizer
    return [
        ScoredExample(
            rewards=tuple(group),
            lengths=tuple(
                len(tokenizer(response, add_special_tokens=False)["input_ids"])
                for response in example.responses
            ),
            category=example.category,
            source=example.source,
        )
        for example, group in zip(examples, rewards)
    ]


def disagreements(
    examples: Sequence[PreferenceExample], scored: dict[str, list[ScoredExample]]
) -> list[dict[str, Any]]:
    """Examples whose share of correctly ordered pairs differs between the two models."""
    (first, first_scored), (second, second_scored) = scored.items()
    first_right, second_right = pair_outcomes(first_scored), pair_outcomes(second_scored)
    return [
        {
            "source": example.source,
            "category": example.category,
            "prompt": prompt_as_text(example.prompt),
            "rewards": {first: list(a.rewards), second: list(b.rewards)},
            "right": first if right_a > right_b else second,
        }
        for example, a, b, right_a, right_b in zip(
            examples, first_scored, second_scored, first_right, second_right
        )
        if right_a != right_b
    ]


def _load(
    data: DataPaths, columns: dict[str, str] | None, skip_invalid: bool, reference_mode: bool
) -> LoadReport:
    report = load_preferences(
        data, columns=columns, skip_invalid=skip_invalid, reference_mode=reference_mode
    )
    if not report.examples:
        raise UserError(f"No preference examples to evaluate in {data}.")
    return report


def evaluate_with(settings: EvalSettings) -> dict[str, Any]:
    """`rewardforge eval`: `evaluate`, or `compare` with `--compare`, as its settings say."""
    options = {
        "columns": settings.columns,
        "skip_invalid": settings.skip_invalid,
        "progress": not settings.as_json,
        "report_dir": settings.report,
        "reward_format": settings.reward_format,
        "template": settings.template,
    }
    if settings.benchmark == "rewardbench2":
        return evaluate_rewardbench2(
            settings.model,
            settings.data,
            progress=options["progress"],
            report_dir=settings.report,
            reward_format=settings.reward_format,
            template=settings.template,
            samples=settings.samples,
        )
    if settings.compare is None:
        return evaluate(
            settings.model,
            settings.data,
            **options,
            neutral_rating=settings.neutral_rating,
            samples=settings.samples,
        )
    return compare(settings.model, settings.compare, settings.data, **options)


def _model(
    model: str | Path | RewardModel, resolved: ResolvedRewardModel | None
) -> tuple[str, RewardModel]:
    if isinstance(model, RewardModel):
        return "model", model
    return _label(model), RewardModel.load_resolved(resolved, model)


def _label(model: str | Path | RewardModel) -> str:
    return "model" if isinstance(model, RewardModel) else Path(model).name or str(model)


def _training_log(model: str | Path | RewardModel) -> Path | None:
    return None if isinstance(model, RewardModel) else Path(model) / LOG_FILE


def _data_account(report: LoadReport) -> dict[str, Any]:
    return {"rows_skipped": sum(report.skipped.values()), "formats": report.formats}


def _write_scores(
    path: Path, examples: Sequence[PreferenceExample], scored: dict[str, list[ScoredExample]]
) -> None:
    lengths = next(iter(scored.values()))
    records = [
        {
            "source": example.source,
            "category": example.category,
            "lengths": list(lengths[index].lengths),
            "rewards": {label: list(s[index].rewards) for label, s in scored.items()},
        }
        for index, example in enumerate(examples)
    ]
    write_jsonl(path, records)
