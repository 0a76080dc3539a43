"""Settings declared once: a dataclass field that carries its command-line help.

A config dataclass (TrainConfig, RLHFConfig) declares each setting with `setting(...)`; the CLI
turns every field into a flag with that help and default, and `--config` YAML files use the
same names. A new option is written in one place.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from rewardforge.errors import UserError


def setting(
    default: Any = None,
    help: str = "",
    *,
    factory: Any = None,
    shown: str | None = None,
    flags: tuple[str, ...] = (),
) -> Any:
    """A dataclass field with its help text.

    `shown` replaces the default in the help where the value alone would not say it (None as
    "off", say); `flags` overrides the flag names (a --on/--off pair for a boolean).
    """
    metadata = {"help": help, "shown": shown, "flags": flags}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def require(command: str, **values: object) -> None:
    """A one-line error naming the flags of `command` that were not given."""
    missing = [f"--{name.replace('_', '-')}" for name, value in values.items() if value in ("", [])]
    if missing:
        raise UserError(f"{command} needs {' and '.join(missing)}; see `rewardforge {command} -h`.")


def help_text(spec: dataclasses.Field) -> str:
    """A setting's help, ending with its default."""
    shown = spec.metadata["shown"]
    if shown is None:
        shown = spec.default
        if isinstance(shown, bool):
            shown = "on" if shown else "off"
        elif isinstance(shown, float):
            shown = f"{shown:g}"
        elif isinstance(shown, str) and not shown.isprintable():
            shown = repr(shown)  # a newline separator reads as '\n\n'
    return f"{spec.metadata['help']} (default: {shown})"


def settings_from_sources(
    config_class: type, config_file: str | Path | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    """Keyword arguments for `config_class`: the YAML file's values, then the overrides that
    are not None, each validated against its field's type (a one-line error otherwise)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_read_yaml(Path(config_file)))
    values.update({key: value for key, value in overrides.items() if value is not None})
    types = typing.get_type_hints(config_class)
    unknown = sorted(set(values) - {spec.name for spec in dataclasses.fields(config_class)})
    if unknown:
        raise UserError(
            f"Unknown setting(s) {', '.join(unknown)}"
            + (f" in {config_file}" if config_file else "")
            + ". See the command's --help for the names."
        )
    for key in ("data", "eval_data"):  # a single path where a list is expected
        if isinstance(values.get(key), str) and typing.get_origin(types[key]) is list:
            values[key] = [values[key]]
    where = f"{config_file}: " if config_file else ""
    return {key: _checked(key, value, types[key], where) for key, value in values.items()}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: no such file." if not path.exists() else f"{path}: not a file.")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise UserError(f"{path}: not valid YAML{where}: {problem}.") from error
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: expected a mapping of flag names to values.")
    return {str(key).replace("-", "_"): value for key, value in loaded.items()}


def _checked(name: str, value: Any, annotation: Any, where: str) -> Any:
    """`value` validated as the field's type by pydantic, or a one-line error naming the
    setting. Numbers written as text are read as numbers (YAML reads `1e-4`, without a dot,
    as text); true and false are not numbers."""
    wrong = f"{where}{flag_name(name)} must be {_described(annotation)}, got {value!r}."
    if isinstance(value, bool) and not _admits(annotation, bool):
        raise UserError(wrong)
    try:
        return TypeAdapter(annotation).validate_python(value)
    except ValidationError:
        raise UserError(wrong) from None


def _admits(annotation: Any, kind: type) -> bool:
    """Whether `annotation` is `kind` or a union with it (`bool | None`)."""
    return annotation is kind or kind in typing.get_args(annotation)


def _described(annotation: Any) -> str:
    """A type in words for an error message: `int | None` is 'a whole number'."""
    kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(kinds) == 1:
        annotation = kinds[0]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(annotation))
    if origin is list:
        return "a list of strings" if typing.get_args(annotation) == (str,) else "a list"
    if origin is dict:
        return "a mapping"
    names = {
        float: "a number",
        int: "a whole number",
        bool: "true or false",
        str: "text",
        Path: "a path",
    }
    return names.get(annotation, f"of type {annotation}")


def flag_name(name: str) -> str:
    """A setting's flag name: `max_length` is `max-length`."""
    return name.replace("_", "-")
