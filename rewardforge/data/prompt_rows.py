"""Prompt files: one prompt per row, as `{"prompt": ...}` (text or messages) or `{"messages"}`.

Best-of-N sampling and RLHF read their prompts here; a bad row stops the run with its line.
For a reference-based reward model, RLHF prompt rows also hold the `reference` answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardforge.data.example import Prompt
from rewardforge.data.formats import RowError, parse_messages, parse_prompt
from rewardforge.data.loader import parse_rows
from rewardforge.data.scoring_rows import parse_reference


def read_prompts(path: str | Path) -> list[tuple[int, Prompt]]:
    """(line number, prompt) for every row of a prompt file."""
    return parse_rows(path, _prompt, "invalid prompt row(s)")


def read_prompts_with_references(path: str | Path) -> list[tuple[int, Prompt, str | None]]:
    """(line number, prompt, its `reference` answer or None) for every row of a prompt file."""
    rows = parse_rows(
        path, lambda row: (_prompt(row), parse_reference(row)), "invalid prompt row(s)"
    )
    return [(line, prompt, reference) for line, (prompt, reference) in rows]


def _prompt(row: dict[str, Any]) -> Prompt:
    if "messages" in row:
        return parse_messages(row["messages"], "messages")
    if "prompt" in row:
        return parse_prompt(row["prompt"])
    raise RowError("missing key", "a prompt row needs 'prompt' or 'messages'.")
