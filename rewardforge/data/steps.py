"""Step-labelled solutions, the sibling of preference examples for process reward models.

A `StepExample` is a problem and one or more solutions to it; a solution is a list of steps,
each with a label: the probability that the step is correct (1 right, 0 wrong; soft labels such
as Monte-Carlo estimates stay as they are). Every supported row format is parsed into it here,
with row-numbered errors; nothing after this module knows which format a row came in:

- TRL's stepwise rows: `{"prompt", "completions": [step, ...], "labels": [bool or float, ...]}`
- Math-Shepherd: `{"input", "label"}`, a step tag (`ки`) after each step of `input` and `+` or
  `-` in its place in `label`
- PRM800K-style ratings: `{"prompt", "steps": [...], "ratings": [-1, 0, 1, ...]}`; how a neutral
  0 counts is the caller's choice
- ProcessBench: `{"problem", "steps": [...], "label"}`, the index of the earliest wrong step or
  -1; every step from that one on is labelled wrong
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rewardforge.config_fields import setting
from rewardforge.data.example import Prompt
from rewardforge.data.formats import RowError, parse_prompt

STEP_FORMATS = ("trl-stepwise", "math-shepherd", "prm800k", "processbench")
MATH_SHEPHERD_TAG = "ки"
NeutralRating = Literal["correct", "wrong"]


def neutral_rating_setting() -> Any:
    """A field for `--neutral-rating`: how a PRM800K rating of 0 counts, in training and eval."""
    return setting("correct", "prm: how a PRM800K rating of 0 (neutral) counts.")


@dataclass(frozen=True)
class Solution:
    """A solution's steps and, when labelled, each step's probability of being correct."""

    steps: tuple[str, ...]
    labels: tuple[float, ...] | None = None
    final_correct: bool | None = None  # whether the final answer is right, when the row says

    @property
    def first_error(self) -> int | None:
        """The index of the earliest step labelled wrong (below 0.5), or None."""
        if self.labels is None:
            return None
        return next((i for i, label in enumerate(self.labels) if label < 0.5), None)


@dataclass(frozen=True)
class StepExample:
    """A problem and its solutions; solutions to one problem share its tokens in a forward."""

    prompt: Prompt
    solutions: tuple[Solution, ...]
    source: str = ""


def detect_step_format(row: dict[str, Any]) -> str | None:
    """The step format of a row, or None when it is not step-labelled."""
    if "completions" in row and "labels" in row:
        return "trl-stepwise"
    if "input" in row and "label" in row and MATH_SHEPHERD_TAG in str(row["input"]):
        return "math-shepherd"
    if "steps" in row and "ratings" in row:
        return "prm800k"
    if "steps" in row and "label" in row:
        return "processbench"
    return None


def parse_step_row(
    row: dict[str, Any], fmt: str, neutral_is_correct: bool = True
) -> tuple[Prompt, Solution]:
    """A row of format `fmt` as (problem, solution); `RowError` names what is wrong."""
    if fmt == "trl-stepwise":
        steps = _steps(row, "completions")
        final = row.get("final_answer_correct")
        labels = _labels(row["labels"], len(steps))
        return parse_prompt(row["prompt"]), Solution(
            steps, labels, final if isinstance(final, bool) else None
        )
    if fmt == "math-shepherd":
        return _math_shepherd(row)
    if fmt == "prm800k":
        steps = _steps(row, "steps")
        ratings = row["ratings"]
        if not isinstance(ratings, list) or len(ratings) != len(steps):
            raise RowError(
                "wrong labels",
                f"'ratings' needs one of -1, 0, 1 for each of the {len(steps)} steps.",
            )
        if any(rating not in (-1, 0, 1) or isinstance(rating, bool) for rating in ratings):
            raise RowError("wrong labels", "'ratings' must hold -1, 0 or 1 only.")
        neutral = 1.0 if neutral_is_correct else 0.0
        labels = tuple({1: 1.0, -1: 0.0, 0: neutral}[rating] for rating in ratings)
        return _problem(row), Solution(steps, labels)
    if fmt == "processbench":
        steps = _steps(row, "steps")
        first = row["label"]
        if isinstance(first, bool) or not isinstance(first, int) or not -1 <= first < len(steps):
            raise RowError(
                "wrong labels",
                f"'label' must be the index of the earliest wrong step (0 to {len(steps) - 1}) "
                "or -1 when every step is right.",
            )
        cut = len(steps) if first == -1 else first
        labels = tuple(1.0 if index < cut else 0.0 for index in range(len(steps)))
        final = row.get("final_answer_correct")
        return _problem(row), Solution(steps, labels, final if isinstance(final, bool) else None)
    raise RowError("unknown format", f"unknown step format {fmt!r}.")


def _problem(row: dict[str, Any]) -> Prompt:
    for key in ("prompt", "problem", "question"):
        if key in row:
            return parse_prompt(row[key])
    raise RowError("missing key", "a step row needs 'prompt', 'problem' or 'question'.")


def _steps(row: dict[str, Any], key: str) -> tuple[str, ...]:
    steps = row[key]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise RowError("wrong type", f"{key!r} must be a non-empty list of step texts.")
    if any(not step.strip() for step in steps):
        raise RowError("empty step", f"{key!r} has an empty step.")
    return tuple(steps)


def _labels(values: Any, count: int) -> tuple[float, ...]:
    """Booleans as 1 or 0, numbers in [0, 1] kept as they are (soft labels)."""
    if not isinstance(values, list) or len(values) != count:
        raise RowError("wrong labels", f"'labels' needs one label for each of the {count} steps.")
    labels = []
    for value in values:
        if isinstance(value, bool):
            labels.append(1.0 if value else 0.0)
        elif isinstance(value, (int, float)) and 0 <= value <= 1:
            labels.append(float(value))
        else:
            raise RowError(
                "wrong labels", f"a label must be true, false or a number in [0, 1], got {value!r}."
            )
    return tuple(labels)


def _math_shepherd(row: dict[str, Any]) -> tuple[Prompt, Solution]:
    text, marked = row["input"], row["label"]
    if not isinstance(text, str) or not isinstance(marked, str):
        raise RowError("wrong type", "'input' and 'label' must be strings.")
    parts = text.split(MATH_SHEPHERD_TAG)
    if len(parts) == 1:
        raise RowError(
            "tag missing",
            f"'input' has no step tag {MATH_SHEPHERD_TAG!r}, so no step has a label; a "
            f"Math-Shepherd row ends each step with {MATH_SHEPHERD_TAG!r}.",
        )
    if parts[-1].strip():
        raise RowError(
            "tag missing",
            f"'input' has text after its last step tag {MATH_SHEPHERD_TAG!r} with no label: "
            f"end the last step with {MATH_SHEPHERD_TAG!r} too.",
        )
    labels, position = [], 0
    for part in parts[:-1]:  # `label` repeats `input` with + or - where each tag is
        sign = marked[position + len(part) : position + len(part) + 1]
        if marked[position : position + len(part)] != part or sign not in ("+", "-"):
            raise RowError(
                "tag missing",
                f"'label' must repeat 'input' with + or - in place of each {MATH_SHEPHERD_TAG!r}; "
                f"it differs at step {len(labels) + 1}.",
            )
        labels.append(1.0 if sign == "+" else 0.0)
        position += len(part) + 1
    start = parts[0].find("Step 1:")
    if start <= 0:
        raise RowError("tag missing", "cannot tell the problem from the steps: no 'Step 1:'.")
    problem = parts[0][:start].strip()
    steps = [parts[0][start:].strip(), *(part.strip() for part in parts[1:-1])]
    if any(not step for step in steps):
        raise RowError("empty step", "a step between two tags is empty.")
    return problem, Solution(tuple(steps), tuple(labels))
