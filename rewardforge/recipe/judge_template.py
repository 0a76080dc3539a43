"""A judge's questions read from a template file: how a published judge (Prometheus 2,
Skywork-Critic) is asked, so that `rewardforge adopt --reward-format judge --judge-template`
saves them in its recipe and every command asks it the same way.

A template file is YAML (JSON is YAML too) whose keys are `JudgePrompt`'s fields: `pointwise`
and/or `pairwise` questions, `system`, the verdict words, `style` (verdict: read in one pass;
reasoning: written), `reply_prefix`, `verdict_pattern`, `grade_pattern` and `grades`; `name`
and `source` say where it comes from. The templates bundled with rewardforge are named by file
stem (`prometheus2-absolute`, `prometheus2-relative`, `skywork-critic`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from rewardforge.errors import UserError
from rewardforge.recipe.judge_prompt import JudgePrompt

BUNDLED = Path(__file__).with_name("judge_templates")
_NOTES = ("name", "source")  # keys that describe the template and ask nothing


def bundled_templates() -> list[str]:
    """The names of the judge templates that ship with rewardforge."""
    return sorted(path.stem for path in BUNDLED.glob("*.yaml"))


def load_judge_template(name_or_path: str | Path) -> JudgePrompt:
    """The `JudgePrompt` of a bundled template (by name) or of a template file."""
    path = Path(name_or_path)
    if not path.is_file():
        bundled = BUNDLED / f"{name_or_path}.yaml"
        if not bundled.is_file():
            raise UserError(
                f"--judge-template {name_or_path}: no such file, and not a bundled template "
                f"({', '.join(bundled_templates())})."
            )
        path = bundled
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML: {error}.") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: a judge template is a mapping of JudgePrompt fields to values.")
    fields = {field.name: field for field in dataclasses.fields(JudgePrompt)}
    unknown = sorted(set(values) - set(fields) - set(_NOTES))
    if unknown:
        raise UserError(
            f"{path}: unknown key(s) {', '.join(unknown)}; a judge template takes "
            f"{', '.join(fields)} (and {', '.join(_NOTES)})."
        )
    asked = {key: value for key, value in values.items() if key in fields}
    for key, value in asked.items():
        if key == "grades":
            if not (
                isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)
            ):
                raise UserError(f"{path}: grades must be two whole numbers, [lowest, highest].")
            asked[key] = tuple(value)
        elif value is not None and not isinstance(value, str):
            raise UserError(f"{path}: {key} must be text, got {value!r}.")
    if asked.get("style", "verdict") not in ("verdict", "reasoning"):
        raise UserError(f"{path}: style must be verdict or reasoning, not {asked['style']!r}.")
    asked.setdefault("pointwise", None)  # a template asks only the questions it names
    asked.setdefault("pairwise", None)
    judge = JudgePrompt(**asked)
    try:
        judge.check()
    except UserError as error:
        raise UserError(f"{path}: {error}") from None
    if judge.grade_pattern is not None and judge.style != "reasoning":
        raise UserError(f"{path}: a grade is written, so grade_pattern needs style: reasoning.")
    return judge
