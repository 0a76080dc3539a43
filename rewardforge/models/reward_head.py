"""Build a reward model for training: a backbone with one linear head, optionally with LoRA.

The model is a standard `AutoModelForSequenceClassification` with `num_labels=1`, so a saved
reward model loads anywhere transformers does (TRL, OpenRLHF, vLLM, RewardBench).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rewardforge.errors import UserError
from rewardforge.forward.architecture import default_device, use_plan_attention
from rewardforge.models.backbones import resolve_backbone
from rewardforge.recipe.model_types import is_encoder_config

PAD_TOKEN = "<|pad|>"


@dataclass
class LoraSettings:
    """LoRA adapter settings; the reward head is always trained in full alongside."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | None = field(default=None)


def is_encoder_backbone(name: str) -> bool:
    """Whether the backbone `name` (alias, folder, hub id or .gguf) is a bidirectional encoder."""
    return is_encoder_config(_config_without_remote_code(resolve_backbone(name)).model_type)


def load_reward_backbone(
    name: str,
    *,
    dtype: str = "float32",
    lora: LoraSettings | None = None,
    quantization: str | None = None,
    gradient_checkpointing: bool = False,
    disable_dropout: bool = False,
    allow_pickle_weights: bool = False,
    added_tokens: Sequence[str] = (),
    key_mapping: dict[str, str] | None = None,
    token_classifier: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, bool]:
    """Load a backbone as a single-output sequence classifier, ready to train as a reward model.

    `disable_dropout` switches off the backbone's dropout (not LoRA's). Weights load from
    safetensors only, unless `allow_pickle_weights` also allows PyTorch `.bin` files (pickle can
    run code); code shipped with a model folder never runs (no `trust_remote_code`).
    `added_tokens` become special tokens of the tokenizer (the reference-mode markers) unless it
    has them; their embeddings are new rows, trained in full also under LoRA. `key_mapping`
    renames weights while loading (an OpenRLHF `value_head` to `score`). `token_classifier`
    loads a two-label token classifier instead (a PRM trained by TRL, to train on). Returns
    the model, its tokenizer (with a pad token distinct from EOS) and whether it is an encoder.
    """
    path = resolve_backbone(name)
    config = _config_without_remote_code(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    is_encoder = is_encoder_config(config.model_type)
    _ensure_distinct_pad_token(tokenizer, is_encoder)
    new_tokens = [token for token in added_tokens if token not in tokenizer.get_vocab()]
    if new_tokens:
        tokenizer.add_special_tokens(
            {"additional_special_tokens": new_tokens}, replace_extra_special_tokens=False
        )
    # A pad token the tokenizer adds lies past the embedding table until it is resized below.
    pad_in_table = tokenizer.pad_token_id < getattr(
        config, "vocab_size", tokenizer.pad_token_id + 1
    )
    # transformers reports the new head as a table of MISSING weights, which alarms for what
    # is expected; the same facts are said in one plain line instead.
    with quiet_load_report():
        model_class, labels = reward_model_class(token_classifier)
        model, loading = model_class.from_pretrained(
            path,
            num_labels=labels,
            dtype=_torch_dtype(dtype),
            pad_token_id=tokenizer.pad_token_id if pad_in_table else None,
            quantization_config=_quantization_config(quantization),
            use_safetensors=None if allow_pickle_weights else True,
            output_loading_info=True,
            key_mapping=key_mapping,
        )
    for line in describe_loading(loading, path):
        print(line)
    use_plan_attention(model, is_encoder, default_device())
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if disable_dropout:
        switch_off_dropout(model)
    if gradient_checkpointing:
        model.activation_checkpointing_enable()
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, gradient_checkpointing)
    if lora is not None:
        model = _with_lora(model, lora, tokenizer.convert_tokens_to_ids(list(added_tokens)))
    return model, tokenizer, is_encoder


def reward_model_class(token_classifier: bool) -> tuple[type, int]:
    """The transformers auto class a reward model loads as, and its number of labels: a
    one-output sequence classifier, or a two-label token classifier (a TRL-trained PRM)."""
    if token_classifier:
        return AutoModelForTokenClassification, 2
    return AutoModelForSequenceClassification, 1


HEAD_PREFIXES = ("score.", "classifier.")  # the head of transformers' sequence classifiers


def load_trained_reward_model(
    folder: str | Path,
    *,
    token_classifier: bool = False,
    key_mapping: dict[str, str] | None = None,
    dtype: str | None = None,
    device: str = "cpu",
) -> PreTrainedModel:
    """A trained reward model's classifier from `folder`'s safetensors (never pickle, never
    shipped code): a one-output sequence classifier, or a two-label token classifier (a
    TRL-trained PRM).

    The number of labels is given, not read from the config: OpenRLHF saves none, and
    transformers would assume two. `dtype` None computes in float32 on a CPU (a float16 or
    bfloat16 checkpoint is upcast: half precision on a CPU rounds rewards and runs slower
    without hardware support) and in the checkpoint's own dtype on a GPU. A reward head that
    is missing or does not fit is refused in one line: a head at random would score noise.
    """
    model_class, labels = reward_model_class(token_classifier)
    with quiet_load_report():  # a missing head is said below, in one line
        model, loading = model_class.from_pretrained(
            folder,
            num_labels=labels,
            dtype=_torch_dtype(dtype) if dtype else scoring_dtype(device),
            use_safetensors=True,  # pickle files can run code
            key_mapping=key_mapping,
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # said below, in one line
        )
    missing = [key for key in loading["missing_keys"] if key.startswith(HEAD_PREFIXES)]
    if missing:
        raise UserError(
            f"{folder} has no weights for the reward head ({', '.join(missing)}): it is "
            "not a reward model, or its head has another name. Name its family with "
            "--reward-format (see docs/reward-models.md)."
        )
    mismatched = [key for key, *_ in loading["mismatched_keys"]]
    if mismatched:
        raise UserError(
            f"{folder}: {', '.join(mismatched)} has another shape than a reward model's "
            f"({labels} output{'s' if labels > 1 else ''}): it is not a reward model of "
            "this kind. Name its family with --reward-format (see docs/reward-models.md)."
        )
    return model


def scoring_dtype(device: str) -> torch.dtype | str:
    """The dtype a reward model scores in unless told: float32 on a CPU, the checkpoint's own
    (`auto`) on a GPU."""
    return "auto" if device.startswith("cuda") else torch.float32


def describe_loading(loading: dict[str, Any], source: str) -> list[str]:
    """What loading a backbone as a reward model did, in plain words: the new reward head
    (expected), weights a reward model does not use (a language-model head), and, as warnings,
    backbone weights that were not in the checkpoint or did not fit."""
    missing = sorted(loading["missing_keys"])
    head = [key for key in missing if key.startswith(HEAD_PREFIXES)]
    backbone = [key for key in missing if not key.startswith(HEAD_PREFIXES)]
    unused = sorted(loading["unexpected_keys"])
    lines = []
    if head:
        line = f"reward head: {', '.join(head)} new, starting at random (training learns it)"
        if unused:
            line += f"; not used from {source}: {_some(unused)}"
        lines.append(line + ".")
    elif unused:
        lines.append(f"not used from {source}: {_some(unused)}.")
    if backbone:
        lines.append(
            f"warning: {len(backbone)} backbone weight(s) are not in {source} and start at "
            f"random: {_some(backbone)}. Is this the model you meant?"
        )
    mismatched = sorted(key for key, *_ in loading["mismatched_keys"])
    if mismatched:
        lines.append(
            f"warning: {len(mismatched)} weight(s) of {source} have another shape than this "
            f"architecture and start at random: {_some(mismatched)}."
        )
    return lines


def _some(keys: list[str], shown: int = 3) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


@contextlib.contextmanager
def quiet_load_report() -> Iterator[None]:
    """Keep transformers' load report (a warning of `transformers.modeling_utils`) unprinted.

    A filter, not a higher level: transformers runs other checks (a tensor-parallel plan's,
    which warns about every layer) only when that logger's own level is WARNING or above."""

    def not_the_report(record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in record.getMessage()

    model_logger = logging.getLogger("transformers.modeling_utils")
    model_logger.addFilter(not_the_report)
    try:
        yield
    finally:
        model_logger.removeFilter(not_the_report)


def _config_without_remote_code(path: str) -> PretrainedConfig:
    try:
        return AutoConfig.from_pretrained(path)
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        raise UserError(
            f"{path} needs Python code shipped with the model (trust_remote_code), which "
            "rewardforge does not run. Use a backbone that transformers supports natively."
        ) from error


def switch_off_dropout(model: torch.nn.Module) -> None:
    """Set every dropout probability in the model to 0, as TRL's RewardTrainer does by default.

    Dropout makes the chosen and rejected forward passes noisy in different ways, which blurs
    the reward difference the loss learns from; on CPU it is also a large share of step time.
    Attention dropout is an `nn.Dropout` in encoders and a float `attention_dropout` in most
    decoders; both are covered.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0


def _ensure_distinct_pad_token(tokenizer: PreTrainedTokenizerBase, is_encoder: bool) -> None:
    """Give decoders a pad token that is not EOS (adding one to the tokenizer if need be).

    With pad == EOS, a sequence-classification model looking for the last non-pad token skips
    the EOS that ends every response and reads the reward at the wrong position.
    """
    tokenizer.padding_side = "right"
    if is_encoder and tokenizer.pad_token is not None:
        return
    if tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return
    specials = {tokenizer.eos_token_id, tokenizer.bos_token_id}
    if tokenizer.unk_token is not None and tokenizer.unk_token_id not in specials:
        tokenizer.pad_token = tokenizer.unk_token
        return
    tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})


def _with_lora(model: PreTrainedModel, lora: LoraSettings, token_ids: list[int]) -> PreTrainedModel:
    """LoRA adapters on the linear layers; the embeddings of `token_ids` train in full."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules or "all-linear",
        trainable_token_indices=token_ids or None,
    )
    return get_peft_model(model, config)


def _torch_dtype(dtype: str) -> torch.dtype:
    options = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in options:
        raise UserError(f"--dtype must be one of {sorted(options)}, got {dtype!r}.")
    return options[dtype]


def _quantization_config(quantization: str | None):
    if quantization is None:
        return None
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None or not torch.cuda.is_available():
        raise UserError(
            f"--load-in-{quantization} needs a CUDA GPU and the bitsandbytes package "
            "(`pip install bitsandbytes`). Train without it on this machine."
        )
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)
    return BitsAndBytesConfig(load_in_8bit=True)
