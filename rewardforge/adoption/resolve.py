"""Any reward model, ours or not, as a native transformers folder and the recipe it scores
under: `resolve_reward_model` decides it once and says how in one line; `adopt` writes the
result, so that serving and RLHF load an adopted model as they load one rewardforge trained."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from filelock import FileLock
from transformers import AutoTokenizer

from rewardforge.adoption.config import AdoptSettings
from rewardforge.adoption.internlm2 import convert_internlm2
from rewardforge.adoption.published_judge import judge_recipe, write_judge
from rewardforge.errors import UserError
from rewardforge.models.backbones import cache_dir, looks_like_a_path
from rewardforge.models.file_modes import share_weights_like_config
from rewardforge.models.reward_head import load_trained_reward_model
from rewardforge.recipe import RECIPE_FILE, ScoringRecipe
from rewardforge.recipe.families import (
    describe,
    detect_family,
    family,
    foreign_recipe,
    reads_token_classifier,
)
from rewardforge.recipe.model_folder import read_json


@dataclass(frozen=True)
class ResolvedRewardModel:
    """Where a reward model's native weights are, the recipe it scores under, and (for a model
    rewardforge did not train) the one line that says how."""

    folder: Path
    recipe: ScoringRecipe
    summary: str | None = None

    @property
    def key_mapping(self) -> dict[str, str] | None:
        """Weight names to rename while loading (a head that its family keeps under a prefix
        its config names, as OpenRLHF's `value_head_prefix`), or None."""
        key = family(self.recipe.family).head_config_key
        prefix = read_json(self.folder / "config.json").get(key) if key else None
        if prefix in (None, "score"):
            return None
        return {f"^{prefix}\\.": "score."}


def resolve_reward_model(
    source: str | Path, reward_format: str | None = None, template: str | None = None
) -> ResolvedRewardModel:
    """The folder (downloaded for a hub id, converted for InternLM2 models) and the recipe of
    the reward model at `source`. A folder with a rewardforge recipe keeps it unless
    `reward_format` names another family; otherwise the family is detected from its files."""
    folder = local_folder(source)
    wanted = None if reward_format in (None, "auto") else reward_format
    if wanted is not None:
        family(wanted)  # a name the registry does not know is one line
    if wanted in (None, "rewardforge") and (folder / RECIPE_FILE).is_file():
        require_weights(folder)
        recipe = ScoringRecipe.load(folder)
        if template is not None and template != recipe.template:
            recipe = replace(recipe, template=template)
        return ResolvedRewardModel(folder, recipe)
    if wanted == "rewardforge":
        raise FileNotFoundError(
            f"{folder} has no {RECIPE_FILE}; it was not trained by rewardforge."
        )
    name = wanted or detect_family(folder)
    if family(name).converted:
        folder = converted(folder)
    elif not any(folder.glob("*.bin")):
        require_weights(folder)
    elif not any(folder.glob("*.safetensors")):
        raise UserError(
            f"{folder} holds no safetensors weights. rewardforge does not load pickle (.bin) "
            "weights of models it did not train, because pickle can run code; convert them to "
            "safetensors with transformers first."
        )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    recipe = foreign_recipe(name, folder, tokenizer, template)
    return ResolvedRewardModel(folder, recipe, describe(recipe))


def require_weights(folder: Path) -> None:
    """A clear error for a folder with a config but no weights (a run cut short)."""
    if not any(folder.glob("*.safetensors")):
        raise FileNotFoundError(
            f"{folder} has a config.json but no model weights (*.safetensors). Was training "
            "interrupted before the model was saved? Point --model at a finished `rewardforge "
            "train` output directory, or a reward model's folder."
        )


def local_folder(source: str | Path) -> Path:
    """`source` as a local model folder: a folder, or a hub id from the cache (or the hub)."""
    folder = Path(source)
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"{folder} is not a model directory (no config.json). Pass the --output "
                "directory of `rewardforge train`, or a reward model's folder."
            )
        return folder
    if str(source).count("/") != 1 or folder.exists() or looks_like_a_path(str(source)):
        raise FileNotFoundError(f"{source}: no such model directory.")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(source), allow_patterns=_HUB_FILES))
    except Exception as error:  # offline, unknown id, gated: all the user's to fix
        raise UserError(
            f"{source} is not a folder, and the hub id could not be fetched ({error})."
        ) from error


_HUB_FILES = ["*.json", "*.safetensors", "tokenizer.model", "*.jinja", "*.bin"]


def converted(folder: Path) -> Path:
    """The native copy of an InternLM2 reward model, converted once into the cache.

    Under `accelerate launch` every process resolves the model at once: a lock file lets one
    convert while the others wait, and then read what it wrote."""
    stamp = "".join(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns};" for p in sorted(folder.iterdir())
    )
    key = hashlib.sha256(f"{folder.resolve()}|{stamp}".encode()).hexdigest()[:16]
    target = cache_dir() / "adopted" / f"{folder.name}-{key}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_name(target.name + ".lock"))):
        if not (target / "config.json").is_file():
            staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            print(
                f"converting {folder} to native transformers classes in {target}", file=sys.stderr
            )
            convert_internlm2(folder, staging)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    return target


def adopt(
    source: str | Path,
    output: str | Path,
    reward_format: str | None = None,
    template: str | None = None,
    step_separator: str | None = None,
    judge_template: str | None = None,
) -> ResolvedRewardModel:
    """Write the reward model at `source` to `output` as a rewardforge model folder: native
    safetensors weights, its tokenizer and the recipe it scores under. `step_separator` sets a
    process reward model's separator where its folder does not record it (TRL's);
    `judge_template` the questions a language model adopted as a judge (`--reward-format
    judge`) is asked, a bundled template's name or a template file."""
    resolved = resolve_reward_model(source, reward_format, template)
    if judge_template is not None and resolved.recipe.family != "judge":
        raise UserError(
            "--judge-template is for a language model adopted with --reward-format judge."
        )
    if step_separator is not None:
        if resolved.recipe.kind != "process":
            raise UserError(f"--step-separator: {source} is not a process reward model.")
        recipe = replace(resolved.recipe, step_separator=step_separator)
        resolved = replace(resolved, recipe=recipe, summary=describe(recipe))
    output = Path(output)
    if output.resolve() == resolved.folder.resolve():
        raise UserError("--output must differ from the source folder.")
    if resolved.recipe.family == "judge":
        recipe = judge_recipe(resolved.recipe, judge_template)
        write_judge(resolved.folder, output, recipe, _saved_dtype(resolved.folder))
        return ResolvedRewardModel(output, recipe, describe(recipe))
    model = load_trained_reward_model(
        resolved.folder,
        token_classifier=reads_token_classifier(resolved.recipe),
        key_mapping=resolved.key_mapping,
        dtype=_saved_dtype(resolved.folder),
    )
    model.save_pretrained(output, safe_serialization=True)
    AutoTokenizer.from_pretrained(resolved.folder).save_pretrained(output)
    share_weights_like_config(output)
    resolved.recipe.save(output)
    return ResolvedRewardModel(output, resolved.recipe, resolved.summary)


def adopt_with(settings: AdoptSettings) -> ResolvedRewardModel:
    """`rewardforge adopt`: `adopt` as its settings say."""
    return adopt(
        settings.source,
        settings.output,
        settings.reward_format,
        settings.template,
        settings.step_separator,
        settings.judge_template,
    )


def _saved_dtype(folder: Path) -> str | None:
    """The dtype a folder's config says its weights are in, so that `adopt` writes them as
    they were (None: float32)."""
    config = read_json(folder / "config.json")
    saved = config.get("dtype") or config.get("torch_dtype")
    return saved if saved in ("float32", "bfloat16", "float16") else None
