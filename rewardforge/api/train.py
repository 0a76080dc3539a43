"""`train()`: preference data in, a saved reward model out, as one linear story."""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import TrainingArguments, set_seed

from rewardforge.data import LoadReport, load_preferences
from rewardforge.forward_plan import ForwardPlan
from rewardforge.models import LoraSettings, load_reward_backbone
from rewardforge.models.legacy_format import add_legacy_fields
from rewardforge.recipe import RecipeEncoder, ScoringRecipe
from rewardforge.training.config import TrainConfig
from rewardforge.training.trainer import JsonlLogCallback, RewardTrainer

CONFIG_FILE = "train_config.yaml"
METRICS_FILE = "metrics.json"
LOG_FILE = "log.jsonl"


@dataclass
class TrainResult:
    """Where the model was saved and what the run measured."""

    output_dir: Path
    metrics: dict[str, Any]


def train(config: TrainConfig) -> TrainResult:
    """Train a reward model as `config` says and save it to `config.output`.

    The output directory holds a standard transformers sequence-classification model
    (safetensors), its tokenizer, the scoring recipe, the resolved config, `log.jsonl` and
    `metrics.json`.
    """
    if not config.data:
        raise ValueError("No training data given; pass --data FILE (repeatable).")
    set_seed(config.seed)
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)

    train_report = _load(config.data, config)
    eval_report = _load(config.eval_data, config) if config.eval_data else None

    model, tokenizer, is_encoder = load_reward_backbone(
        config.model,
        dtype=config.dtype,
        lora=_lora_settings(config),
        quantization=config.quantization,
        gradient_checkpointing=config.gradient_checkpointing,
        disable_dropout=config.disable_dropout,
    )
    encoder = RecipeEncoder(
        ScoringRecipe.for_model(tokenizer, is_encoder, config.max_length), tokenizer
    )
    sharded = any(
        os.environ.get(f"ACCELERATE_USE_{name}") == "true" for name in ("FSDP", "DEEPSPEED")
    )
    plan = ForwardPlan.for_model(model, encoder, sharded=sharded)
    print(f"forward plan: {'shared prompt' if plan.share_prompt else 'padded rows'}")
    train_rows = _encode(encoder, plan, train_report, "train")
    eval_rows = _encode(encoder, plan, eval_report, "eval") if eval_report else None

    trainer = RewardTrainer(
        model=model,
        args=_training_arguments(config, output, has_eval=eval_rows is not None),
        train_dataset=datasets.Dataset.from_list(train_rows),
        eval_dataset=datasets.Dataset.from_list(eval_rows) if eval_rows else None,
        data_collator=plan.collate,
        processing_class=tokenizer,
        callbacks=[JsonlLogCallback(output / LOG_FILE)],
        loss_options={
            "loss": config.loss,
            "pairs": config.pairs,
            "hinge_margin": config.hinge_margin,
            "center_coef": config.center_coef,
        },
        plan=plan,
        eval_rows=eval_rows,
        max_tokens_per_batch=config.max_tokens_per_batch,
    )
    fit = trainer.train(resume_from_checkpoint=config.resume or None)
    pairs, tokens = trainer.throughput_totals()
    runtime = fit.metrics["train_runtime"]
    metrics: dict[str, Any] = {
        "train_runtime_s": runtime,
        "train_pairs": pairs,
        "train_tokens": tokens,
        "pairs_per_s": pairs / runtime if runtime else 0.0,
        "tokens_per_s": tokens / runtime if runtime else 0.0,
        "train_loss": fit.metrics.get("train_loss"),
        "train_examples": len(train_rows),
    }
    if eval_rows:
        metrics.update(trainer.evaluate())

    if not trainer.is_world_process_zero():
        return TrainResult(output, metrics)
    model = trainer.model
    scored = trainer.eval_rewards or plan.score(
        model, train_rows, config.max_tokens_per_batch, description="Reward statistics"
    )
    rewards = [reward for group in scored for reward in group]
    if config.lora:
        if config.save_adapter:
            model.save_pretrained(output / "adapter")
        model = model.merge_and_unload()
    recipe = encoder.recipe.with_reward_stats(statistics.fmean(rewards), statistics.pstdev(rewards))
    model.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    add_legacy_fields(output)  # RewardBench and other tools on transformers 4.4x load it too
    recipe.save(output)
    config.save(output / CONFIG_FILE)
    metrics.update({"reward_mean": recipe.reward_mean, "reward_std": recipe.reward_std})
    (output / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return TrainResult(output, metrics)


def _load(paths: list[str], config: TrainConfig) -> LoadReport:
    report = load_preferences(
        paths,
        columns=config.columns,
        skip_invalid=config.skip_invalid,
        min_score_gap=config.min_score_gap,
    )
    for path, fmt in report.formats.items():
        print(f"{path}: detected format '{fmt}'")
    return report


def _encode(
    encoder: RecipeEncoder, plan: ForwardPlan, report: LoadReport, split: str
) -> list[dict[str, Any]]:
    """Tokenized rows, each with the `length` (tokens the plan feeds) the length sampler reads."""
    groups = [encoder.encode_example(example) for example in report.examples]
    truncated = sum(group.truncated for group in groups)
    print(f"{split} data: {report.summary(truncated=truncated)}")
    rows = [group.as_row() for group in groups]
    for row in rows:
        row["length"] = sum(plan.sequence_lengths(row))
    return rows


def _lora_settings(config: TrainConfig) -> LoraSettings | None:
    if not config.lora:
        return None
    return LoraSettings(
        rank=config.lora_rank,
        alpha=config.lora_alpha,
        dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
    )


def _training_arguments(config: TrainConfig, output: Path, has_eval: bool) -> TrainingArguments:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    # On CPU one example per forward is fastest (measured in BENCHMARKS.md): no padding at all,
    # and CPU matmuls lose little efficiency at that size. GPUs want bigger micro-batches.
    default_micro = 8 if torch.cuda.is_available() else 1
    micro = min(config.micro_batch_pairs or default_micro, config.batch_pairs)
    accumulation = max(1, config.batch_pairs // (micro * world_size))
    report_to = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(output / "tensorboard"))
    evaluate_during = has_eval and config.eval_steps is not None
    return TrainingArguments(
        output_dir=str(output / "checkpoints"),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear",
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if evaluate_during else "no",
        eval_steps=config.eval_steps if evaluate_during else None,
        seed=config.seed,
        # Length grouping only saves padding inside a micro-batch; with one example per forward
        # there is none to save, and random order keeps steps free of length curricula (as TRL).
        train_sampling_strategy="group_by_length" if micro > 1 else "random",
        remove_unused_columns=False,
        report_to=report_to,
        bf16=config.dtype == "bfloat16",
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
