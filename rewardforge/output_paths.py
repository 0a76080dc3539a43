"""Output paths checked before any work: a command that would score a corpus or train a model
and then fail to write it is refused first, in one line."""

from __future__ import annotations

from pathlib import Path

from rewardforge.errors import UserError


def check_output_file(path: str | Path, flag: str) -> None:
    """`path` can be written as a file: not a folder, and under no file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give the path of a file to write.")
    _refuse_a_file_above(path, flag)


def check_output_folder(path: str | Path, flag: str) -> None:
    """`path` can be made or used as a folder: not a file, and under no file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file; give the path of a folder.")
    _refuse_a_file_above(path, flag)


def _refuse_a_file_above(path: Path, flag: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} {path}: {parent} is a file, not a folder.")
            return
