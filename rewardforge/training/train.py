"""`train()`: preference data in, a saved reward model out, as one linear story."""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import PreTrainedTokenizerBase, TrainerCallback, set_seed

from rewardforge.errors import UserError
from rewardforge.forward.plan import ForwardPlan
from rewardforge.forward.reward_forward import RewardForward
from rewardforge.models import load_reward_backbone
from rewardforge.models.adapters import merge_into_plain_backbone
from rewardforge.models.backbones import refuse_a_missing_backbone
from rewardforge.models.file_modes import share_weights_like_config
from rewardforge.models.legacy_format import add_legacy_fields
from rewardforge.recipe import (
    RECIPE_FILE,
    RecipeEncoder,
    ScoringRecipe,
)
from rewardforge.recipe.families import reads_token_classifier
from rewardforge.torch_environment import unset_torch_environment_defaults
from rewardforge.training.arguments import (
    lora_settings,
    micro_batch_tokens,
    refuse_sharded_lora,
    trainer_callbacks,
    training_arguments,
)
from rewardforge.training.base_model import (
    base_reward_model,
    kept_recipe,
    new_markers,
    recipe_of_this_kind,
    trains_process_model,
)
from rewardforge.training.callbacks import LOG_FILE, use_quiet_progress
from rewardforge.training.config import TrainConfig
from rewardforge.training.losses import LossOptions
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
from rewardforge.training.run_metrics import TrainMetrics
from rewardforge.training.step_trainer import StepRewardTrainer
from rewardforge.training.train_data import encode_data, load_data
from rewardforge.training.trainer import RewardTrainer

METRICS_FILE = "metrics.json"


@dataclass
class TrainResult:
    """Where the model was saved and what the run measured."""

    output_dir: Path
    measured: TrainMetrics

    @property
    def metrics(self) -> dict[str, Any]:
        """The figures as `metrics.json` holds them."""
        return self.measured.as_dict()


@dataclass
class _Run:
    """What a run trains with, prepared before the trainer: the model and its recipe, the
    forward plan, and the encoded data."""

    model: RewardForward
    tokenizer: PreTrainedTokenizerBase
    recipe: ScoringRecipe
    plan: ForwardPlan
    micro_batch_tokens: int
    process: bool
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]] | None


def train(config: TrainConfig, callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """Train a reward model as `config` says and save it to `config.output`.

    One story, as OpenRLHF's `train_rm`: check, prepare (data, model, recipe, plan), fit,
    save. The output directory holds a standard transformers sequence-classification model
    (safetensors), its tokenizer, the scoring recipe, the resolved config, `log.jsonl` and
    `metrics.json`. `callbacks` are transformers `TrainerCallback`s added to the run's own
    (a time limit, a logger of your own).
    """
    _refuse_before_loading(config)
    set_seed(config.seed)
    output = Path(config.output)
    refuse_a_different_run(output, config)
    created = not output.exists()
    output.mkdir(parents=True, exist_ok=True)  # a folder that cannot be made: said first
    try:
        run = _prepare(config)
    except BaseException:  # a refused run leaves no folder of its own behind
        if created:
            shutil.rmtree(output, ignore_errors=True)
        raise
    trainer = _trainer(config, run, output, callbacks)
    checkpoint = resume_checkpoint(output) if config.resume else None
    if trainer.is_world_process_zero():
        keep_log_up_to(output / LOG_FILE, checkpoint_step(checkpoint) if checkpoint else 0)
    fit = trainer.train(resume_from_checkpoint=checkpoint)
    measured = _measure(trainer, config, run, fit.metrics, checkpoint)
    recipe = run.recipe
    if measured.reward_count:
        recipe = recipe.with_reward_stats(measured.reward_mean, measured.reward_std)
    _save(trainer, config, run.tokenizer, recipe, output, measured)
    # Processes finish together: one that left its process group while the main process was
    # still saving was aborted by gloo ("terminate called without an active exception").
    trainer.accelerator.wait_for_everyone()
    return TrainResult(output, measured)


def _refuse_before_loading(config: TrainConfig) -> None:
    """The mistakes a run's settings alone show, said before anything loads."""
    if not config.data:
        raise UserError("No training data given; pass --data FILE (repeatable).")
    if config.kind == "generative":
        raise UserError(
            "train() trains scalar and process reward models; a judge (kind 'generative') is "
            "trained with rewardforge.train_judge(config)."
        )
    if config.keeps_best and not config.eval_data:
        raise UserError(
            "--load-best and --early-stopping choose by eval accuracy; give --eval-data FILE."
        )
    refuse_sharded_lora(config)
    refuse_a_missing_backbone(config.model)  # a typo or a missing path, before any loading
    note = emulated_bf16_note(config.dtype, config.mixed_precision)
    if note:
        print(note)


def _prepare(config: TrainConfig) -> _Run:
    """The base model (a reward model to continue, or a backbone), the data, the model with
    its recipe, and the forward plan."""
    base = base_reward_model(config)  # fine-tuning a reward model, ours or not
    base_recipe = base.recipe if base else None
    reference_mode = config.reference_mode or bool(base_recipe and base_recipe.reference_mode)
    kept = kept_recipe(config, base_recipe, reference_mode)
    added_tokens = kept.added_tokens if kept else new_markers(config, reference_mode)
    process = trains_process_model(config, base_recipe, reference_mode)
    train_report = load_data(config.data, config, reference_mode, process)
    eval_report = (
        load_data(config.eval_data, config, reference_mode, process) if config.eval_data else None
    )

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
    recipe = kept or ScoringRecipe.for_model(
        tokenizer, is_encoder, config.max_length, reference_mode, markers
    )
    recipe = recipe_of_this_kind(recipe, config, process)
    encoder = RecipeEncoder(recipe, tokenizer)
    reward_forward = RewardForward(model)
    plan = ForwardPlan.for_model(reward_forward, encoder)
    token_budget = micro_batch_tokens(config, plan)
    print(f"forward plan: {_describe(plan)}; micro-batch token budget {token_budget}")
    _cpu_tips(config, is_encoder)
    return _Run(
        model=reward_forward,
        tokenizer=tokenizer,
        recipe=recipe,
        plan=plan,
        micro_batch_tokens=token_budget,
        process=process,
        train_rows=encode_data(encoder, train_report, "train"),
        eval_rows=encode_data(encoder, eval_report, "eval") if eval_report else None,
    )


def _cpu_tips(config: TrainConfig, is_encoder: bool) -> None:
    """What would make CPU training faster on this machine, in a line each."""
    if torch.cuda.is_available():
        return
    unset_defaults = unset_torch_environment_defaults()
    if unset_defaults:
        print(
            f"tip: CPU training runs faster with {' '.join(unset_defaults)} set before torch "
            "is imported; the rewardforge command sets it (docs/training.md, Precision)."
        )
    # Measured on a decoder (SmolLM2) only, so the tip is not given for encoders.
    if config.mixed_precision == "auto" and not is_encoder and cpu_has_native_bf16():
        print(
            "tip: this CPU multiplies bf16 in hardware; --mixed-precision bf16 (autocast over "
            "float32 weights) trained SmolLM2 1.40x faster than fp32 on such a CPU (BENCHMARKS.md)."
        )


def _trainer(
    config: TrainConfig, run: _Run, output: Path, callbacks: Sequence[TrainerCallback]
) -> RewardTrainer:
    """The Trainer of this run: per-step BCE for a process reward model, else the preference
    loss."""
    trainer = (StepRewardTrainer if run.process else RewardTrainer)(
        model=run.model,
        args=training_arguments(config, output, has_eval=run.eval_rows is not None),
        train_dataset=datasets.Dataset.from_list(run.train_rows),
        eval_dataset=datasets.Dataset.from_list(run.eval_rows) if run.eval_rows else None,
        processing_class=run.tokenizer,
        callbacks=[*trainer_callbacks(config, output), *callbacks],
        loss_options=LossOptions(
            config.loss, config.pairs, config.hinge_margin, config.center_coef
        ),
        plan=run.plan,
        eval_rows=run.eval_rows,
        max_tokens_per_batch=config.max_tokens_per_batch,
        max_tokens_per_micro_batch=run.micro_batch_tokens,
    )
    use_quiet_progress(trainer)
    if trainer.accelerator.num_processes > 1:
        kind = trainer.accelerator.distributed_type.value
        print(f"distributed: {kind} over {trainer.accelerator.num_processes} processes")
    return trainer


def _measure(
    trainer: RewardTrainer,
    config: TrainConfig,
    run: _Run,
    fit: dict[str, Any],
    checkpoint: Path | None,
) -> TrainMetrics:
    """The run's figures, the final evaluation (of the best step's model under --load-best)
    and the reward statistics that --normalize will use."""
    compared, tokens = trainer.throughput_totals()
    measured = TrainMetrics(
        unit="labelled_steps" if run.process else "pairs",
        compared=compared,
        pairs_counted="labelled steps" if run.process else trainer.loss_options.pairs_counted,
        tokens=tokens,
        runtime_s=fit["train_runtime"],
        loss=fit.get("train_loss"),
        examples=len(run.train_rows),
    )
    if checkpoint:  # train_pairs and train_tokens count what this invocation trained
        measured.resumed_from_step = checkpoint_step(checkpoint)
    best = config.keeps_best and trainer.state.best_model_checkpoint
    if best:  # Trainer has loaded the best checkpoint back: the model evaluated and saved
        measured.best_step = checkpoint_step(Path(trainer.state.best_model_checkpoint))
        measured.best_eval_accuracy = trainer.state.best_metric
        measured.last_step = trainer.state.global_step
    if run.eval_rows:  # under --load-best, the best step's model, logged at that step
        measured.evaluation = trainer.score_eval_set() if best else trainer.evaluate()
    rewards = (
        [reward for group in trainer.eval_rewards for reward in group]
        if trainer.eval_rewards
        else list(trainer.recent_rewards)
    )
    source = "eval set" if trainer.eval_rewards else "last training forward passes"
    measured.reward_stats_from = f"{source} ({len(rewards)} rewards)"
    measured.reward_count = len(rewards)
    if rewards:  # none when a resumed run had no step left to take
        measured.reward_mean = statistics.fmean(rewards)
        measured.reward_std = statistics.pstdev(rewards)
    return measured


def _save(
    trainer: RewardTrainer,
    config: TrainConfig,
    tokenizer: PreTrainedTokenizerBase,
    recipe: ScoringRecipe,
    output: Path,
    measured: TrainMetrics,
) -> None:
    """The model, its tokenizer, recipe, config and metrics, written in full to a staging
    folder first and then moved in: no half-saved model."""
    staging = output / STAGING_DIR
    if trainer.is_world_process_zero():
        shutil.rmtree(staging, ignore_errors=True)
    _save_model(trainer, config, staging, recipe.added_tokens)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(staging)
        share_weights_like_config(staging)
        add_legacy_fields(staging)  # RewardBench and other tools on transformers 4.4x load it
        config.save(staging / CONFIG_FILE)
        figures = json.dumps(measured.as_dict(), indent=2)
        (staging / METRICS_FILE).write_text(figures + "\n", "utf-8")
        recipe.save(staging)
        move_into(staging, output, last=RECIPE_FILE)


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
