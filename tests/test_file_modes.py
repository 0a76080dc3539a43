"""Saved weights get the permission bits of the folder's other files (safetensors writes 0600),
so that another user's server on a shared machine can read a model it can read the config of."""

from __future__ import annotations

import stat

from rewardforge.adoption.resolve import adopt


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_trained_model_is_readable_as_its_config(tiny_reward_model_dir):
    weights = list(tiny_reward_model_dir.glob("*.safetensors"))
    assert weights and mode(tiny_reward_model_dir / "config.json") & 0o044
    assert {mode(path) for path in weights} == {mode(tiny_reward_model_dir / "config.json")}


def test_an_adopted_model_is_readable_as_its_config(tiny_reward_model_dir, tmp_path):
    output = adopt(tiny_reward_model_dir, tmp_path / "adopted").folder
    weights = list(output.glob("*.safetensors"))
    assert weights and {mode(path) for path in weights} == {mode(output / "config.json")}
