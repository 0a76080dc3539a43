"""`train()`: preference data in, a saved reward model out, as one linear story."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import datasets
import torch
from accelerate.utils import parse_flag_from_env
from transformers import EarlyStoppingCallback, TrainerCallback, TrainingArguments, set_seed

from rewardforge.data import LoadReport, load_preferences
from rewardforge.errors import UserError
from rewardforge.forward_plan import ForwardPlan
from rewardforge.models import LoraSettings, load_reward_backbone
from rewardforge.models.adapters import merge_into_plain_backbone
from rewardforge.models.legacy_format import add_legacy_fields
from rewardforge.models.reward_head import is_encoder_backbone
from rewardforge.recipe import (
    DEFAULT_REWARD_MARKER,
    DEFAULT_SPLIT_TOKEN,
    RECIPE_FILE,
    RecipeEncoder,
    ScoringRecipe,
)
from rewardforge.reward_forward import RewardForward
from rewardforge.torch_environment import unset_torch_environment_defaults
from rewardforge.training.config import (
    CPU_PACKED_MICRO_BATCH_TOKENS,
    CPU_PADDED_MICRO_BATCH_TOKENS,
    GPU_MICRO_BATCH_TOKENS,
    TrainConfig,
)
from rewardforge.training.losses import pairs_counted
from rewardforge.training.precision import cpu_has_native_bf16, mixed_precision
from rewardforge.training.run_directory import (
    CHECKPOINTS,
    CONFIG_FILE,
    STAGING_DIR,
    checkpoint_step,
    keep_log_up_to,
    move_into,
    refuse_a_different_run,
    resume_checkpoint,
)
from rewardforge.training.trainer import JsonlLogCallback, RewardTrainer

METRICS_FILE = "metrics.json"
LOG_FILE = "log.jsonl"


@dataclass
class TrainResult:
    """Where the model was saved and what the run measured."""

    output_dir: Path
    metrics: dict[str, Any]


def train(config: TrainConfig, callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """Train a reward model as `config` says and save it to `config.output`.

    The output directory holds a standard transformers sequence-classification model
    (safetensors), its tokenizer, the scoring recipe, the resolved config, `log.jsonl` and
    `metrics.json`. `callbacks` are transformers `TrainerCallback`s added to the run's own
    (a time limit, a logger of your own).
    """
    if not config.data:
        raise UserError("No training data given; pass --data FILE (repeatable).")
    if config.keeps_best and not config.eval_data:
        raise UserError(
            "--load-best and --early-stopping choose by eval accuracy; give --eval-data FILE."
        )
    _refuse_sharded_lora(config)
    set_seed(config.seed)
    output = Path(config.output)
    refuse_a_different_run(output, config)
    output.mkdir(parents=True, exist_ok=True)

    base_recipe = _recipe_of(config.model)  # fine-tuning a rewardforge reward model
    reference_mode = config.reference_mode or bool(base_recipe and base_recipe.reference_mode)
    kept_recipe = _kept_recipe(config, base_recipe, reference_mode)
    added_tokens = kept_recipe.added_tokens if kept_recipe else _new_markers(config, reference_mode)
    train_report = _load(config.data, config, reference_mode)
    eval_report = _load(config.eval_data, config, reference_mode) if config.eval_data else None

    model, tokenizer, is_encoder = load_reward_backbone(
        config.model,
        dtype=config.dtype,
        lora=_lora_settings(config),
        quantization=config.quantization,
        gradient_checkpointing=config.gradient_checkpointing,
        disable_dropout=config.disable_dropout,
        allow_pickle_weights=config.allow_pickle_weights,
        added_tokens=added_tokens,
    )
    markers = (config.split_token, config.reward_marker)
    recipe = kept_recipe or ScoringRecipe.for_model(
        tokenizer, is_encoder, config.max_length, reference_mode, markers
    )
    encoder = RecipeEncoder(recipe, tokenizer)
    reward_forward = RewardForward(model)
    plan = ForwardPlan.for_model(reward_forward, encoder)
    micro_batch_tokens = _micro_batch_tokens(config, plan)
    print(f"forward plan: {_describe(plan)}; micro-batch token budget {micro_batch_tokens}")
    unset_defaults = [] if torch.cuda.is_available() else unset_torch_environment_defaults()
    if unset_defaults:
        print(
            f"tip: CPU training runs faster with {' '.join(unset_defaults)} "
            "set before torch is imported; the rewardforge command sets it (README: CPU memory)."
        )
    # Measured on a decoder (SmolLM2) only, so the tip is not given for encoders.
    if (
        config.mixed_precision == "auto"
        and not is_encoder
        and not torch.cuda.is_available()
        and cpu_has_native_bf16()
    ):
        print(
            "tip: this CPU multiplies bf16 in hardware; --mixed-precision bf16 (autocast over "
            "float32 weights) trained SmolLM2 1.40x faster than fp32 on such a CPU (BENCHMARKS.md)."
        )
    train_rows = _encode(encoder, train_report, "train")
    eval_rows = _encode(encoder, eval_report, "eval") if eval_report else None

    trainer = RewardTrainer(
        model=reward_forward,
        args=_training_arguments(config, output, has_eval=eval_rows is not None),
        train_dataset=datasets.Dataset.from_list(train_rows),
        eval_dataset=datasets.Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        callbacks=[*_callbacks(config, output), *callbacks],
        loss_options={
            "loss": config.loss,
            "pairs": config.pairs,
            "hinge_margin": config.hinge_margin,
            "center_coef": config.center_coef,
        },
        plan=plan,
        eval_rows=eval_rows,
        max_tokens_per_batch=config.max_tokens_per_batch,
        max_tokens_per_micro_batch=micro_batch_tokens,
    )
    if trainer.accelerator.num_processes > 1:
        kind = trainer.accelerator.distributed_type.value
        print(f"distributed: {kind} over {trainer.accelerator.num_processes} processes")
    checkpoint = resume_checkpoint(output) if config.resume else None
    if trainer.is_world_process_zero():
        keep_log_up_to(output / LOG_FILE, checkpoint_step(checkpoint) if checkpoint else 0)
    fit = trainer.train(resume_from_checkpoint=checkpoint)
    pairs, tokens = trainer.throughput_totals()
    runtime = fit.metrics["train_runtime"]
    metrics: dict[str, Any] = {
        "train_runtime_s": runtime,
        "train_pairs": pairs,
        "train_pairs_counted": pairs_counted(trainer.loss_options),
        "train_tokens": tokens,
        "pairs_per_s": pairs / runtime if runtime else 0.0,
        "tokens_per_s": tokens / runtime if runtime else 0.0,
        "train_loss": fit.metrics.get("train_loss"),
        "train_examples": len(train_rows),
    }
    if checkpoint:  # train_pairs and train_tokens count what this invocation trained
        metrics["resumed_from_step"] = checkpoint_step(checkpoint)
    if config.keeps_best and trainer.state.best_model_checkpoint:
        # Trainer has loaded the best checkpoint back: the model evaluated and saved below.
        metrics["best_step"] = checkpoint_step(Path(trainer.state.best_model_checkpoint))
        metrics["best_eval_accuracy"] = trainer.state.best_metric
        metrics["last_step"] = trainer.state.global_step
    if eval_rows and config.keeps_best and trainer.state.best_model_checkpoint:
        metrics.update(trainer.score_eval_set())  # the best step's model, logged at that step
    elif eval_rows:
        metrics.update(trainer.evaluate())

    stats_source = "eval set" if trainer.eval_rewards else "last training forward passes"
    rewards = (
        [reward for group in trainer.eval_rewards for reward in group]
        if trainer.eval_rewards
        else list(trainer.recent_rewards)
    )
    if rewards:  # none when a resumed run had no step left to take
        recipe = recipe.with_reward_stats(statistics.fmean(rewards), statistics.pstdev(rewards))
    metrics.update(
        {
            "reward_mean": recipe.reward_mean,
            "reward_std": recipe.reward_std,
            "reward_stats_from": f"{stats_source} ({len(rewards)} rewards)",
        }
    )
    staging = output / STAGING_DIR  # written in full first, then moved in: no half-saved model
    if trainer.is_world_process_zero():
        shutil.rmtree(staging, ignore_errors=True)
    _save_model(trainer, config, staging, recipe.added_tokens)
    if not trainer.is_world_process_zero():
        return TrainResult(output, metrics)
    tokenizer.save_pretrained(staging)
    add_legacy_fields(staging)  # RewardBench and other tools on transformers 4.4x load it too
    config.save(staging / CONFIG_FILE)
    (staging / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    recipe.save(staging)
    move_into(staging, output, last=RECIPE_FILE)
    return TrainResult(output, metrics)


def _save_model(
    trainer: RewardTrainer, config: TrainConfig, output: Path, added_tokens: list[str]
) -> None:
    """Save the classifier as a plain transformers model; LoRA adapters are merged first.

    A quantized base keeps its adapter in `adapter/`, merged into the float32 backbone so that
    the saved model loads without CUDA or bitsandbytes.

    Under FSDP or DeepSpeed every process takes part in gathering the full state dict, and the
    main process writes it.
    """
    reward_forward = trainer.accelerator.unwrap_model(trainer.model)
    classifier = reward_forward.classifier
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
        state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
        if trainer.is_world_process_zero():
            state = RewardForward.classifier_state_dict(state)
            classifier.save_pretrained(output, state_dict=state, safe_serialization=True)
        return
    if not trainer.is_world_process_zero():
        return
    if config.lora:
        if config.save_adapter or config.quantization:
            classifier.save_pretrained(output / "adapter")
        if config.quantization:
            classifier = merge_into_plain_backbone(config.model, output / "adapter", added_tokens)
        else:
            classifier = classifier.merge_and_unload()
    classifier.save_pretrained(output, safe_serialization=True)


def _refuse_sharded_lora(config: TrainConfig) -> None:
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


def _callbacks(config: TrainConfig, output: Path) -> list[TrainerCallback]:
    """`log.jsonl`, and transformers' early stopping when asked for."""
    callbacks: list[TrainerCallback] = [JsonlLogCallback(output / LOG_FILE)]
    if config.early_stopping is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping))
    return callbacks


def _describe(plan: ForwardPlan) -> str:
    if plan.encoder and plan.pack:
        return "packed rows, a segment for each response"
    if not plan.share_prompt:
        return "padded rows"
    return "shared prompt, packed rows" if plan.pack else "shared prompt, one sequence a row"


def _recipe_of(model: str) -> ScoringRecipe | None:
    """The recipe of a rewardforge reward model given as the backbone, else None."""
    return ScoringRecipe.load(model) if (Path(model) / RECIPE_FILE).is_file() else None


def _kept_recipe(
    config: TrainConfig, base_recipe: ScoringRecipe | None, reference_mode: bool
) -> ScoringRecipe | None:
    """The base model's recipe when it is of this run's mode, so that fine-tuning keeps its
    layout and markers (with this run's max length, and no reward statistics yet); else None."""
    if base_recipe is None or base_recipe.reference_mode != reference_mode:
        return None
    markers = [config.split_token, config.reward_marker]
    chosen = [
        token for token in markers if token not in (DEFAULT_SPLIT_TOKEN, DEFAULT_REWARD_MARKER)
    ]
    if chosen and base_recipe.added_tokens != markers:
        raise UserError(
            f"{config.model} reads the markers {base_recipe.added_tokens}; fine-tuning keeps "
            "them, so leave out --split-token and --reward-marker."
        )
    return replace(base_recipe, max_length=config.max_length, reward_mean=0.0, reward_std=1.0)


def _new_markers(config: TrainConfig, reference_mode: bool) -> list[str]:
    """Special tokens a new reference-mode recipe adds to the tokenizer (encoders need none)."""
    if not reference_mode or is_encoder_backbone(config.model):
        return []
    return [config.split_token, config.reward_marker]


def _load(paths: list[str], config: TrainConfig, reference_mode: bool) -> LoadReport:
    report = load_preferences(
        paths,
        columns=config.columns,
        skip_invalid=config.skip_invalid,
        min_score_gap=config.min_score_gap,
        reference_mode=reference_mode,
    )
    for path, fmt in report.formats.items():
        print(f"{path}: detected format '{fmt}'")
    return report


def _encode(encoder: RecipeEncoder, report: LoadReport, split: str) -> list[dict[str, Any]]:
    groups = [encoder.encode_example(example) for example in report.examples]
    truncated = sum(group.truncated for group in groups)
    print(f"{split} data: {report.summary(truncated=truncated)}")
    return [group.as_row() for group in groups]


def _lora_settings(config: TrainConfig) -> LoraSettings | None:
    if not config.lora:
        return None
    return LoraSettings(
        rank=config.lora_rank,
        alpha=config.lora_alpha,
        dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
    )


def _micro_batch_tokens(config: TrainConfig, plan: ForwardPlan) -> int:
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


def _training_arguments(config: TrainConfig, output: Path, has_eval: bool) -> TrainingArguments:
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
