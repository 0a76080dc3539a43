"""Step-labelled data for process reward models: every format to the same solutions (golden
files), bad rows named, soft labels kept; the bundled arithmetic data true by construction;
aggregates and ProcessBench's metrics on hand-made numbers."""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from pathlib import Path

import pytest

from rewardforge.data import DataError
from rewardforge.data.arithmetic_steps import generate, processbench_rows
from rewardforge.data.sample import PRM_SPLITS, prm_sample_paths
from rewardforge.data.step_loader import load_step_examples
from rewardforge.data.steps import Solution
from rewardforge.scoring.step_aggregates import aggregate, split_steps
from rewardforge.training.step_metrics import step_metrics

GOLDEN = Path(__file__).parent / "data" / "steps"
PROBLEM = "Tom has 2 apples and buys 3 more. How many apples does he have?"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("trl_stepwise", "trl-stepwise"),
        ("math_shepherd", "math-shepherd"),
        ("prm800k", "prm800k"),
        ("processbench", "processbench"),
    ],
)
def test_every_format_gives_the_same_solutions(name, fmt):
    report = load_step_examples(GOLDEN / f"{name}.jsonl")
    assert report.formats == {str(GOLDEN / f"{name}.jsonl"): fmt}
    (example,) = report.examples  # both solutions answer one problem: grouped
    assert example.prompt == PROBLEM
    assert [(s.steps, s.labels) for s in example.solutions] == [
        (("Step 1: 2 + 3 = 5.", "Step 2: The answer is 5."), (1.0, 1.0)),
        (("Step 1: 2 + 3 = 6.", "Step 2: The answer is 6."), (0.0, 0.0)),
    ]


def test_soft_labels_and_neutral_ratings(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps({"prompt": "p", "completions": ["a", "b"], "labels": [0.75, False]}) + "\n"
    )
    first = load_step_examples(tmp_path / "rows.jsonl").examples[0].solutions[0]
    assert first.labels == (0.75, 0.0)  # a Monte-Carlo estimate stays a float
    prm800k = tmp_path / "prm800k.jsonl"
    prm800k.write_text(json.dumps({"prompt": "q", "steps": ["a", "b"], "ratings": [0, 1]}) + "\n")
    as_correct = load_step_examples(prm800k).examples[0].solutions[0].labels
    as_wrong = load_step_examples(prm800k, neutral_is_correct=False).examples[0].solutions[0].labels
    assert as_correct == (1.0, 1.0) and as_wrong == (0.0, 1.0)


TRL_ROW = {"prompt": "p", "completions": ["a"], "labels": [True]}
SHEPHERD_ROW = {"input": "Q? Step 1: a ки\n", "label": "Q? Step 1: a +\n"}
PROCESSBENCH_ROW = {"problem": "p", "steps": ["a"], "label": -1}


@pytest.mark.parametrize(
    ("row", "good", "message"),
    [
        ({**TRL_ROW, "completions": ["a", "b"]}, TRL_ROW, "one label for each of the 2"),
        ({**TRL_ROW, "completions": [" "]}, TRL_ROW, "empty step"),
        ({**TRL_ROW, "labels": [1.5]}, TRL_ROW, "a number in [0, 1]"),
        (
            {"input": "Q? Step 1: a ки\nStep 2: b ки", "label": "Q? Step 1: a +\nStep 2: b"},
            SHEPHERD_ROW,
            "differs at step 2",
        ),
        # a Math-Shepherd row without tags (the format is read from the first row)
        ({"input": "Q? Step 1: a\n", "label": "Q? Step 1: a\n"}, SHEPHERD_ROW, "no step tag"),
        (
            {"input": "Q? Step 1: a ки\nStep 2: b", "label": "Q? Step 1: a +\nStep 2: b"},
            SHEPHERD_ROW,
            "text after its last step tag",
        ),
        ({**PROCESSBENCH_ROW, "label": 3}, PROCESSBENCH_ROW, "index of the earliest wrong step"),
    ],
)
def test_bad_rows_are_named_by_file_line_and_problem(tmp_path, row, good, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError) as error:
        load_step_examples(path)
    assert f"{path}: line 2:" in str(error.value) and message in str(error.value)
    report = load_step_examples(path, skip_invalid=True)
    assert report.rows_read == 2 and sum(report.skipped.values()) == 1


def test_the_bundled_data_is_what_the_generator_makes():
    train, evaluation, processbench = prm_sample_paths()
    for path, split in ((train, "train"), (evaluation, "eval")):
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
        assert rows == generate(*PRM_SPLITS[split])
    expected = processbench_rows(generate(*PRM_SPLITS["eval"]))
    assert [json.loads(line) for line in Path(processbench).read_text().splitlines()] == expected
    assert len(generate(*PRM_SPLITS["train"])) == 3000 and len(expected) == 400
    wrong = sum(row["label"] != -1 for row in expected) / len(expected)
    assert 0.4 < wrong < 0.6  # about half the solutions go wrong somewhere


def test_the_bundled_labels_are_true_by_construction():
    """Every step is `x op v = y`; a step is labelled right exactly while every result so far
    is what the true operands give, and the final answer's flag agrees."""
    arithmetic = re.compile(r"([\d.]+) ([-+*/]) ([\d.]+) = ([\d.]+[0-9])")
    checked = 0
    for row in generate(60, 4, 7):
        labels = row["labels"]
        first_wrong = labels.index(False) if False in labels else None
        if first_wrong is not None:  # every step from the first error on is labelled wrong
            assert not any(labels[first_wrong:])
        for step, label in zip(row["completions"], labels):
            match = arithmetic.search(step)
            if match is None or not label:
                continue
            a, operator, b, shown = match.groups()
            a, b = Fraction(a), Fraction(b)
            actual = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[operator]
            assert abs(Fraction(shown) - actual) < Fraction(1, 100), step  # right steps add up
            checked += 1
        assert row["final_answer_correct"] == (first_wrong is None)
    assert checked > 300


def test_aggregates_on_hand_made_numbers():
    steps = [0.9, 0.2, 0.8]
    assert aggregate(steps, "min") == 0.2
    assert aggregate(steps, "last") == 0.8
    assert aggregate(steps, "prod") == pytest.approx(0.144)
    assert aggregate(steps, "mean") == pytest.approx(1.9 / 3)
    assert math.isnan(aggregate([], "min"))
    assert split_steps("Step 1: a\n\nStep 2: b\n\n", "\n\n") == ["Step 1: a", "Step 2: b"]


def test_processbench_metrics_on_a_hand_made_set():
    labels = [[1, 0, 0], [1, 1, 0], [1, 1], [1, 1, 1]]  # errors at 1 and 2; two correct
    probabilities = [
        [0.9, 0.2, 0.1],  # first error found at 1: exact
        [0.9, 0.3, 0.1],  # found at 1, truly at 2: wrong
        [0.8, 0.7],  # correct, none flagged: right
        [0.9, 0.4, 0.9],  # correct, one flagged: wrong
    ]
    metrics = step_metrics(probabilities, labels)
    assert metrics["processbench_error_acc"] == 0.5
    assert metrics["processbench_correct_acc"] == 0.5
    assert metrics["processbench_f1"] == 0.5
    assert metrics["step_accuracy"] == pytest.approx(9 / 11)
    assert Solution(("a", "b"), (1.0, 0.0)).first_error == 1


def test_processbench_f1_is_undefined_without_wrong_solutions():
    """Not 0.0: a set with only correct solutions has no error accuracy, and so no F1; the
    bootstrap leaves the undefined draws out instead of collecting zeros."""
    from rewardforge.evaluation.step_evaluation import _intervals

    labels, probabilities = [[1, 1], [1, 1, 1]], [[0.9, 0.8], [0.9, 0.2, 0.9]]
    metrics = step_metrics(probabilities, labels)
    assert math.isnan(metrics["processbench_error_acc"]) and math.isnan(metrics["processbench_f1"])
    assert metrics["processbench_correct_acc"] == 0.5
    intervals = _intervals(probabilities, labels, resamples=50)
    assert (
        "processbench_f1_ci95" not in intervals and "processbench_error_acc_ci95" not in intervals
    )
    # both kinds present but neither found: a defined 0
    assert step_metrics([[0.2], [0.9]], [[1], [0]])["processbench_f1"] == 0.0
