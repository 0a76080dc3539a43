"""What a model folder holds, as family detection reads it: its config.json, its tokenizer
config, and the facts read from them (an encoder, shipped code, a token classifier, InternLM2)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardforge.recipe.model_types import is_encoder_config

INTERNLM2_ARCHITECTURES = ("InternLM2ForRewardModel",)


@dataclass(frozen=True)
class ModelFolder:
    """What detection reads of a model folder: its path and its config.json."""

    path: Path
    config: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> ModelFolder:
        return cls(path, read_json(path / "config.json"))

    @property
    def architectures(self) -> list[str]:
        return list(self.config.get("architectures") or [])

    @property
    def is_encoder(self) -> bool:
        return is_encoder_config(self.config.get("model_type", ""))

    @property
    def ships_code(self) -> bool:
        """Whether the model exists only as Python code shipped in the folder (auto_map)."""
        return bool(self.config.get("auto_map"))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file of a model folder as a dict ({} when the folder has none)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def is_token_classifier(config: dict[str, Any]) -> bool:
    """A transformers token classifier with two labels: how TRL's PRMTrainer saves a PRM."""
    architectures = config.get("architectures") or []
    two_labels = len(config.get("id2label") or {0: "LABEL_0", 1: "LABEL_1"}) == 2  # the default
    return two_labels and any(name.endswith("ForTokenClassification") for name in architectures)


def is_internlm2(folder: ModelFolder) -> bool:
    return folder.config.get("model_type") == "internlm2" or bool(
        set(folder.architectures) & set(INTERNLM2_ARCHITECTURES)
    )


def internlm2_reward_token_name(folder: ModelFolder) -> str | None:
    """POLAR names its reward token id 92527 otherwise than `<|reward|>` (which is 92397 there);
    the internlm2-*-reward models name their reward token itself `<|reward|>`."""
    added = read_json(folder.path / "tokenizer_config.json").get("added_tokens_decoder", {})
    names = {int(index): token.get("content") for index, token in added.items()}
    return names.get(folder.config.get("reward_token_id"))
