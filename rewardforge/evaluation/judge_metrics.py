"""How a judge fails, beyond the accuracy of its rewards: its pairwise verdicts asked in both
orders, how often the position decides them, whether its two questions agree, and for a
grading judge how often its grades put the better answer first or tie."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardforge.data.example import PreferenceExample
from rewardforge.evaluation.diagnostics import ScoredExample
from rewardforge.scoring.judge import Judge, position_bias


def judge_metrics(
    judge: Judge,
    examples: Sequence[PreferenceExample],
    scored: Sequence[ScoredExample] | None,
    progress: bool = False,
    samples: int = 1,
) -> dict[str, Any]:
    """The judge's figures on the best response against each other one: its pairwise ones
    where it compares two answers (`pairwise_figures`), its grading ones where it grades one
    (`grading_figures`), and for a judge that writes, `replies` and `unparsed_rate` (the
    share of its replies without a verdict or grade)."""
    pairs = [(example, index) for example in examples for index in range(1, len(example.responses))]
    metrics: dict[str, Any] = {"pairs": len(pairs)}
    replies = unparsed = 0
    if judge.prompt.pairwise is not None:
        figures, replies, unparsed = pairwise_figures(judge, pairs, scored, progress, samples)
        metrics.update(figures)
    if judge.prompt.grades_answers:
        figures, graded_replies, graded_unparsed = grading_figures(judge, pairs, samples)
        metrics.update(figures)
        replies, unparsed = replies + graded_replies, unparsed + graded_unparsed
    if replies:
        metrics["replies"] = replies
        metrics["unparsed_rate"] = unparsed / replies
    return metrics


def pairwise_figures(
    judge: Judge,
    pairs: Sequence[tuple[PreferenceExample, int]],
    scored: Sequence[ScoredExample] | None,
    progress: bool,
    samples: int,
) -> tuple[dict[str, Any], int, int]:
    """`pairwise_accuracy` (both orders averaged), `in_order_accuracy` and `swapped_accuracy`
    (the better answer shown first, then second), `position_bias` (share of pairs with the
    same position picked both times); with `scored` (a verdict judge's pointwise rewards)
    `agreement` (share where the pairwise verdict and the pointwise rewards pick the same
    answer). Also the judge's written replies and how many held no verdict."""
    verdicts = judge.judge_pairs(
        [example.prompt for example, _ in pairs],
        [example.responses[0] for example, _ in pairs],
        [example.responses[index] for example, index in pairs],
        progress=progress,
        samples=samples,
    )
    count = len(verdicts)
    picks = [verdict.first_better > 0.5 for verdict in verdicts]
    metrics: dict[str, Any] = {
        "pairwise_accuracy": sum(picks) / count,
        "in_order_accuracy": sum(v.in_order > 0 for v in verdicts) / count,
        "swapped_accuracy": sum(v.swapped < 0 for v in verdicts) / count,
        "position_bias": position_bias(verdicts),
    }
    if scored is not None:  # the same pairs, in the same order
        pointwise = [
            rewards.rewards[0] > rewards.rewards[index]
            for rewards in scored
            for index in range(1, len(rewards.rewards))
        ]
        metrics["agreement"] = sum(p == q for p, q in zip(picks, pointwise)) / count
    replies = sum(verdict.replies for verdict in verdicts)
    return metrics, replies, sum(verdict.unparsed for verdict in verdicts)


def grading_figures(
    judge: Judge, pairs: Sequence[tuple[PreferenceExample, int]], samples: int
) -> tuple[dict[str, Any], int, int]:
    """A grading judge's figures: `grade_accuracy` over the pairs where both answers got a
    grade (the better answer graded higher; a tie counts half, as RewardBench counts a tie of
    ratings), `grade_ties`, `ungraded_pairs` (an answer without any grade: left out, never
    scored), and the mean grades of the better and the worse answers."""
    answers = {}  # each answer graded once, however many pairs it is in
    for example, index in pairs:
        for response in (example.responses[0], example.responses[index]):
            answers.setdefault((_key(example), response), (example.prompt, response))
    keys = list(answers)
    grades = judge.grade(
        [answers[key][0] for key in keys], [answers[key][1] for key in keys], samples=samples
    )
    by_key = dict(zip(keys, grades))
    better = [by_key[(_key(example), example.responses[0])] for example, _ in pairs]
    worse = [by_key[(_key(example), example.responses[index])] for example, index in pairs]
    both = [
        (b.grade, w.grade)
        for b, w in zip(better, worse)
        if b.grade is not None and w.grade is not None
    ]
    ties = sum(b == w for b, w in both)
    metrics: dict[str, Any] = {
        "graded_pairs": len(both),
        "grade_accuracy": (sum(b > w for b, w in both) + ties / 2) / len(both) if both else None,
        "grade_ties": ties / len(both) if both else None,
        "ungraded_pairs": len(pairs) - len(both),
        "mean_grade_better": _mean([b for b, _ in both]),
        "mean_grade_worse": _mean([w for _, w in both]),
    }
    replies = sum(grade.replies for grade in grades)
    return metrics, replies, sum(grade.unparsed for grade in grades)


def _key(example: PreferenceExample) -> str:
    return repr(example.prompt)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
