"""Evaluating a process reward model on step-labelled solutions: step accuracy, ProcessBench's
metrics with bootstrap intervals, best-of-N accuracy for each way of aggregating steps (when rows
say whether the final answer is right), and a plot of where along a solution errors fall."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rewardforge.data.step_loader import load_step_examples  # noqa: E402
from rewardforge.evaluation.report import write_html  # noqa: E402
from rewardforge.scoring.reward_model import RewardModel  # noqa: E402
from rewardforge.scoring.step_aggregates import AGGREGATES, aggregate  # noqa: E402
from rewardforge.training.step_metrics import first_below, step_metrics  # noqa: E402

INTERVAL_METRICS = (
    "step_accuracy",
    "processbench_error_acc",
    "processbench_correct_acc",
    "processbench_f1",
)


def evaluate_steps(
    reward_model: RewardModel,
    data: str | Path | Sequence[str | Path],
    label: str,
    skip_invalid: bool = False,
    progress: bool = True,
    report_dir: Path | None = None,
    neutral_is_correct: bool = True,
) -> dict[str, Any]:
    """Score every step of every solution in `data` and measure the model against the labels
    (a PRM800K rating of 0 counts as correct, or as wrong without `neutral_is_correct`). A
    metric over no solutions (ProcessBench's error accuracy on a set without an error) is NaN
    here and null in metrics.json."""
    report = load_step_examples(
        data, skip_invalid=skip_invalid, neutral_is_correct=neutral_is_correct
    )
    prompts, solutions, labels, finals, problems = [], [], [], [], []
    for number, example in enumerate(report.examples):
        for solution in example.solutions:
            prompts.append(example.prompt)
            solutions.append(list(solution.steps))
            labels.append(list(solution.labels or []))
            finals.append(solution.final_correct)
            problems.append(number)
    probabilities = reward_model.score_steps(prompts, solutions, progress)
    metrics: dict[str, Any] = step_metrics(probabilities, labels)
    metrics.update(_intervals(probabilities, labels))
    metrics["n_problems"] = len(report.examples)
    metrics["best_of_n"] = best_of_n(probabilities, finals, problems)
    metrics["formats"] = report.formats
    metrics["rows_skipped"] = dict(report.skipped)
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        written = json.dumps(_undefined_as_null(metrics), indent=2)
        (report_dir / "metrics.json").write_text(written + "\n", "utf-8")
        with (report_dir / "scores.jsonl").open("w", encoding="utf-8") as out:
            for prompt, steps, truth, found in zip(prompts, solutions, labels, probabilities):
                record = {"prompt": prompt, "steps": steps, "labels": truth, "step_rewards": found}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        plot = error_positions(probabilities, labels, report_dir / "step_errors.png")
        write_html(
            report_dir / "report.html",
            f"Process reward model report: {label}",
            {label: metrics},
            {label: {"Where the model's errors fall along a solution": plot}},
        )
    return metrics


def best_of_n(
    probabilities: Sequence[Sequence[float]],
    finals: Sequence[bool | None],
    problems: Sequence[int],
) -> dict[str, Any]:
    """For problems with two or more solutions whose final answer is known: the share where the
    solution with the highest aggregate reward has the right answer, for each aggregate."""
    by_problem: dict[int, list[int]] = {}
    for index, (problem, final) in enumerate(zip(problems, finals)):
        if final is not None:
            by_problem.setdefault(problem, []).append(index)
    groups = [indices for indices in by_problem.values() if len(indices) > 1]
    if not groups:
        return {}
    result: dict[str, Any] = {"n_problems": len(groups)}
    for how in AGGREGATES:
        picks = [max(group, key=lambda i: aggregate(probabilities[i], how)) for group in groups]
        result[how] = sum(bool(finals[i]) for i in picks) / len(picks)
    result["oracle"] = sum(any(finals[i] for i in group) for group in groups) / len(groups)
    return result


def error_positions(
    probabilities: Sequence[Sequence[float]], labels: Sequence[Sequence[float]], path: Path
) -> Path:
    """Two panels: step accuracy by step number, and where the model puts the first error of a
    wrong solution relative to the true one (too early, exact, too late, missed)."""
    longest = max(len(steps) for steps in labels)
    hits = np.zeros(longest)
    count = np.zeros(longest)
    for found, truth in zip(probabilities, labels):
        for index, (p, y) in enumerate(zip(found, truth)):
            hits[index] += (p >= 0.5) == (y >= 0.5)
            count[index] += 1
    offsets = {"too early": 0, "exact": 0, "too late": 0, "missed": 0}
    for found, truth in zip(probabilities, labels):
        first = first_below(truth)
        if not truth or first == -1:
            continue
        guess = first_below(found)
        if guess == -1:
            offsets["missed"] += 1
        elif guess == first:
            offsets["exact"] += 1
        else:
            offsets["too early" if guess < first else "too late"] += 1
    figure, (left, right_axes) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = np.arange(1, longest + 1)
    left.bar(steps, np.divide(hits, count, out=np.zeros(longest), where=count > 0))
    left.set(xlabel="step", ylabel="step accuracy", ylim=(0, 1), title="Accuracy by step")
    right_axes.bar(list(offsets), list(offsets.values()), color="tab:orange")
    right_axes.set(ylabel="wrong solutions", title="First error found")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _intervals(
    probabilities: Sequence[Sequence[float]],
    labels: Sequence[Sequence[float]],
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, list[float]]:
    """95% percentile bootstrap intervals, resampling whole solutions."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in INTERVAL_METRICS}
    for _ in range(resamples):
        picked = rng.integers(0, len(labels), len(labels))
        metrics = step_metrics([probabilities[i] for i in picked], [labels[i] for i in picked])
        for name in INTERVAL_METRICS:
            if not math.isnan(metrics[name]):
                draws[name].append(metrics[name])
    return {
        f"{name}_ci95": [float(v) for v in np.percentile(values, [2.5, 97.5])]
        for name, values in draws.items()
        if values
    }


def _undefined_as_null(value: Any) -> Any:
    """`value` with NaN (an undefined metric) as None, so that metrics.json is valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _undefined_as_null(item) for key, item in value.items()}
    return value
