"""Rows to score: `{"prompt", "response"}` or `{"messages"}` ending with the assistant's reply.

A row for a reference-based (POLAR-style) reward model also holds the `reference` answer.

Used by `rewardforge score` and the reward server. Unlike preference data, each row is one
response; the row itself is kept so that the output can repeat it with a reward added.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardforge.data.example import Prompt
from rewardforge.data.formats import RowError, parse_messages, parse_prompt
from rewardforge.data.loader import empty_file_error, parse_rows, read_rows


@dataclass(frozen=True)
class ScoringRow:
    """One response to score, with where it came from and the row as read."""

    number: int
    row: dict[str, Any]
    prompt: Prompt
    response: str
    reference: str | None = None
    steps: tuple[str, ...] | None = None  # a solution's steps, for a process reward model


@dataclass(frozen=True)
class RejectedRow:
    """A row that could not be scored, and why."""

    number: int
    row: dict[str, Any] | None  # None when the line was not valid JSON
    error: str


def parse_scoring_item(item: dict[str, Any]) -> tuple[Prompt, str]:
    """(prompt, response) of one item; raises `RowError` naming the problem."""
    if "messages" in item:
        messages = parse_messages(item["messages"], "messages")
        if messages[-1]["role"] != "assistant":
            raise RowError("wrong type", "'messages' must end with the assistant's reply.")
        if len(messages) < 2:
            raise RowError("wrong type", "'messages' needs a prompt before the assistant's reply.")
        return messages[:-1], messages[-1]["content"]
    steps = parse_steps(item)
    if steps is not None and "response" not in item:  # a solution given as its steps
        return parse_prompt(item.get("prompt")), "\n\n".join(steps)
    missing = [key for key in ("prompt", "response") if item.get(key) is None]
    if missing:
        raise RowError(
            "missing key",
            f"missing key {missing[0]!r}; a row needs 'prompt' and 'response', or 'messages'.",
        )
    if not isinstance(item["response"], str):
        raise RowError("wrong type", "'response' must be a string.")
    return parse_prompt(item["prompt"]), item["response"]


def parse_steps(item: dict[str, Any]) -> tuple[str, ...] | None:
    """The item's solution steps (`completions`, as TRL's stepwise rows hold them), or None."""
    steps = item.get("completions")
    if steps is None:
        return None
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise RowError("wrong type", "'completions' must be a non-empty list of step texts.")
    if any(not step.strip() for step in steps):
        raise RowError("empty step", "'completions' has an empty step.")
    return tuple(steps)


def parse_reference(item: dict[str, Any]) -> str | None:
    """The item's `reference` answer (for reference-based reward models), or None."""
    reference = item.get("reference")
    if reference is not None and not (isinstance(reference, str) and reference.strip()):
        raise RowError("wrong type", "'reference' must be a non-empty string.")
    return reference


def read_scoring_rows(path: str | Path) -> tuple[list[ScoringRow], list[RejectedRow]]:
    """Every row of a file to score, split into usable rows and rejected ones, in file order."""
    rows: list[ScoringRow] = []
    rejected: list[RejectedRow] = []
    for number, row in read_rows(str(path)):
        if isinstance(row, RowError):
            rejected.append(RejectedRow(number, None, str(row)))
            continue
        try:
            prompt, response = parse_scoring_item(row)
            reference = parse_reference(row)
            steps = parse_steps(row)
        except RowError as error:
            rejected.append(RejectedRow(number, row, str(error)))
            continue
        rows.append(ScoringRow(number, row, prompt, response, reference, steps))
    if not rows and not rejected:
        raise empty_file_error(path)
    return rows, rejected


def read_demonstrations(path: str | Path) -> list[tuple[Prompt, str]]:
    """(prompt, answer) of every row of a supervised fine-tuning file, or one error for all
    bad rows. Rows are `{"prompt", "answer"}` (or `"response"`, as best-of-N writes them) or
    `{"messages"}` ending with the assistant's answer."""
    return [pair for _, pair in parse_rows(path, _demonstration, "invalid demonstration row(s)")]


def _demonstration(row: dict[str, Any]) -> tuple[Prompt, str]:
    has_answer = "answer" in row or "response" in row
    if "messages" not in row and not ("prompt" in row and has_answer):
        raise RowError("missing key", "a row needs 'prompt' and 'answer', or 'messages'.")
    return parse_scoring_item({**row, "response": row["answer"]} if "answer" in row else row)
