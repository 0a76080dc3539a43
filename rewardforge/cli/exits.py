"""How a command ends when something goes wrong: a user's mistake is one red line and exit code
2; a bug is exit code 1 with its traceback written to a crash report whose path is printed.
`REWARDFORGE_DEBUG=1` re-raises either, for a debugger."""

from __future__ import annotations

import datetime
import errno
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer

from rewardforge.errors import UserError

T = TypeVar("T")
# OSErrors that are about the user's files or machine, which the user fixes: a path that is
# missing, of the wrong kind or not allowed, a full disk. transformers and huggingface_hub raise
# a bare OSError, with no errno, for a folder that holds no model. Other OSErrors (a broken pipe,
# a refused connection, an I/O error) keep their traceback.
_PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)
_MACHINE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def or_exit(action: Callable[[], T]) -> T:
    """Run `action`; a user's mistake exits with one line, a bug with a crash report."""
    try:
        return action()
    except Exception as error:
        if os.environ.get("REWARDFORGE_DEBUG"):
            raise
        if is_users_mistake(error):
            typer.secho(f"error: {users_message(error)}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=2) from error
        report = write_crash_report()
        typer.secho(
            f"internal error: {type(error).__name__}: {error}\n"
            f"This is a bug in rewardforge, not a problem with your input. The full traceback "
            f"is in {report}; please include it when you report the bug.",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=1) from error


def is_users_mistake(error: BaseException) -> bool:
    """Whether `error` is one the user fixes (input, flags, files, a missing package)."""
    if isinstance(error, (UserError, ModuleNotFoundError, *_PATH_ERRORS)):
        return True
    if isinstance(error, OSError):
        return error.errno in _MACHINE_ERRNOS or (type(error) is OSError and error.errno is None)
    return False


def users_message(error: BaseException) -> str:
    """The one line for a user's mistake. An OSError with an errno reads as the file and the
    problem, `out.jsonl: permission denied.`, rather than Python's `[Errno 13] Permission
    denied: 'out.jsonl'`."""
    if not isinstance(error, OSError) or error.errno is None or not error.strerror:
        return str(error)
    problem = error.strerror[0].lower() + error.strerror[1:]
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        problem += "; free some space and run again"
    if error.filename is None:
        return f"{problem}."
    if error.filename2 is not None:
        return f"{error.filename} -> {error.filename2}: {problem}."
    return f"{error.filename}: {problem}."


def write_crash_report() -> Path:
    """Write the traceback being handled to the cache's crash-reports folder; return its path."""
    from rewardforge.models.backbones import cache_dir

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    text = f"rewardforge {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}"
    for folder in (cache_dir() / "crash-reports", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            report = folder / f"rewardforge-crash-{stamp}-{os.getpid()}.txt"
            report.write_text(text, encoding="utf-8")
            return report
        except OSError:
            continue
    sys.stderr.write(text)  # nowhere writable: print the traceback instead
    return Path("<stderr>")
