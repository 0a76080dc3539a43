"""A seeded generator of step-labelled arithmetic word problems, whose labels are true by
construction: the bundled process-reward data.

Each problem is a short story with three or four operations. Each of its solutions works them
out one step at a time and ends with "The answer is N." About half the solutions go wrong at one
step: a quantity copied wrongly, or a result off by a little; every later step follows
consistently from the wrong value, and every step from the first error on is labelled wrong.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goro", "Hana", "Ivan", "Jin", "Lea", "Mei"]


@dataclass(frozen=True)
class Story:
    """A problem's text and its operations: (operator, operand name, step text)."""

    text: str
    operations: tuple[tuple[str, str, str], ...]


STORIES = (
    Story(
        "{name} has {a} marbles. {name} buys {b} more, gives {c} to a friend, and shares the rest "
        "equally among {d} jars. How many marbles go in each jar?",
        (
            ("+", "b", "{name} starts with {x} marbles and buys {v} more: {x} + {v} = {y}."),
            ("-", "c", "After giving {v} to a friend, {name} has {x} - {v} = {y}."),
            ("/", "d", "Shared among {v} jars, each jar gets {x} / {v} = {y}."),
        ),
    ),
    Story(
        "A bakery makes {a} trays of {b} cookies. {c} cookies break, and the rest are sold in "
        "bags of {d}. How many bags are sold?",
        (
            ("*", "b", "{x} trays of {v} cookies make {x} * {v} = {y} cookies."),
            ("-", "c", "Without the {v} broken ones, {x} - {v} = {y} cookies are left."),
            ("/", "d", "In bags of {v}, that is {x} / {v} = {y} bags."),
        ),
    ),
    Story(
        "{name} saves {a} dollars a week for {b} weeks, then spends {c} dollars on a gift and "
        "{d} dollars on books. How many dollars are left?",
        (
            ("*", "b", "Saving {x} dollars for {v} weeks gives {x} * {v} = {y} dollars."),
            ("-", "c", "After the gift, {x} - {v} = {y} dollars remain."),
            ("-", "d", "After the books, {x} - {v} = {y} dollars remain."),
        ),
    ),
    Story(
        "A train carries {a} passengers. At the first stop {b} get off and {c} get on; at the "
        "second stop the number of passengers doubles {d} times. How many passengers are there?",
        (
            ("-", "b", "After {v} get off, {x} - {v} = {y} passengers remain."),
            ("+", "c", "With {v} getting on, there are {x} + {v} = {y} passengers."),
            ("*", "d", "Doubling {v} times multiplies by {m}: {x} * {m} = {y}."),
        ),
    ),
)


def generate(problems: int, solutions_per_problem: int, seed: int) -> list[dict]:
    """Rows in TRL's stepwise format, with `final_answer_correct`; solutions to one problem are
    consecutive rows with the same prompt."""
    rng = random.Random(seed)
    rows = []
    for _ in range(problems):
        story = rng.choice(STORIES)
        values = _values(story, rng)
        prompt = story.text.format(**values)
        correct = _solve(story, values, error=None)[1]
        for _ in range(solutions_per_problem):
            error = _error(story, rng) if rng.random() < 0.5 else None
            steps, answer, labels = _solve(story, values, error)
            rows.append(
                {
                    "prompt": prompt,
                    "completions": steps,
                    "labels": labels,
                    "final_answer_correct": answer == correct,
                }
            )
    return rows


def processbench_rows(rows: list[dict]) -> list[dict]:
    """The same solutions in ProcessBench's format: the earliest wrong step, or -1."""
    return [
        {
            "id": f"arithmetic-{index}",
            "problem": row["prompt"],
            "steps": row["completions"],
            "label": next((i for i, label in enumerate(row["labels"]) if not label), -1),
            "final_answer_correct": row["final_answer_correct"],
        }
        for index, row in enumerate(rows)
    ]


def _values(story: Story, rng: random.Random) -> dict:
    """Operands for which every correct step is a whole, positive number."""
    while True:
        values = {"name": rng.choice(NAMES), "a": rng.randint(3, 40)}
        values.update({key: rng.randint(2, 12) for key in "bcd"})
        if story is STORIES[3]:
            values["d"] = rng.randint(1, 3)
        _, answer, _ = _solve(story, values, error=None)
        if answer is not None and answer > 0:
            return values


def _error(story: Story, rng: random.Random) -> tuple[int, str, int]:
    """(step, kind, offset): a copied quantity or a result off by 1 to 3."""
    offset = rng.choice([-3, -2, -1, 1, 2, 3])
    return rng.randrange(len(story.operations)), rng.choice(["copy", "result"]), offset


def _solve(
    story: Story, values: dict, error: tuple[int, str, int] | None
) -> tuple[list[str], Fraction | None, list[bool]]:
    """The steps, the final answer (None when a correct step is not a positive whole
    number, so the values are rejected) and each step's label."""
    x = Fraction(values["a"])
    steps, labels, wrong = [], [], False
    for index, (operator, key, text) in enumerate(story.operations):
        v = Fraction(values[key])
        factor = 2 ** values[key] if operator == "*" and story is STORIES[3] else None
        operand = Fraction(factor) if factor is not None else v
        if error and error[0] == index and error[1] == "copy":
            v = v + error[2] if v + error[2] >= 1 else v + abs(error[2])  # never the true one
            operand = Fraction(2 ** int(v)) if factor is not None else v
            wrong = True
        y = {"+": x + operand, "-": x - operand, "*": x * operand, "/": x / operand}[operator]
        if error and error[0] == index and error[1] == "result":
            y += error[2]
            wrong = True
        if error is None and (y <= 0 or y.denominator != 1):
            return [], None, []
        steps.append(
            text.format(name=values["name"], x=_show(x), v=_show(v), y=_show(y), m=_show(operand))
        )
        labels.append(not wrong)
        x = y
    steps.append(f"The answer is {_show(x)}.")
    labels.append(not wrong)
    return steps, x, labels


def _show(number: Fraction) -> str:
    """A whole number as is, anything else to two decimals."""
    return str(number.numerator) if number.denominator == 1 else f"{float(number):.2f}"
