"""Metrics of a process reward model over labelled solutions: step accuracy, and ProcessBench's
(the earliest wrong step found exactly, on solutions with an error and on correct ones).

A step counts as judged correct when its probability is at least `threshold` (0.5); the
earliest step judged wrong is the model's answer to "where is the first error?".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rewardforge.errors import UserError


def first_below(probabilities: Sequence[float], threshold: float = 0.5) -> int:
    """The index of the first step judged wrong, or -1 when none is (ProcessBench's label)."""
    return next((i for i, p in enumerate(probabilities) if p < threshold), -1)


def step_metrics(
    probabilities: Sequence[Sequence[float]],
    labels: Sequence[Sequence[float]],
    threshold: float = 0.5,
) -> dict[str, float]:
    """`step_accuracy` over every step, and per solution ProcessBench's `processbench_error_acc`
    (solutions with an error: its earliest step found exactly), `processbench_correct_acc`
    (correct solutions: no step judged wrong) and their harmonic mean `processbench_f1`.

    A ProcessBench metric over no solutions is undefined (NaN), not 0: a set without a wrong
    solution has no error accuracy, and then no F1."""
    pairs = [(p, y) for ps, ys in zip(probabilities, labels) for p, y in zip(ps, ys)]
    if not pairs:
        raise UserError("No labelled steps to evaluate.")
    found = [
        (first_below(ys, 0.5), first_below(ps, threshold))
        for ps, ys in zip(probabilities, labels)
        if ys
    ]
    errors = [predicted == truth for truth, predicted in found if truth != -1]
    correct = [predicted == -1 for truth, predicted in found if truth == -1]
    error_acc = sum(errors) / len(errors) if errors else math.nan
    correct_acc = sum(correct) / len(correct) if correct else math.nan
    both = error_acc + correct_acc
    f1 = 2 * error_acc * correct_acc / both if both > 0 else 0.0
    f1 = math.nan if math.isnan(both) else f1  # undefined, not 0, without one kind
    return {
        "step_accuracy": sum((p >= threshold) == (y >= 0.5) for p, y in pairs) / len(pairs),
        "n_steps": len(pairs),
        "n_solutions": len(found),
        "processbench_error_acc": error_acc,
        "processbench_correct_acc": correct_acc,
        "processbench_f1": f1,
    }
