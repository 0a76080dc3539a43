"""Read a RewardBench 2 file: each row a prompt, its correct answers and its wrong ones.

RewardBench 2 (allenai/reward-bench-2) ships one table with the columns `id`, `prompt`,
`chosen` (a list: one correct answer, or several in the Ties subset), `rejected` (a list),
`num_correct`, `num_rejected`, `total_completions`, `models` and `subset`. The reader keeps what
the scoring needs and checks what the scoring relies on: the counts agree with the lists, and a
Ties row's id is `ref:N` or `tied:N`, which pairs a prompt with its reference prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardforge.data.example import PreferenceExample, Prompt
from rewardforge.data.formats import RowError, parse_prompt
from rewardforge.data.loader import parse_rows

TIES = "ties"  # RewardBench 2 scores the subset with this name (any case) by its own rule


@dataclass(frozen=True)
class BenchmarkItem:
    """One RewardBench 2 row: the correct answers come first in `responses`."""

    id: str
    subset: str
    prompt: Prompt
    responses: tuple[str, ...]
    num_correct: int
    source: str

    @property
    def is_ties(self) -> bool:
        return self.subset.lower() == TIES

    def as_example(self) -> PreferenceExample:
        """The row as a group of responses for a reward model to score (correct ones first)."""
        return PreferenceExample(
            prompt=self.prompt, responses=self.responses, category=self.subset, source=self.source
        )


def read_rewardbench2(path: str | Path) -> list[BenchmarkItem]:
    """Every row of a RewardBench 2 file (`.parquet` as downloaded, `.jsonl` or `.json`).

    Raises `DataError` naming the file, the row and the problem for every row that does not
    fit the schema.
    """
    rows = parse_rows(path, _item, "rows do not fit RewardBench 2's schema")
    return [
        BenchmarkItem(**fields, source=f"{path}:{number}")  # type: ignore[arg-type]
        for number, fields in rows
    ]


def _item(row: dict[str, Any]) -> dict[str, Any]:
    missing = [key for key in ("id", "prompt", "chosen", "rejected", "subset") if key not in row]
    if missing:
        raise RowError(
            "missing keys",
            f"missing {', '.join(map(repr, missing))}; a RewardBench 2 row has 'id', 'prompt', "
            "'chosen' (a list), 'rejected' (a list) and 'subset'.",
        )
    chosen, rejected = _answers(row, "chosen"), _answers(row, "rejected")
    if not isinstance(row["subset"], str) or not row["subset"]:
        raise RowError("wrong type", "'subset' must be a subset name such as 'Factuality'.")
    for key, expected in (("num_correct", len(chosen)), ("num_rejected", len(rejected))):
        if key in row and row[key] != expected:
            raise RowError(
                "counts disagree",
                f"{key!r} is {row[key]} but the row lists {expected} answers for it.",
            )
    total = row.get("total_completions")
    if total is not None and total != len(chosen) + len(rejected):
        raise RowError(
            "counts disagree",
            f"'total_completions' is {total} but the row lists {len(chosen) + len(rejected)} "
            "answers.",
        )
    item_id = str(row["id"])
    if row["subset"].lower() == TIES:
        _check_ties_id(item_id, len(chosen))
    return {
        "id": item_id,
        "subset": row["subset"],
        "prompt": parse_prompt(row["prompt"]),
        "responses": (*chosen, *rejected),
        "num_correct": len(chosen),
    }


def _answers(row: dict[str, Any], key: str) -> list[str]:
    value = row[key]
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(answer, str) for answer in value)
    ):
        raise RowError("wrong type", f"{key!r} must be a non-empty list of answers (strings).")
    return list(value)


def _check_ties_id(item_id: str, correct: int) -> None:
    kind, _, number = item_id.partition(":")
    if kind not in ("ref", "tied") or not number.isdigit():
        raise RowError(
            "bad Ties id",
            f"a Ties row's 'id' must be 'ref:N' or 'tied:N' (it pairs a prompt with its "
            f"reference prompt), got {item_id!r}.",
        )
    if kind == "tied" and correct < 2:
        raise RowError(
            "bad Ties row",
            f"a 'tied' row lists several equally correct answers in 'chosen'; {item_id!r} "
            "lists one.",
        )
