"""The family registry is the one list of families: every place that names families derives
from it, and a family missing anywhere fails here."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardforge.adoption.config import AdoptSettings, RewardFormat, reward_format_setting
from rewardforge.cli import app
from rewardforge.config_fields import settings_from_sources
from rewardforge.recipe.families import (
    CONVERTED_FAMILIES,
    FAMILIES,
    FAMILY_NAMES,
    REWARD_FORMATS,
    WHOLE_TEXT_FAMILIES,
    family,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
TESTS = Path(__file__).resolve().parent
runner = CliRunner()


def test_family_names_are_unique_and_rewardforge_is_one():
    assert len(FAMILY_NAMES) == len(set(FAMILY_NAMES)) and "rewardforge" in FAMILY_NAMES


def test_reward_format_accepts_exactly_auto_and_every_family():
    assert set(typing.get_args(RewardFormat)) == {"auto", *FAMILY_NAMES}
    assert ("auto", *FAMILY_NAMES) == REWARD_FORMATS


def test_the_help_text_names_every_family():
    help_text = reward_format_setting().metadata["help"]
    for name in FAMILY_NAMES:
        assert f" {name}" in help_text, name


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_is_accepted_by_the_settings(name):
    """`--reward-format trl-prm` was refused by score and adopt: two lists had drifted."""
    overrides = {"source": "in", "output": "out", "reward_format": name}
    assert settings_from_sources(AdoptSettings, None, overrides)["reward_format"] == name


def test_score_accepts_trl_prm_on_the_command_line(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"prompt": "p", "response": "r"}\n')
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(tmp_path / "nope"),
            "--input",
            str(tmp_path / "rows.jsonl"),
            "--output",
            str(tmp_path / "out.jsonl"),
            "--reward-format",
            "trl-prm",
        ],
    )
    # the flag passes; what stops the run is the missing model, said in one line
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "nope: no such model directory" in result.output


def test_derived_lists_come_from_the_records():
    assert CONVERTED_FAMILIES == ("polar", "internlm2-reward")
    assert set(WHOLE_TEXT_FAMILIES) == {"trl", "skywork", "openrlhf", "polar", "internlm2-reward"}
    assert family("trl-prm").kind == "process" and family("trl-prm").classifier == "token"
    assert family("openrlhf").head_config_key == "value_head_prefix"


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_is_documented_and_tested(name):
    """docs/reward-models.md has a row for it, and some test names it."""
    assert f"| `{name}` |" in (DOCS / "reward-models.md").read_text(encoding="utf-8")
    tests = "".join(
        p.read_text(encoding="utf-8")
        for p in TESTS.glob("test_*.py")
        if p.name != Path(__file__).name
    )
    assert f'"{name}"' in tests


def test_every_record_but_the_default_detects_or_is_named():
    detected = [record.name for record in FAMILIES if record.detect is not None]
    assert detected[-1] == "trl"  # the default comes last: any native sequence classifier
    assert "rewardforge" not in detected  # read from its recipe before detection


def test_a_family_the_registry_does_not_know_is_one_line(tmp_path):
    from rewardforge.adoption.resolve import resolve_reward_model
    from rewardforge.errors import UserError

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match=r"--reward-format must be one of auto, rewardforge, "):
        resolve_reward_model(tmp_path, reward_format="armorm")
