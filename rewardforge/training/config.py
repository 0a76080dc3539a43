"""The resolved configuration of one training run (CLI flags, YAML file and defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from rewardforge.adoption.config import (
    RewardFormat,
    TemplateChoice,
    reward_format_setting,
    template_setting,
)
from rewardforge.config_fields import flag_name, setting, settings_from_sources
from rewardforge.data.steps import NeutralRating, neutral_rating_setting
from rewardforge.errors import UserError
from rewardforge.output_paths import check_output_folder

# Names only: the losses themselves (and torch) live in losses.py, which the CLI does not import.
LOSSES: tuple[str, ...] = ("bt", "logexp", "hinge", "listwise")
MIXED_PRECISION = ("auto", "bf16", "fp16", "no")
# Default token budgets of a training forward pass. CPU, packed rows: 1024, which trained
# SmolLM2 17% faster than one example a pass (BENCHMARKS.md). CPU, padded rows: 1, so every
# example runs alone; there the padding that batching brings costs more than larger matmuls gain.
# GPU: a guess, not yet measured (GPU figures are pending).
CPU_PACKED_MICRO_BATCH_TOKENS = 1024
CPU_PADDED_MICRO_BATCH_TOKENS = 1
GPU_MICRO_BATCH_TOKENS = 8192


@dataclass
class TrainConfig:
    """Everything `rewardforge train` needs, defined once: the CLI flags, their help and the YAML
    keys of `--config` all come from these fields (`-` in a flag is `_` here)."""

    data: list[str] = setting(
        help="Preference data file, repeatable.", factory=list, shown="the bundled sample"
    )
    eval_data: list[str] = setting(
        help="Evaluation data file, repeatable.",
        factory=list,
        shown="the bundled dev split when --data is not given",
    )
    model: str = setting("minilm-l6", "Backbone: bundled alias, hub id, folder or .gguf file.")
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    output: str = setting("runs/rm", "Output directory.")
    columns: dict[str, str] = setting(
        help="Key mapping, e.g. prompt=question,chosen=good,rejected=bad.",
        factory=dict,
        shown="none",
    )
    skip_invalid: bool = setting(False, "Skip bad rows, counted by reason, instead of stopping.")
    min_score_gap: float | None = setting(
        None, "Drop rows whose chosen_score - rejected_score is smaller.", shown="off"
    )
    kind: Literal["auto", "orm", "prm", "generative"] = setting(
        "auto",
        "orm (a reward per response), prm (a reward per step, from step-labelled rows) or "
        "generative (a verdict judge: a language model that answers which response is better, "
        "trained with TRL's SFT); auto reads the data.",
    )
    judge_style: Literal["verdict", "reasoning"] = setting(
        "verdict",
        "generative: verdict (SFT to answer at once, read in one pass) or reasoning (GRPO on "
        "whether its written verdict was right).",
    )
    generations: int = setting(4, "generative reasoning: replies sampled per question (GRPO).")
    max_new_tokens: int = setting(256, "generative reasoning: tokens a reply may take.")
    step_separator: str | None = setting(
        None,
        "prm: the text after each step, where its reward is read.",
        shown="a blank line; a PRM to continue: its own",
    )
    neutral_rating: NeutralRating = neutral_rating_setting()
    reference_mode: bool = setting(
        False,
        "Train a reference-based (POLAR-style) model that scores each response against a "
        "reference answer: rows need a 'reference', or 3+ ranked responses (the best is one).",
        shown="off, on when --model is a reference-based model",
    )
    split_token: str = setting(
        "<|split|>", "Reference mode: the special token between the reference and the response."
    )
    reward_marker: str = setting(
        "<|reward|>", "Reference mode: the special token at which the reward is read."
    )
    epochs: float = setting(1.0, "Passes over the training data.")
    max_steps: int = setting(-1, "Stop after N optimizer steps; -1 means --epochs decides.")
    batch_pairs: int = setting(16, "Preference examples per optimizer step, all processes.")
    max_tokens_per_micro_batch: int | None = setting(
        None,
        "Tokens fed per training forward pass, padding included: a step's examples are sorted "
        "by length and cut into micro-batches of this size (a longer example runs alone).",
        shown=(
            f"{GPU_MICRO_BATCH_TOKENS} on GPU; on CPU {CPU_PACKED_MICRO_BATCH_TOKENS} for packed "
            f"rows, {CPU_PADDED_MICRO_BATCH_TOKENS} (one example a pass) for padded ones"
        ),
    )
    lr: float = setting(5e-5, "Learning rate (linear decay).")
    weight_decay: float = setting(0.0, "AdamW weight decay.")
    warmup_ratio: float = setting(0.05, "Share of the steps that warm the learning rate up.")
    max_length: int = setting(512, "Max tokens per prompt + response; longer ones are truncated.")
    loss: str = setting("bt", "bt, logexp, hinge or listwise.")
    pairs: str = setting("all", "Pairs drawn from K-way groups: all or adjacent.")
    hinge_margin: float = setting(1.0, "Margin of --loss hinge.")
    center_coef: float = setting(
        0.0, "Reward centering weight: coef * mean((r_better + r_worse)^2) over the pairs."
    )
    lora: bool = setting(False, "Train LoRA adapters with PEFT; the reward head trains in full.")
    lora_rank: int = setting(16, "LoRA rank.")
    lora_alpha: int = setting(32, "LoRA alpha.")
    lora_dropout: float = setting(0.05, "LoRA dropout.")
    lora_target_modules: list[str] | None = setting(
        None, "Comma-separated module names to adapt.", shown="every linear layer"
    )
    save_adapter: bool = setting(False, "Also keep the LoRA adapter in adapter/.")
    load_in_8bit: bool = setting(False, "Quantize the backbone to 8 bits; needs --lora and CUDA.")
    load_in_4bit: bool = setting(False, "Quantize the backbone to 4 bits; needs --lora and CUDA.")
    dtype: str = setting("float32", "Weights: float32, or bfloat16 for pure bf16 training.")
    mixed_precision: str = setting(
        "auto",
        "Autocast: auto (bf16 on GPUs that have it, else fp16; none on CPU), bf16, fp16, no.",
    )
    gradient_checkpointing: bool = setting(False, "Recompute activations to save memory.")
    disable_dropout: bool = setting(
        True,
        "Train without the backbone's dropout, as TRL does.",
        shown="disable",
        flags=("--disable-dropout/--keep-dropout",),
    )
    allow_pickle_weights: bool = setting(
        False, "Also load PyTorch .bin backbone weights (pickle can run code)."
    )
    save_steps: int = setting(500, "Checkpoint every N steps.")
    eval_steps: int | None = setting(
        None, "Evaluate every N steps (with --eval-data).", shown="at the end only"
    )
    load_best: bool = setting(
        False,
        "Save the checkpoint with the best eval accuracy, not the last step; needs --eval-data "
        "and --eval-steps, and checkpoints at every evaluation.",
    )
    early_stopping: int | None = setting(
        None,
        "Stop after N evaluations in a row without a better eval accuracy (implies --load-best).",
        shown="off",
    )
    logging_steps: int = setting(10, "Log every N steps.")
    seed: int = setting(42, "Random seed.")
    resume: bool = setting(False, "Continue from the newest complete checkpoint.")
    max_tokens_per_batch: int = setting(16384, "Tokens fed per evaluation batch, padding included.")

    def __post_init__(self) -> None:
        check_output_folder(self.output, "--output")
        if self.loss not in LOSSES:
            raise UserError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}.")
        if self.pairs not in ("all", "adjacent"):
            raise UserError(f"--pairs must be 'all' or 'adjacent', got {self.pairs!r}.")
        if self.batch_pairs < 1:
            raise UserError(f"--batch-pairs must be at least 1, got {self.batch_pairs}.")
        if self.load_in_8bit and self.load_in_4bit:
            raise UserError("Choose one of --load-in-8bit and --load-in-4bit, not both.")
        if self.quantization and not self.lora:
            raise UserError(
                f"--load-in-{self.quantization} freezes the quantized weights, so there would be "
                "nothing to train; add --lora to train adapters on top of them."
            )
        if self.dtype not in ("float32", "bfloat16"):
            raise UserError(
                f"--dtype {self.dtype} cannot be trained: use float32 weights (with "
                "--mixed-precision bf16 or fp16 for speed) or bfloat16 for pure bf16 training."
            )
        minimums = {
            "max_length": 16,
            "lora_rank": 1,
            "save_steps": 1,
            "logging_steps": 1,
            "max_tokens_per_batch": 1,
            "max_tokens_per_micro_batch": 1,
            "generations": 2,
            "max_new_tokens": 1,
        }
        for name, smallest in minimums.items():
            if getattr(self, name) is not None and getattr(self, name) < smallest:
                raise UserError(
                    f"--{flag_name(name)} must be at least {smallest}, got {getattr(self, name)}."
                )
        if not self.lr > 0:
            raise UserError(f"--lr must be above 0, got {self.lr}.")
        if self.max_steps <= 0 and not self.epochs > 0:
            raise UserError(
                f"--epochs must be above 0 (or give --max-steps), got {self.epochs}: "
                "nothing would be trained."
            )
        if self.eval_steps is not None and self.eval_steps < 1:
            raise UserError(f"--eval-steps must be at least 1, got {self.eval_steps}.")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise UserError(f"--early-stopping must be at least 1, got {self.early_stopping}.")
        if self.keeps_best and self.eval_steps is None:
            wanted = "--early-stopping" if self.early_stopping else "--load-best"
            raise UserError(
                f"{wanted} compares evaluations made during training; give --eval-steps N "
                "(and --eval-data FILE) to say how often to evaluate."
            )
        if not 0 <= self.warmup_ratio < 1:
            raise UserError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}.")
        if not self.split_token.strip() or not self.reward_marker.strip():
            raise UserError("--split-token and --reward-marker must not be empty.")
        if self.step_separator == "":
            raise UserError("--step-separator must not be empty: each step's reward is read there.")
        if self.split_token == self.reward_marker:
            raise UserError(
                f"--split-token and --reward-marker must differ; both are {self.split_token!r}."
            )
        if self.mixed_precision not in MIXED_PRECISION:
            raise UserError(
                f"--mixed-precision must be one of {', '.join(MIXED_PRECISION)}, "
                f"got {self.mixed_precision!r}."
            )

    @classmethod
    def from_sources(cls, config_file: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """Defaults, then the YAML file, then explicit overrides (None means 'not given')."""
        return cls(**settings_from_sources(cls, config_file, overrides))

    def save(self, path: str | Path) -> None:
        """Write the resolved configuration as YAML (reusable with `--config`)."""
        Path(path).write_text(
            yaml.safe_dump(asdict(self), sort_keys=False, allow_unicode=True), encoding="utf-8"
        )

    @property
    def keeps_best(self) -> bool:
        """Whether the run saves its best evaluated checkpoint (--load-best or --early-stopping)."""
        return self.load_best or self.early_stopping is not None

    @property
    def quantization(self) -> str | None:
        if self.load_in_4bit:
            return "4bit"
        return "8bit" if self.load_in_8bit else None
