"""Flags built from config dataclasses: one `--flag` per field, with its help and type, and a
`--config FILE` YAML whose keys the flags override."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardforge.cli.exits import or_exit
from rewardforge.config_fields import help_text, settings_from_sources

_CONFIG_FILE = inspect.Parameter(
    "config",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        Path | None, typer.Option(help="YAML file with any of these settings; flags win over it.")
    ],
)
# Settings whose flag takes text that the command parses (the dict and list that YAML gives).
_FLAG_TYPES: dict[str, Any] = {"columns": str, "lora_target_modules": str}


def config_command(
    app: typer.Typer, name: str, config_class: type, panel: str
) -> Callable[[Callable], Callable]:
    """Register a command of `app` (in the help panel `panel`) taking `--config FILE` and one
    flag per field of `config_class`."""

    def register(command: Callable) -> Callable:
        command.__signature__ = _signature(config_class, _CONFIG_FILE)
        return app.command(name, rich_help_panel=panel)(command)

    return register


def _signature(config_class: type, *leading: inspect.Parameter) -> inspect.Signature:
    """A command's flags: `leading` ones, then one per field of `config_class` with its help.

    Every flag defaults to None, meaning 'not given', so that a --config YAML value is not
    overridden by a default.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    types = typing.get_type_hints(config_class)
    parameters = list(leading)
    for spec in dataclasses.fields(config_class):
        kind = _FLAG_TYPES.get(spec.name, types[spec.name])
        option = typer.Option(*spec.metadata["flags"], help=help_text(spec), show_default=False)
        annotation = Annotated[kind | None, option]
        parameters.append(
            inspect.Parameter(spec.name, keyword, default=None, annotation=annotation)
        )
    return inspect.Signature(parameters)


def settings(config_class: type, config_file: Path | None, flags: dict[str, Any]) -> Any:
    """The command's config: YAML file, then the flags given; a bad value exits with one line."""
    return or_exit(lambda: config_class(**settings_from_sources(config_class, config_file, flags)))


def parse_columns(text: str | None) -> dict[str, str] | None:
    """`--columns prompt=question,chosen=good` as a mapping of canonical to source keys."""
    if not text:
        return None
    mapping = {}
    for item in text.split(","):
        canonical, sep, source = item.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise typer.BadParameter(
                f"--columns expects canonical=source pairs like prompt=question, got {item!r}."
            )
        mapping[canonical.strip()] = source.strip()
    return mapping
