"""The `rewardforge` command line: a thin layer that parses flags, calls the API and prints."""

from rewardforge.cli.commands import app, main

__all__ = ["app", "main"]
