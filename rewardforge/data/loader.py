"""Read preference files (jsonl, json, parquet, csv, or a `datasets` dataset) into examples."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rewardforge.data.example import PreferenceExample
from rewardforge.data.formats import RowError, check_keys, detect_format, parse_row, score_gap
from rewardforge.errors import UserError

T = TypeVar("T")


class DataError(UserError):
    """Raised when preference data cannot be used; the message names the file and row."""


@dataclass
class LoadReport:
    """What `load_preferences` read, kept and skipped, so nothing is dropped silently."""

    examples: list[PreferenceExample] = field(default_factory=list)
    rows_read: int = 0
    formats: dict[str, str] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def pairs(self) -> int:
        """Preference pairs implied by the examples (a K-way group holds K-1 adjacent pairs)."""
        return sum(len(example.responses) - 1 for example in self.examples)

    def summary(self, truncated: int | None = None) -> str:
        """One line: rows read, examples and pairs used, truncated and skipped with reasons."""
        parts = [f"rows read: {self.rows_read}", f"examples used: {len(self.examples)}"]
        parts.append(f"pairs: {self.pairs}")
        if truncated is not None:
            parts.append(f"truncated: {truncated}")
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items()))
        parts.append(
            f"skipped: {sum(self.skipped.values())}" + (f" ({reasons})" if reasons else "")
        )
        return "; ".join(parts)


def load_preferences(
    paths: str | Path | Sequence[str | Path],
    *,
    columns: dict[str, str] | None = None,
    skip_invalid: bool = False,
    min_score_gap: float | None = None,
    reference_mode: bool = False,
) -> LoadReport:
    """Load preference data from one or more files into canonical `PreferenceExample`s.

    Args:
        paths: `.jsonl`, `.json`, `.parquet` or `.csv` files, a directory saved with
            `datasets.save_to_disk`, or the name of a Hugging Face dataset available offline.
        columns: maps canonical keys to the file's keys, e.g. `{"prompt": "question"}`.
        skip_invalid: skip bad rows (counted by reason in the report) instead of raising.
        min_score_gap: drop rows whose `chosen_score - rejected_score` is below this gap.
        reference_mode: read rows for a reference-based reward model: every example gets a
            `reference` (its own field, or the best of three or more ranked responses). Without
            it, rows with a `reference` are refused.

    Raises:
        DataError: naming the file, row and problem, for the first invalid rows (unless
            `skip_invalid`), or when no usable example remains.
    """
    path_list = [paths] if isinstance(paths, str | Path) else list(paths)
    report = LoadReport()
    errors: list[str] = []
    for path in path_list:
        _load_file(
            str(path), columns or {}, skip_invalid, min_score_gap, reference_mode, report, errors
        )
    if errors:
        raise invalid_rows_error(
            errors,
            "invalid row(s), so nothing was run. Fix them, or pass --skip-invalid to skip them",
        )
    if not report.examples:
        raise DataError(f"no usable preference examples in {', '.join(map(str, path_list))}.")
    return report


def invalid_rows_error(errors: Sequence[str], summary: str) -> DataError:
    """One error: `<count> <summary>:` and the first ten `file: row N: problem` lines."""
    shown = "\n  ".join(errors[:10])
    more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
    return DataError(f"{len(errors)} {summary}:\n  {shown}{more}")


def parse_rows(
    path: str | Path, parse: Callable[[dict[str, Any]], T], summary: str
) -> list[tuple[int, T]]:
    """(line number, `parse(row)`) for every row of a file; `parse` raises `RowError` for a bad
    row, and all bad rows together become one `invalid_rows_error` with `summary`."""
    parsed, errors = [], []
    for number, row in read_rows(str(path)):
        try:
            if isinstance(row, RowError):
                raise row
            parsed.append((number, parse(row)))
        except RowError as error:
            errors.append(f"{row_place(path, number)}: {error}")
    if errors:
        raise invalid_rows_error(errors, summary)
    if not parsed:
        raise empty_file_error(path)
    return parsed


def row_place(path: str | Path, number: int) -> str:
    """Where a row is, in the words of its file: a line of a .jsonl file, else a row (a .json
    list, a .csv or .parquet table, a saved dataset)."""
    kind = "line" if str(path).lower().endswith(".jsonl") else "row"
    return f"{path}: {kind} {number}"


def empty_file_error(path: str | Path) -> UserError:
    """The one line for an input file with no rows: nothing to do is a mistake, not a run."""
    return UserError(f"{path}: no rows; the file is empty.")


def _load_file(
    path: str,
    columns: dict[str, str],
    skip_invalid: bool,
    min_score_gap: float | None,
    reference_mode: bool,
    report: LoadReport,
    errors: list[str],
) -> None:
    fmt: str | None = None
    for row_number, row in read_rows(path):
        report.rows_read += 1
        try:
            if isinstance(row, RowError):
                raise row
            row = _rename(row, columns)
            fmt = fmt or detect_format(row)
            check_keys(row, fmt)
            example = parse_row(row, fmt, f"{path}:{row_number}", reference_mode)
            gap = score_gap(row)
        except RowError as error:
            if not skip_invalid:
                errors.append(f"{row_place(path, row_number)}: {error}")
            report.skipped[error.reason] += 1
            continue
        if min_score_gap is not None and gap is not None and gap < min_score_gap:
            report.skipped[f"score gap < {min_score_gap:g}"] += 1
            continue
        report.examples.append(example)
    report.formats[path] = fmt or "unknown"


def _rename(row: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    renamed = dict(row)
    for canonical, source_key in columns.items():
        if source_key in renamed:
            renamed[canonical] = renamed.pop(source_key)
    return renamed


def read_rows(path: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """Yield (row number, row) pairs; unparseable rows come back as `RowError`s."""
    local = Path(path)
    suffix = local.suffix.lower()
    if suffix in {".jsonl", ".json", ".parquet", ".csv"} and not local.is_file():
        raise DataError(f"{path}: no such file.")
    if local.is_file() and suffix == ".jsonl":
        yield from _read_jsonl(local)
    elif local.is_file() and suffix == ".json":
        yield from _read_json(local)
    elif local.is_file() and suffix in {".parquet", ".csv"}:
        yield from _read_with_datasets(path, builder=suffix[1:])
    elif local.is_file():
        raise DataError(
            f"{path}: unsupported file type {suffix!r}; use .jsonl, .json, .parquet or .csv."
        )
    else:
        yield from _read_with_datasets(path, builder=None)


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a leading byte-order mark is allowed), or an error naming the
    line that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        message = f"{path}: line {line}: not UTF-8 text (byte {error.start}); save it as UTF-8."
        raise DataError(message) from error


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    text = _read_text(path)
    for line_number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield line_number, RowError("invalid JSON", f"invalid JSON ({error.msg}).")
            continue
        yield line_number, _as_object(row)


def _read_json(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    try:
        rows = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path}: invalid JSON at line {error.lineno} ({error.msg}). A .json file must hold "
            "one list of objects; use .jsonl for one object per line."
        ) from error
    if not isinstance(rows, list):
        raise DataError(f"{path}: a .json file must hold one list of objects.")
    for index, row in enumerate(rows, start=1):
        yield index, _as_object(row)


def _as_object(row: Any) -> dict[str, Any] | RowError:
    if isinstance(row, dict):
        return row
    return RowError("wrong type", f"a row must be a JSON object, got {type(row).__name__}.")


def _read_with_datasets(
    path: str, builder: str | None
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    import datasets

    try:
        if builder is not None:
            table = datasets.load_dataset(builder, data_files=path, split="train")
        elif (Path(path) / "dataset_info.json").is_file():
            table = datasets.load_from_disk(path)
        else:
            table = datasets.load_dataset(path)
    except Exception as error:  # datasets raises many types; all mean "cannot read this"
        raise DataError(f"{path}: could not load it as a dataset ({error}).") from error
    if isinstance(table, datasets.DatasetDict):
        table = _one_split(path, table)
    yield from enumerate(table, start=1)


def _one_split(path: str, splits: Any) -> Any:
    """The split to read from a folder or hub dataset: `train`, or its only split (a benchmark
    downloaded with `hf download` has just `test`)."""
    if "train" in splits:
        return splits["train"]
    if len(splits) == 1:
        return next(iter(splits.values()))
    raise DataError(
        f"{path}: holds the splits {', '.join(splits)} and none is 'train'; pass the file of "
        "the split to use."
    )
