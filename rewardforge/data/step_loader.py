"""Read step-labelled files into `StepExample`s: the format detected per file, solutions to the
same problem grouped (they share its tokens in a forward), bad rows named by file and line."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rewardforge.data.formats import RowError
from rewardforge.data.loader import DataError, invalid_rows_error, read_rows, row_place
from rewardforge.data.steps import Solution, StepExample, detect_step_format, parse_step_row


@dataclass
class StepLoadReport:
    """The examples read, each file's format, and what was skipped and why."""

    examples: list[StepExample] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    rows_read: int = 0
    skipped: Counter = field(default_factory=Counter)

    @property
    def solutions(self) -> int:
        return sum(len(example.solutions) for example in self.examples)

    @property
    def steps(self) -> int:
        return sum(len(s.steps) for example in self.examples for s in example.solutions)

    def summary(self) -> str:
        skipped = ", ".join(f"{count} {reason}" for reason, count in self.skipped.items())
        return (
            f"{self.rows_read} rows read: {len(self.examples)} problems, {self.solutions} "
            f"solutions, {self.steps} steps" + (f"; skipped {skipped}" if skipped else "")
        )


def load_step_examples(
    paths: str | Path | Sequence[str | Path],
    skip_invalid: bool = False,
    neutral_is_correct: bool = True,
) -> StepLoadReport:
    """Read step-labelled rows from every file; rows of one problem become one example.

    A bad row stops the load with every bad row named (`file: line N: problem`), unless
    `skip_invalid`, which skips and counts them. `neutral_is_correct` says how a PRM800K
    rating of 0 counts.
    """
    path_list = [paths] if isinstance(paths, (str, Path)) else list(paths)
    report, errors = StepLoadReport(), []
    grouped: dict[str, tuple[object, list[Solution], str]] = {}
    for path in map(str, path_list):
        fmt = None
        for number, row in read_rows(path):
            report.rows_read += 1
            try:
                if isinstance(row, RowError):
                    raise row
                fmt = fmt or detect_step_format(row)
                if fmt is None:
                    raise RowError(
                        "unknown format",
                        f"keys {sorted(row)} are no step-labelled format; expected one of "
                        "{'prompt', 'completions', 'labels'} (TRL), {'input', 'label'} "
                        "(Math-Shepherd), {'prompt', 'steps', 'ratings'} (PRM800K) or "
                        "{'problem', 'steps', 'label'} (ProcessBench).",
                    )
                prompt, solution = parse_step_row(row, fmt, neutral_is_correct)
            except (RowError, KeyError) as error:
                if isinstance(error, KeyError):
                    error = RowError("missing key", f"missing key {error.args[0]!r} ({fmt}).")
                if not skip_invalid:
                    errors.append(f"{row_place(path, number)}: {error}")
                report.skipped[error.reason] += 1
                continue
            key = json.dumps(prompt, ensure_ascii=False, sort_keys=True)
            grouped.setdefault(key, (prompt, [], f"{path}:{number}"))[1].append(solution)
        if fmt is not None:
            report.formats[path] = fmt
    if errors:
        raise invalid_rows_error(
            errors, "invalid row(s), so nothing was run. Fix them, or pass --skip-invalid"
        )
    report.examples = [
        StepExample(prompt, tuple(solutions), source)
        for prompt, solutions, source in grouped.values()
    ]
    if not report.examples:
        raise DataError(f"no usable step-labelled rows in {', '.join(map(str, path_list))}.")
    return report
