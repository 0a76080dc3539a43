"""What every TRL-trained policy run shares: arguments, callbacks and the saved output.

`sft`, `dpo` and `rlhf` each hand a TRL trainer its data; this module gives all three the same
device and precision choice, `log.jsonl`, the NaN stop, and a saved model with its tokenizer
and `metrics.json`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from rewardforge.data.conversation import prompt_as_messages, prompt_as_text
from rewardforge.data.example import Prompt
from rewardforge.models.backbones import resolve_backbone
from rewardforge.models.file_modes import share_weights_like_config
from rewardforge.training.callbacks import (
    LOG_FILE,
    JsonlLogCallback,
    StopOnNonFinite,
    use_quiet_progress,
)
from rewardforge.training.precision import mixed_precision


@dataclass
class PolicyRunResult:
    """Where a policy run (sft, dpo, rlhf) saved the policy and what it measured."""

    output_dir: Path
    metrics: dict[str, Any]


# TRL 1.16's trainers still call the models' old `gradient_checkpointing_*` names; transformers
# warns at each call. The new names do the same; the warnings say nothing a user can act on.
warnings.filterwarnings(
    "ignore",
    message=r"`(is_)?gradient_checkpointing(_enable|_disable)?` is deprecated",
    category=FutureWarning,
)


def start_run(policy: str, output_dir: str) -> tuple[Path, str, Any, bool]:
    """(output folder, made later by `trl_arguments`; policy path; its tokenizer; whether it
    has a chat template)."""
    output = Path(output_dir)
    policy_path = resolve_backbone(policy)
    tokenizer = AutoTokenizer.from_pretrained(policy_path)
    return output, policy_path, tokenizer, tokenizer.chat_template is not None


def trl_arguments(config_class: type, output: Path, **settings: Any) -> Any:
    """`config_class` (a TRL config) with the shared settings and the run's own `settings`.
    The output folder is made here, once the run's data has been read: a run refused for its
    input leaves no folder behind."""
    output.mkdir(parents=True, exist_ok=True)
    precision = mixed_precision("auto")
    # TRL's configs turn checkpointing on under its old name, which transformers 5 warns about
    settings.setdefault("activation_checkpointing", True)
    return config_class(
        output_dir=str(output / "checkpoints"),
        save_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        **settings,
    )


def run_callbacks(output: Path) -> list[Any]:
    """A `log.jsonl` record per logged step, and a stop when loss, reward or KL turn NaN."""
    return [JsonlLogCallback(output / LOG_FILE), StopOnNonFinite()]


def fit_with_trl(
    trainer_class: type,
    args: Any,
    model_path: str,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    output: Path,
    callbacks: Sequence[Any] = (),
    lora_rank: int | None = None,
    **trainer_settings: Any,
) -> tuple[Any, Any]:
    """(trainer, fit): a TRL trainer over `rows` with the run's callbacks, fitted; with
    `lora_rank`, LoRA adapters on every linear layer, merged into the model afterwards."""
    import datasets
    from peft import LoraConfig

    lora = None
    if lora_rank is not None:
        lora = LoraConfig(task_type="CAUSAL_LM", target_modules="all-linear", r=lora_rank)
    trainer = trainer_class(
        model=model_path,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[*run_callbacks(output), *callbacks],
        peft_config=lora,
        **trainer_settings,
    )
    use_quiet_progress(trainer)
    fit = trainer.train()
    if lora is not None:
        trainer.model = trainer.model.merge_and_unload()
    return trainer, fit


def save_run(trainer: Any, tokenizer: Any, output: Path, metrics: dict[str, Any]) -> None:
    """The trained policy, its tokenizer and `metrics.json`, in `output`.

    Every process takes part in saving the model (FSDP and DeepSpeed gather it); the main
    process writes the rest.
    """
    trainer.save_model(str(output))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(output)
        share_weights_like_config(output)
        (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
    trainer.accelerator.wait_for_everyone()  # leave together (see training/train.py)


def policy_prompt(prompt: Prompt, chat: bool) -> Prompt:
    """A prompt as TRL gives it to the policy: messages with a chat template, else text."""
    if chat:
        return prompt_as_messages(prompt)
    return prompt_as_text(prompt)


def policy_completion(text: str, chat: bool) -> str | list[dict[str, str]]:
    """An answer in the same form: an assistant message with a chat template, else text."""
    return [{"role": "assistant", "content": text}] if chat else text
