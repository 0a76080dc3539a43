"""The registry of reward-model families: one record each, and every list of families derives
from it (`--reward-format`'s choices and help, which families are converted, which tokenize
their whole text, which are process reward models).

As RewardBench keeps its registry of known models beside one default path, a record says how a
family is told apart from what its folder holds, the recipe its own tooling implies, the line
that says how it scores, where its reward head is, whether its weights are converted once to
native classes, and whether it gives a reward per response or per step. Adding a family is one
record here (plus its text rule in `recipe/foreign.py` when it tokenizes text its own way) and
its tests; `tests/test_family_registry.py` fails if a family is missing anywhere.

This module imports neither torch nor transformers at load time: the CLI reads it to build its
flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rewardforge.errors import UserError
from rewardforge.recipe.judge_prompt import JudgePrompt
from rewardforge.recipe.model_folder import (
    INTERNLM2_ARCHITECTURES,
    ModelFolder,
    internlm2_reward_token_name,
    is_internlm2,
    is_token_classifier,
)
from rewardforge.recipe.scoring_recipe import RECIPE_FILE, ScoringRecipe

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

FOREIGN_MAX_LENGTH = 4096  # tokens a prompt + response may take when a family sets no limit
POLAR_MAX_LENGTH = 16384  # POLAR's client: the whole input ...
POLAR_MAX_RESPONSE_LENGTH = 4096  # ... and each answer
TRL_PRM_SEPARATOR = "\n"  # TRL's PRMConfig.step_separator default; TRL does not save it


@dataclass(frozen=True)
class FamilyRecord:
    """One family of reward models.

    `detect` tells the family from a folder without a rewardforge recipe (records are tried in
    registry order; None: only named by `--reward-format`). `recipe` builds the scoring recipe
    its tooling implies (`template` is the user's `--template`, or None). `summary` is the one
    line that says how it scores. `classifier`: a one-output sequence classifier, or a
    two-label token classifier (the reward is P(label 1)). `head_config_key` names the config
    entry that holds the head's weight prefix, where it is not the classifier's own.
    `whole_text`: its tooling tokenizes the whole formatted text at once (`recipe/foreign.py`)
    rather than prompt and response apart. `converted`: its weights are converted once to
    native transformers classes (`adoption/internlm2.py`).
    """

    name: str
    summary: Callable[[ScoringRecipe], str]
    recipe: Callable[[ModelFolder, PreTrainedTokenizerBase, str | None], ScoringRecipe]
    detect: Callable[[ModelFolder], bool] | None = None
    kind: Literal["outcome", "process"] = "outcome"
    classifier: Literal["sequence", "token"] = "sequence"
    whole_text: bool = False
    converted: bool = False
    head_config_key: str | None = None


def _template(folder: ModelFolder, tokenizer: PreTrainedTokenizerBase, template: str | None):
    """The user's --template, else chat when the tokenizer has a chat template."""
    chosen = template or ("chat" if tokenizer.chat_template else "plain")
    if chosen == "chat" and not tokenizer.chat_template:
        raise UserError(
            f"--template chat: {folder.path} has no chat template; use --template plain."
        )
    return chosen


def _rewardforge_recipe(folder, tokenizer, template):
    return ScoringRecipe.load(folder.path)


def _trl_recipe(folder, tokenizer, template):
    pad = folder.config.get("pad_token_id")
    pad = pad if pad is not None else tokenizer.pad_token_id
    chosen = _template(folder, tokenizer, template)
    return ScoringRecipe(chosen, FOREIGN_MAX_LENGTH, family="trl", trailing_pad_id=pad)


def _trl_summary(recipe):
    if recipe.template == "chat":
        return "TRL-trained chat RM: chat template, no generation prompt, reward at the last token"
    return (
        "TRL-trained plain-text RM: prompt + response + EOS with the tokenizer's special "
        "tokens, reward at the last token that is not padding"
    )


def _trl_prm_recipe(folder, tokenizer, template):
    if folder.is_encoder:
        raise UserError(
            f"{folder.path}: a token-classifier PRM on an encoder is not supported; rewardforge "
            "reads TRL-trained PRMs on decoders (Llama, Qwen2, Mistral, GPT-2, ...)."
        )
    return ScoringRecipe(
        "plain",
        FOREIGN_MAX_LENGTH,
        family="trl-prm",
        kind="process",
        step_separator=TRL_PRM_SEPARATOR,
    )


def _skywork_recipe(folder, tokenizer, template):
    chosen = _template(folder, tokenizer, template)
    return ScoringRecipe(chosen, FOREIGN_MAX_LENGTH, family="skywork")


def _openrlhf_recipe(folder, tokenizer, template):
    chosen = _template(folder, tokenizer, template)
    recipe = ScoringRecipe(chosen, FOREIGN_MAX_LENGTH, family="openrlhf")
    if "mean" in folder.config and "std" in folder.config:
        return recipe.with_reward_stats(float(folder.config["mean"]), float(folder.config["std"]))
    return recipe


def _openrlhf_summary(recipe):
    text = "chat template" if recipe.template == "chat" else "prompt + response"
    stats = f", mean {recipe.reward_mean:g} and std {recipe.reward_std:g} for --normalize"
    shown = recipe.reward_std != 1.0 or recipe.reward_mean
    return (
        f'OpenRLHF RM: ({text}).rstrip("\\n") + " " + EOS, no added special tokens, reward '
        f"at the last token{stats if shown else ''}"
    )


def _text_pair_recipe(folder, tokenizer, template):
    return ScoringRecipe("pair", FOREIGN_MAX_LENGTH, reward_token="first", family="text-pair")


def _polar_recipe(folder, tokenizer, template):
    return ScoringRecipe(
        "plain",
        POLAR_MAX_LENGTH,
        reference_mode=True,
        split_token="<|reward|>",
        reward_marker=tokenizer.convert_ids_to_tokens(folder.config["reward_token_id"]),
        family="polar",
        max_response_length=POLAR_MAX_RESPONSE_LENGTH,
    )


def _internlm2_reward_recipe(folder, tokenizer, template):
    if not tokenizer.chat_template:
        raise UserError(f"{folder.path}: an internlm2 reward model needs its chat template.")
    token = folder.config["reward_token_id"]
    return ScoringRecipe(
        "chat", FOREIGN_MAX_LENGTH, family="internlm2-reward", reward_token_id=token
    )


def _judge_recipe(folder, tokenizer, template):
    if folder.is_encoder:
        raise UserError(
            f"{folder.path} is an encoder; a judge is a language model that answers in words."
        )
    chosen = _template(folder, tokenizer, template)
    return ScoringRecipe(chosen, FOREIGN_MAX_LENGTH, family="judge", judge=JudgePrompt())


def _judge_summary(recipe):
    judge = recipe.judge
    if judge is None or judge.style == "verdict":
        return (
            "language model as a verdict judge: its question through the "
            f"{'chat template' if recipe.template == 'chat' else 'plain text'}, the reward read "
            "from its verdict words' logits at the start of its reply, one pass"
        )
    kind = "grades each answer" if judge.grades_answers else "compares two answers"
    return f"language model as a reasoning judge: {kind} in writing, its verdicts parsed"


def _native(folder: ModelFolder) -> bool:
    return not folder.ships_code


FAMILIES: tuple[FamilyRecord, ...] = (
    FamilyRecord(
        "rewardforge",
        summary=lambda recipe: "rewardforge RM: its saved recipe",
        recipe=_rewardforge_recipe,
        detect=None,  # a folder with rewardforge_recipe.json; read before any detection
    ),
    FamilyRecord(
        "polar",
        summary=lambda recipe: (
            'POLAR reference-based RM: prompt + "\\n" + reference + <|reward|> + prompt + "\\n" '
            f"+ output + {recipe.reward_marker}, BOS first, with its client's truncation"
        ),
        recipe=_polar_recipe,
        detect=lambda f: is_internlm2(f) and internlm2_reward_token_name(f) != "<|reward|>",
        whole_text=True,
        converted=True,
    ),
    FamilyRecord(
        "internlm2-reward",
        summary=lambda recipe: (
            "InternLM2 reward model: chat template, then its reward token, read there"
        ),
        recipe=_internlm2_reward_recipe,
        detect=lambda f: is_internlm2(f) and internlm2_reward_token_name(f) == "<|reward|>",
        whole_text=True,
        converted=True,
    ),
    FamilyRecord(
        "openrlhf",
        summary=_openrlhf_summary,
        recipe=_openrlhf_recipe,
        detect=lambda f: "value_head_prefix" in f.config,
        whole_text=True,
        head_config_key="value_head_prefix",
    ),
    FamilyRecord(
        "trl-prm",
        summary=lambda recipe: (
            "TRL-trained PRM (a two-label token classifier): BOS + prompt + each step and "
            f"{recipe.step_separator!r} tokenized apart, P(correct) read at each separator"
        ),
        recipe=_trl_prm_recipe,
        detect=lambda f: _native(f) and is_token_classifier(f.config),
        kind="process",
        classifier="token",
    ),
    FamilyRecord(
        "text-pair",
        summary=lambda recipe: (
            "encoder RM: (prompt, response) as a text pair, reward from its classifier"
        ),
        recipe=_text_pair_recipe,
        detect=lambda f: _native(f) and f.is_encoder,
    ),
    FamilyRecord(
        "skywork",
        summary=lambda recipe: (
            "Skywork-style chat RM: chat template, the text's leading BOS replaced by the "
            "tokenizer's own (one BOS), reward at the last token"
        ),
        recipe=_skywork_recipe,
        detect=lambda f: (
            _native(f) and "skywork-reward" in str(f.config.get("_name_or_path", "")).lower()
        ),
        whole_text=True,
    ),
    FamilyRecord(
        "judge",  # a language model asked in words (`recipe/judge_prompt.py`): only named
        summary=_judge_summary,
        recipe=_judge_recipe,
        detect=None,
    ),
    FamilyRecord(
        "trl",  # the default: a transformers sequence classifier
        summary=_trl_summary,
        recipe=_trl_recipe,
        detect=_native,
        whole_text=True,
    ),
)
FAMILY_NAMES: tuple[str, ...] = tuple(record.name for record in FAMILIES)
# The formats `--reward-format` accepts; `auto` reads the folder.
REWARD_FORMATS: tuple[str, ...] = ("auto", *FAMILY_NAMES)
CONVERTED_FAMILIES: tuple[str, ...] = tuple(r.name for r in FAMILIES if r.converted)
WHOLE_TEXT_FAMILIES: tuple[str, ...] = tuple(r.name for r in FAMILIES if r.whole_text)
PROCESS_FAMILIES: tuple[str, ...] = tuple(r.name for r in FAMILIES if r.kind == "process")


def family(name: str) -> FamilyRecord:
    """The record of the family `name`."""
    for record in FAMILIES:
        if record.name == name:
            return record
    raise UserError(f"--reward-format must be one of {', '.join(REWARD_FORMATS)}, not {name!r}.")


def reads_token_classifier(recipe: ScoringRecipe) -> bool:
    """Whether `recipe`'s model is a two-label token classifier (a TRL-trained PRM): a step's
    logit is its second label's logit minus its first's."""
    return family(recipe.family).classifier == "token"


def detect_family(path: Path) -> str:
    """The family of a reward model folder that has no rewardforge recipe, from its files."""
    folder = ModelFolder.read(path)
    for record in FAMILIES:
        if record.detect is not None and record.detect(folder):
            return record.name
    raise unsupported(folder)


def unsupported(folder: ModelFolder) -> UserError:
    """The one-line refusal of a folder whose model exists only as its own shipped code."""
    kind = ", ".join(folder.architectures) or folder.config.get("model_type", "unknown")
    named = ", ".join(name for name in FAMILY_NAMES if name != "rewardforge")
    return UserError(
        f"{folder.path} is a {kind} model defined by Python code shipped in the folder "
        f"(auto_map). rewardforge never runs shipped code, and no family it knows describes "
        f"this model ({named}), so it cannot be scored here. If it is a transformers sequence "
        "classifier after all, name its family with --reward-format trl."
    )


def foreign_recipe(
    name: str, path: Path, tokenizer: PreTrainedTokenizerBase, template: str | None = None
) -> ScoringRecipe:
    """The recipe under which a model of family `name` scores as its own tooling scores it."""
    record = family(name)
    return record.recipe(ModelFolder.read(path), tokenizer, template)


def describe(recipe: ScoringRecipe) -> str:
    """How a model will score, in one line."""
    return family(recipe.family).summary(recipe)


def is_reward_model_folder(path: Path) -> bool:
    """Whether `path` holds a reward model (ours, or one of a known family) rather than a
    plain backbone: a rewardforge recipe, a one-output sequence classifier, a two-label token
    classifier (a TRL PRM), an OpenRLHF value head or an InternLM2 reward model."""
    if not (path / "config.json").is_file():
        return False
    if (path / RECIPE_FILE).is_file():
        return True
    folder = ModelFolder.read(path)
    one_output = len(folder.config.get("id2label") or {"0": "LABEL_0"}) == 1
    keyed = any(r.head_config_key in folder.config for r in FAMILIES if r.head_config_key)
    return (
        keyed
        or bool(set(folder.architectures) & set(INTERNLM2_ARCHITECTURES))
        or is_token_classifier(folder.config)
        or (
            one_output
            and any(a.endswith("ForSequenceClassification") for a in folder.architectures)
        )
    )
