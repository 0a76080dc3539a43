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
    ("error", "line"),
    [
        (UserError("--lr must be above 0, got 0.0."), "--lr must be above 0, got 0.0."),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "pairs.jsonl"),
            "pairs.jsonl: no such file or directory.",
        ),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "runs"), "runs: is a directory."),
        (
            PermissionError(errno.EACCES, "Permission denied", "/root/rm"),
            "/root/rm: permission denied.",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device"),
            "no space left on device; free some space and run again.",
        ),
        (
            OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b"),
            None,  # not a user's mistake: checked below to stay a bug
        ),
        (
            OSError("runs/empty does not appear to have a file named config.json."),
            "runs/empty does not appear to have a file named config.json.",  # transformers
        ),
        (
            ModuleNotFoundError("No module named 'bitsandbytes'"),
            "No module named 'bitsandbytes'",
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_a_users_mistake_is_one_line_and_exit_2(error, line, capsys):
    """Python's `[Errno 13] Permission denied: '/root/rm'` reads as the path and the problem."""

    def fail():
        raise error

    if line is None:
        assert not is_users_mistake(error)
        return
    with pytest.raises(typer.Exit) as ended:
        or_exit(fail)
    assert ended.value.exit_code == 2
    assert capsys.readouterr().err.strip() == f"error: {line}"


def test_a_rename_names_both_paths(capsys):
    def fail():
        raise PermissionError(errno.EACCES, "Permission denied", "out/.saving", None, "out/model")

    with pytest.raises(typer.Exit):
        or_exit(fail)
    assert capsys.readouterr().err.strip() == (
        "error: out/.saving -> out/model: permission denied."
    )


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


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train", "--lr", "abc"], "error: Invalid value for '--lr': "),
        (["train", "--no-such-flag"], "error: No such option: --no-such-flag"),
        (["traim"], "error: No such command 'traim'. Did you mean 'train'?"),
        (["train", "--kind", "xyz"], "error: Invalid value for '--kind': 'xyz' is not one of "),
    ],
)
def test_a_usage_mistake_is_one_line_and_exit_2(arguments, message):
    """Click's five-line usage box became the one line every other mistake gets."""
    import subprocess
    import sys
    from pathlib import Path

    command = [str(Path(sys.executable).parent / "rewardforge"), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and len(done.stderr.strip().splitlines()) == 1
    assert "-h lists the" in done.stderr and done.stdout == ""


def test_a_missing_absolute_model_path_is_no_such_model_directory(tmp_path):
    """`/nonexistent` has one slash, as a hub id has: it was sent to the hub client."""
    from typer.testing import CliRunner

    from rewardforge.cli import app

    data = tmp_path / "dev.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    result = CliRunner().invoke(app, ["eval", "--model", "/nonexistent", "--data", str(data)])
    assert result.exit_code == 2
    assert result.output.strip() == "error: /nonexistent: no such model directory."


@pytest.mark.parametrize("command", [[], ["train"], ["score"]])
def test_h_shows_the_help_the_errors_point_to(command):
    """Every usage error says `rewardforge train -h lists the flags`; -h has to work."""
    from typer.testing import CliRunner

    from rewardforge.cli import app

    result = CliRunner().invoke(app, [*command, "-h"])
    assert result.exit_code == 0, result.output
    assert f"Usage: root {' '.join(command)}".strip() in result.output
