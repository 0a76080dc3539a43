"""Prompt files: one prompt per row, as `{"prompt": ...}` (text or messages) or `{"messages"}`.

Best-of-N sampling and RLHF read their prompts here; a bad row stops the run with its line.
"""

from __future__ import annotations

from pathlib import Path

from rewardforge.data.example import Prompt
from rewardforge.data.formats import RowError, parse_messages, parse_prompt
from rewardforge.data.loader import invalid_rows_error, read_rows


def read_prompts(path: str | Path) -> list[tuple[int, Prompt]]:
    """(line number, prompt) for every row of a prompt file."""
    prompts, errors = [], []
    for number, row in read_rows(str(path)):
        try:
            if isinstance(row, RowError):
                raise row
            if "messages" in row:
                prompts.append((number, parse_messages(row["messages"], "messages")))
            elif "prompt" in row:
                prompts.append((number, parse_prompt(row["prompt"])))
            else:
                raise RowError("missing key", "a prompt row needs 'prompt' or 'messages'.")
        except RowError as error:
            errors.append(f"{path}: line {number}: {error}")
    if errors:
        raise invalid_rows_error(errors, "invalid prompt row(s)")
    return prompts
