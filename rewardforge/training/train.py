"""`train()`: preference data in, a saved reward model out, as one linear story."""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import TrainerCallback, set_seed

from rewardforge.adoption.resolve import ResolvedRewardModel, resolve_reward_model
from rewardforge.errors import UserError
from rewardforge.forward.plan import ForwardPlan
from rewardforge.forward.reward_forward import RewardForward
from rewardforge.models import load_reward_backbone
from rewardforge.models.adapters import merge_into_plain_backbone
from rewardforge.models.legacy_format import add_legacy_fields
from rewardforge.models.reward_head import is_encoder_backbone
from rewardforge.recipe import (
    DEFAULT_REWARD_MARKER,
    DEFAULT_SPLIT_TOKEN,
    DEFAULT_STEP_SEPARATOR,
    RECIPE_FILE,
    RecipeEncoder,
    ScoringRecipe,
)
from rewardforge.recipe.families import is_reward_model_folder, reads_token_classifier
from rewardforge.torch_environment import unset_torch_environment_defaults
from rewardforge.training.arguments import (
    lora_settings,
    micro_batch_tokens,
    refuse_sharded_lora,
    trainer_callbacks,
    training_arguments,
)
from rewardforge.training.callbacks import LOG_FILE
from rewardforge.training.config import (
    TrainConfig,
)
from rewardforge.training.losses import pairs_counted
from rewardforge.training.precision import cpu_has_native_bf16, emulated_bf16_note
from rewardforge.training.run_directory import (
    CONFIG_FILE,
    STAGING_DIR,
    checkpoint_step,
    keep_log_up_to,
    move_into,
    refuse_a_different_run,
    resume_checkpoint,
)
from rewardforge.training.step_trainer import StepRewardTrainer
from rewardforge.training.train_data import encode_data, is_step_data, load_data
from rewardforge.training.trainer import RewardTrainer

METRICS_FILE = "metrics.json"


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
    refuse_sharded_lora(config)
    note = emulated_bf16_note(config.dtype, config.mixed_precision)
    if note:
        print(note)
    set_seed(config.seed)
    output = Path(config.output)
    refuse_a_different_run(output, config)

    base = _base_reward_model(config)  # fine-tuning a reward model, ours or not
    base_recipe = base.recipe if base else None
    reference_mode = config.reference_mode or bool(base_recipe and base_recipe.reference_mode)
    kept_recipe = _kept_recipe(config, base_recipe, reference_mode)
    added_tokens = kept_recipe.added_tokens if kept_recipe else _new_markers(config, reference_mode)
    process = _is_process(config, base_recipe, reference_mode)
    train_report = load_data(config.data, config, reference_mode, process)
    eval_report = (
        load_data(config.eval_data, config, reference_mode, process) if config.eval_data else None
    )

    output.mkdir(parents=True, exist_ok=True)  # after the checks: a refused run leaves none
    model, tokenizer, is_encoder = load_reward_backbone(
        str(base.folder) if base else config.model,
        dtype=config.dtype,
        lora=lora_settings(config),
        quantization=config.quantization,
        gradient_checkpointing=config.gradient_checkpointing,
        disable_dropout=config.disable_dropout,
        allow_pickle_weights=config.allow_pickle_weights,
        added_tokens=added_tokens,
        key_mapping=base.key_mapping if base else None,
        token_classifier=bool(base_recipe and reads_token_classifier(base_recipe)),
    )
    markers = (config.split_token, config.reward_marker)
    recipe = kept_recipe or ScoringRecipe.for_model(
        tokenizer, is_encoder, config.max_length, reference_mode, markers
    )
    recipe = _of_this_kind(recipe, config, process)
    encoder = RecipeEncoder(recipe, tokenizer)
    reward_forward = RewardForward(model)
    plan = ForwardPlan.for_model(reward_forward, encoder)
    token_budget = micro_batch_tokens(config, plan)
    print(f"forward plan: {_describe(plan)}; micro-batch token budget {token_budget}")
    unset_defaults = [] if torch.cuda.is_available() else unset_torch_environment_defaults()
    if unset_defaults:
        print(
            f"tip: CPU training runs faster with {' '.join(unset_defaults)} set before torch "
            "is imported; the rewardforge command sets it (docs/training.md, Precision)."
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
    train_rows = encode_data(encoder, train_report, "train")
    eval_rows = encode_data(encoder, eval_report, "eval") if eval_report else None

    trainer = (StepRewardTrainer if process else RewardTrainer)(
        model=reward_forward,
        args=training_arguments(config, output, has_eval=eval_rows is not None),
        train_dataset=datasets.Dataset.from_list(train_rows),
        eval_dataset=datasets.Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        callbacks=[*trainer_callbacks(config, output), *callbacks],
        loss_options={
            "loss": config.loss,
            "pairs": config.pairs,
            "hinge_margin": config.hinge_margin,
            "center_coef": config.center_coef,
        },
        plan=plan,
        eval_rows=eval_rows,
        max_tokens_per_batch=config.max_tokens_per_batch,
        max_tokens_per_micro_batch=token_budget,
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
    unit = "labelled_steps" if process else "pairs"  # what the loss compares
    metrics: dict[str, Any] = {
        "train_runtime_s": runtime,
        f"train_{unit}": pairs,
        "train_pairs_counted": "labelled steps" if process else pairs_counted(trainer.loss_options),
        "train_tokens": tokens,
        f"{unit}_per_s": pairs / runtime if runtime else 0.0,
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
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(staging)
        add_legacy_fields(staging)  # RewardBench and other tools on transformers 4.4x load it
        config.save(staging / CONFIG_FILE)
        (staging / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
        recipe.save(staging)
        move_into(staging, output, last=RECIPE_FILE)
    # Processes finish together: one that left its process group while the main process was
    # still saving was aborted by gloo ("terminate called without an active exception").
    trainer.accelerator.wait_for_everyone()
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


def _describe(plan: ForwardPlan) -> str:
    if plan.encoder and plan.pack:
        return "packed rows, a segment for each response"
    if not plan.share_prompt:
        return "padded rows"
    return "shared prompt, packed rows" if plan.pack else "shared prompt, one sequence a row"


def _is_process(
    config: TrainConfig, base_recipe: ScoringRecipe | None, reference_mode: bool
) -> bool:
    """Whether this run trains a process reward model: `--kind prm`, a process model to
    continue, or step-labelled data under `--kind auto`."""
    process = config.kind == "prm" or (
        config.kind == "auto"
        and (base_recipe.kind == "process" if base_recipe else is_step_data(config.data))
    )
    if process and reference_mode:
        raise UserError(
            "a process reward model cannot be reference-based; leave out --reference-mode."
        )
    if not process and base_recipe is not None and reads_token_classifier(base_recipe):
        raise UserError(
            f"{config.model} is a PRM saved as a two-label token classifier; it can only be "
            "trained on step-labelled rows (--kind prm)."
        )
    return process


def _of_this_kind(recipe: ScoringRecipe, config: TrainConfig, process: bool) -> ScoringRecipe:
    """`recipe` as this run trains: a process reward model (a reward at the end of every step,
    with this run's separator, else the one the model was trained with, else a blank line) or
    an outcome model. The recipe trained with is the recipe saved, so a model continued as the
    other kind is saved as what it became, in rewardforge's own encoding."""
    if not process:
        if recipe.kind == "outcome":
            return recipe
        return replace(recipe, kind="outcome", family="rewardforge")
    continuing = recipe.kind == "process"
    separator = config.step_separator or (recipe.step_separator if continuing else None)
    separator = separator or DEFAULT_STEP_SEPARATOR
    if continuing:
        return replace(recipe, step_separator=separator)
    return replace(
        recipe, kind="process", step_separator=separator, step_tokens="pieces", family="rewardforge"
    )


def _base_reward_model(config: TrainConfig) -> ResolvedRewardModel | None:
    """The reward model `--model` names, ours or trained elsewhere (its recipe is kept), or
    None for a plain backbone, which gets a new head and recipe."""
    if config.reward_format == "auto" and not is_reward_model_folder(Path(config.model)):
        return None
    base = resolve_reward_model(config.model, config.reward_format, config.template)
    if base.summary is not None:
        print(f"{config.model}: continuing as {base.summary}")
    return base


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
