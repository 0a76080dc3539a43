"""The files an evaluation writes into its report folder: JSON, JSON lines, the folder itself."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def report_directory(report_dir: str | Path) -> Path:
    """The report folder, made if it is not there."""
    directory = Path(report_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def write_json(path: Path, value: Any) -> None:
    """`value` as indented UTF-8 JSON (Chinese text stays readable)."""
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """One JSON object a line."""
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
