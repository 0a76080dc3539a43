"""What a `TrainConfig` asks of transformers: the `TrainingArguments`, the callbacks, the LoRA
settings, the micro-batch token budget and each process's share of a step."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from accelerate.utils import parse_flag_from_env
from transformers import EarlyStoppingCallback, TrainerCallback, TrainingArguments

from rewardforge.errors import UserError
from rewardforge.forward.plan import ForwardPlan
from rewardforge.models import LoraSettings
from rewardforge.training.callbacks import LOG_FILE, JsonlLogCallback
from rewardforge.training.config import (
    CPU_PACKED_MICRO_BATCH_TOKENS,
    CPU_PADDED_MICRO_BATCH_TOKENS,
    GPU_MICRO_BATCH_TOKENS,
    TrainConfig,
)
from rewardforge.training.precision import mixed_precision
from rewardforge.training.run_directory import CHECKPOINTS


def refuse_sharded_lora(config: TrainConfig) -> None:
    """LoRA under FSDP or DeepSpeed is refused before anything loads: its sharded save path
    (every rank gathering the state dict) is untested with adapters, and a run of hours should
    not end in a save that does not reload."""
    sharded = [
        name
        for name, variable in (
            ("FSDP", "ACCELERATE_USE_FSDP"),
            ("DeepSpeed", "ACCELERATE_USE_DEEPSPEED"),
        )
        if parse_flag_from_env(variable)
    ]
    if config.lora and sharded:
        raise UserError(
            f"--lora under {sharded[0]} is not supported yet. Launch LoRA runs with DDP instead "
            "(accelerate launch --multi_gpu --num_processes N ...): the frozen base is not "
            "trained, so every process holding a copy of it costs no optimizer memory."
        )


def lora_settings(config: TrainConfig) -> LoraSettings | None:
    if not config.lora:
        return None
    return LoraSettings(
        rank=config.lora_rank,
        alpha=config.lora_alpha,
        dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
    )


def micro_batch_tokens(config: TrainConfig, plan: ForwardPlan) -> int:
    if config.max_tokens_per_micro_batch is not None:
        return config.max_tokens_per_micro_batch
    if torch.cuda.is_available():
        return GPU_MICRO_BATCH_TOKENS
    return CPU_PACKED_MICRO_BATCH_TOKENS if plan.pack else CPU_PADDED_MICRO_BATCH_TOKENS


def per_process_batch(batch_pairs: int, processes: int) -> int:
    """Each process's share of a step's `batch_pairs` examples; a count that does not divide is
    refused rather than rounded, so a step trains exactly the global batch asked for."""
    if batch_pairs % processes:
        below = batch_pairs - batch_pairs % processes
        raise UserError(
            f"--batch-pairs {batch_pairs} does not divide among {processes} processes; give a "
            f"multiple of {processes} (such as {below or processes} or {below + processes}), so "
            "that every step trains exactly that many examples."
        )
    return batch_pairs // processes


def training_arguments(config: TrainConfig, output: Path, has_eval: bool) -> TrainingArguments:
    per_process = per_process_batch(config.batch_pairs, int(os.environ.get("WORLD_SIZE", "1")))
    report_to = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(output / "tensorboard"))
    evaluate_during = has_eval and config.eval_steps is not None
    precision = mixed_precision(config.mixed_precision)
    return TrainingArguments(
        output_dir=str(output / CHECKPOINTS),
        # A process's share of the step is one batch; RewardTrainer cuts it into micro-batches
        # by tokens, so the step's size does not depend on the lengths in it.
        per_device_train_batch_size=per_process,
        gradient_accumulation_steps=1,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear",
        logging_steps=config.logging_steps,
        # Keeping the best model checkpoints at every evaluation; the two kept are then the
        # best and the latest (for --resume).
        save_steps=config.eval_steps if config.keeps_best else config.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if evaluate_during else "no",
        eval_steps=config.eval_steps if evaluate_during else None,
        load_best_model_at_end=config.keeps_best,
        metric_for_best_model="eval_accuracy" if config.keeps_best else None,
        greater_is_better=True if config.keeps_best else None,
        seed=config.seed,
        # Random steps, as TRL: sorting inside a step already keeps padding small, and length
        # grouping across steps would add a length curriculum.
        train_sampling_strategy="random",
        remove_unused_columns=False,
        report_to=report_to,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def trainer_callbacks(config: TrainConfig, output: Path) -> list[TrainerCallback]:
    """`log.jsonl`, and transformers' early stopping when asked for."""
    callbacks: list[TrainerCallback] = [JsonlLogCallback(output / LOG_FILE)]
    if config.early_stopping is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping))
    return callbacks
