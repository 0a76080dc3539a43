"""JSONL files that long runs append to as they go, so that a rerun resumes where one stopped.

Rows are written whole and flushed; a last line that a crash cut short is dropped on reading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any


def read_appended_rows(path: Path) -> list[dict[str, Any]]:
    """The complete rows of `path` (none if it does not exist); a cut last line is removed."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        path.write_text(text, encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def append_rows(stream: IO[str], rows: list[dict[str, Any]]) -> None:
    """Write rows in one write and flush, so that a crash keeps or loses them whole."""
    stream.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    stream.flush()
