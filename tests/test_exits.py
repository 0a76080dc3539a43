"""How a command ends: a user's mistake (input, paths, a full disk, a folder with no model) is one
line and exit code 2; anything else, an OSError included, is a bug with a crash report."""

from __future__ import annotations

import errno

import pytest
import typer

from rewardforge.api_key import api_key_from_env
from rewardforge.cli.exits import is_users_mistake, or_exit
from rewardforge.errors import UserError


@pytest.mark.parametrize(
    "error",
    [
        UserError("--lr must be above 0, got 0.0."),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "pairs.jsonl"),
        IsADirectoryError(errno.EISDIR, "Is a directory", "runs"),
        PermissionError(errno.EACCES, "Permission denied", "/root/rm"),
        OSError(errno.ENOSPC, "No space left on device"),
        OSError("runs/empty does not appear to have a file named config.json."),  # transformers
        ModuleNotFoundError("No module named 'bitsandbytes'"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_users_mistake_is_one_line_and_exit_2(error, capsys):
    def fail():
        raise error

    with pytest.raises(typer.Exit) as ended:
        or_exit(fail)
    assert ended.value.exit_code == 2
    assert capsys.readouterr().err.strip() == f"error: {error}"


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        BrokenPipeError(errno.EPIPE, "Broken pipe"),
        OSError(errno.EIO, "Input/output error"),
        RuntimeError("expected mat1 and mat2 to have the same dtype"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_other_errors_are_bugs_with_a_crash_report(error, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path))

    def fail():
        raise error

    assert not is_users_mistake(error)
    with pytest.raises(typer.Exit) as ended:
        or_exit(fail)
    assert ended.value.exit_code == 1
    message = capsys.readouterr().err
    assert message.startswith(f"internal error: {type(error).__name__}")
    (report,) = (tmp_path / "crash-reports").glob("rewardforge-crash-*.txt")
    assert "Traceback (most recent call last)" in report.read_text(encoding="utf-8")


def test_debug_re_raises(monkeypatch):
    monkeypatch.setenv("REWARDFORGE_DEBUG", "1")

    def fail():
        raise UserError("a mistake")

    with pytest.raises(UserError, match="a mistake"):
        or_exit(fail)


def test_an_api_key_comes_from_its_variable(monkeypatch):
    monkeypatch.setenv("RM_KEY", "s3cret")
    assert api_key_from_env("RM_KEY", "--api-key-env") == "s3cret"
    monkeypatch.setenv("RM_KEY", "")
    with pytest.raises(UserError, match="^--reward-api-key-env RM_KEY: that environment variable"):
        api_key_from_env("RM_KEY", "--reward-api-key-env")
    monkeypatch.delenv("RM_KEY")
    with pytest.raises(UserError, match="empty or unset"):
        api_key_from_env("RM_KEY", "--api-key-env")
