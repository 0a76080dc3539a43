"""The registry of reward-model families trained elsewhere: how to tell them apart from what a
folder holds, and the scoring recipe each one's own tooling implies.

As RewardBench keeps its registry of known models beside one default path, each family here is
a name, a one-line account of how it scores, and the facts of its recipe; `--reward-format`
names one when detection cannot tell.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

from transformers import PreTrainedTokenizerBase

from rewardforge.errors import UserError
from rewardforge.forward.architecture import is_encoder_config
from rewardforge.recipe import RECIPE_FILE, ScoringRecipe
from rewardforge.recipe.scoring_recipe import Family

# The formats `--reward-format` accepts; `auto` reads the folder.
REWARD_FORMATS = ("auto", *get_args(Family))
FOREIGN_MAX_LENGTH = 4096  # tokens a prompt + response may take when a family sets no limit
POLAR_MAX_LENGTH = 16384  # POLAR's client: the whole input ...
POLAR_MAX_RESPONSE_LENGTH = 4096  # ... and each answer
INTERNLM2_ARCHITECTURES = ("InternLM2ForRewardModel",)
TRL_PRM_SEPARATOR = "\n"  # TRL's PRMConfig.step_separator default; TRL does not save it


def is_token_classifier(config: dict[str, Any]) -> bool:
    """A transformers token classifier with two labels: how TRL's PRMTrainer saves a PRM."""
    architectures = config.get("architectures") or []
    two_labels = len(config.get("id2label") or {0: "LABEL_0", 1: "LABEL_1"}) == 2  # the default
    return two_labels and any(name.endswith("ForTokenClassification") for name in architectures)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file of a model folder as a dict ({} when the folder has none)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def detect_family(folder: Path) -> str:
    """The family of a reward model folder that has no rewardforge recipe, from its files."""
    config = read_json(folder / "config.json")
    architectures = config.get("architectures") or []
    if config.get("model_type") == "internlm2" or set(architectures) & set(INTERNLM2_ARCHITECTURES):
        return internlm2_family(folder)
    if "value_head_prefix" in config:
        return "openrlhf"
    if config.get("auto_map"):
        raise unsupported(folder, config)
    if is_token_classifier(config):
        return "trl-prm"
    if is_encoder_config(config.get("model_type", "")):
        return "text-pair"
    if "skywork-reward" in str(config.get("_name_or_path", "")).lower():
        return "skywork"
    return "trl"


def is_reward_model_folder(folder: Path) -> bool:
    """Whether `folder` holds a reward model (ours, or one of a known family) rather than a
    plain backbone: a rewardforge recipe, a one-output sequence classifier, a two-label token
    classifier (a TRL PRM), an OpenRLHF value head or an InternLM2 reward model."""
    if not (folder / "config.json").is_file():
        return False
    if (folder / RECIPE_FILE).is_file():
        return True
    config = read_json(folder / "config.json")
    architectures = config.get("architectures") or []
    one_output = len(config.get("id2label") or {"0": "LABEL_0"}) == 1
    return (
        "value_head_prefix" in config
        or bool(set(architectures) & set(INTERNLM2_ARCHITECTURES))
        or is_token_classifier(config)
        or (
            one_output and any(name.endswith("ForSequenceClassification") for name in architectures)
        )
    )


def internlm2_family(folder: Path) -> str:
    """POLAR names id 92397 `<|reward|>` and reads the score at its reward token id; the
    internlm2-*-reward models name their reward token itself `<|reward|>`."""
    config = read_json(folder / "config.json")
    names = {
        int(index): token.get("content")
        for index, token in read_json(folder / "tokenizer_config.json")
        .get("added_tokens_decoder", {})
        .items()
    }
    reward_token = config.get("reward_token_id")
    return "internlm2-reward" if names.get(reward_token) == "<|reward|>" else "polar"


def unsupported(folder: Path, config: dict[str, Any]) -> UserError:
    """The one-line refusal of a folder whose model exists only as its own shipped code."""
    kind = ", ".join(config.get("architectures") or []) or config.get("model_type", "unknown")
    return UserError(
        f"{folder} is a {kind} model defined by Python code shipped in the folder (auto_map). "
        "rewardforge never runs shipped code, and no family it knows describes this model (trl, "
        "trl-prm, skywork, openrlhf, text-pair, polar, internlm2-reward), so it cannot be scored "
        "here. "
        "If it is a transformers sequence classifier after all, name its family with "
        "--reward-format trl."
    )


def foreign_recipe(
    family: str,
    folder: Path,
    tokenizer: PreTrainedTokenizerBase,
    template: str | None = None,
) -> ScoringRecipe:
    """The recipe under which a `family` model scores as its own tooling scores it."""
    config = read_json(folder / "config.json")
    chat = "chat" if tokenizer.chat_template else "plain"
    if family == "text-pair":
        return ScoringRecipe("pair", FOREIGN_MAX_LENGTH, reward_token="first", family="text-pair")
    if family == "polar":
        return ScoringRecipe(
            "plain",
            POLAR_MAX_LENGTH,
            reference_mode=True,
            split_token="<|reward|>",
            reward_marker=tokenizer.convert_ids_to_tokens(config["reward_token_id"]),
            family="polar",
            max_response_length=POLAR_MAX_RESPONSE_LENGTH,
        )
    if family == "trl-prm":
        if is_encoder_config(config.get("model_type", "")):
            raise UserError(
                f"{folder}: a token-classifier PRM on an encoder is not supported; rewardforge "
                "reads TRL-trained PRMs on decoders (Llama, Qwen2, Mistral, ...)."
            )
        return ScoringRecipe(
            "plain",
            FOREIGN_MAX_LENGTH,
            family=family,
            kind="process",
            step_separator=TRL_PRM_SEPARATOR,
        )
    if family == "internlm2-reward":
        if not tokenizer.chat_template:
            raise UserError(f"{folder}: an internlm2 reward model needs its chat template.")
        return ScoringRecipe(
            "chat", FOREIGN_MAX_LENGTH, family=family, reward_token_id=config["reward_token_id"]
        )
    recipe = ScoringRecipe(template or chat, FOREIGN_MAX_LENGTH, family=family)
    if recipe.template == "chat" and not tokenizer.chat_template:
        raise UserError(f"--template chat: {folder} has no chat template; use --template plain.")
    if family == "trl":
        pad = config.get("pad_token_id")
        pad = pad if pad is not None else tokenizer.pad_token_id
        return replace(recipe, trailing_pad_id=pad)
    if family == "openrlhf" and "mean" in config and "std" in config:
        return recipe.with_reward_stats(float(config["mean"]), float(config["std"]))
    return recipe


def describe(recipe: ScoringRecipe) -> str:
    """How a model will score, in one line."""
    chat = recipe.template == "chat"
    if recipe.family == "trl" and chat:
        return "TRL-trained chat RM: chat template, no generation prompt, reward at the last token"
    if recipe.family == "trl":
        return (
            "TRL-trained plain-text RM: prompt + response + EOS with the tokenizer's special "
            "tokens, reward at the last token that is not padding"
        )
    if recipe.family == "trl-prm":
        return (
            "TRL-trained PRM (a two-label token classifier): BOS + prompt + each step and "
            f"{recipe.step_separator!r} tokenized apart, P(correct) read at each separator"
        )
    if recipe.family == "skywork":
        return (
            "Skywork-style chat RM: chat template, the text's leading BOS replaced by the "
            "tokenizer's own (one BOS), reward at the last token"
        )
    if recipe.family == "openrlhf":
        text = "chat template" if chat else "prompt + response"
        stats = f", mean {recipe.reward_mean:g} and std {recipe.reward_std:g} for --normalize"
        return (
            f'OpenRLHF RM: ({text}).rstrip("\\n") + " " + EOS, no added special tokens, reward '
            f"at the last token{stats if recipe.reward_std != 1.0 or recipe.reward_mean else ''}"
        )
    if recipe.family == "text-pair":
        return "encoder RM: (prompt, response) as a text pair, reward from its classifier"
    if recipe.family == "polar":
        return (
            'POLAR reference-based RM: prompt + "\\n" + reference + <|reward|> + prompt + "\\n" '
            f"+ output + {recipe.reward_marker}, BOS first, with its client's truncation"
        )
    if recipe.family == "internlm2-reward":
        return "InternLM2 reward model: chat template, then its reward token, read there"
    return "rewardforge RM: its saved recipe"
