"""The settings of `rewardforge sft` and `rewardforge dpo`, one field a flag (kept apart from
the trainer code so that the CLI can build its flags without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rewardforge.config_fields import setting
from rewardforge.errors import UserError
from rewardforge.output_paths import check_output_folder


@dataclass
class SFTRunConfig:
    """Supervised fine-tuning of a policy on demonstrations, with TRL's SFTTrainer."""

    data: str = setting(
        "",
        'Demonstrations: rows of {"prompt", "answer"} (or "response") or {"messages"}.',
        shown="required",
    )
    model: str = setting("smollm2-135m", "Policy to fine-tune: bundled alias, hub id or folder.")
    output: str = setting("runs/sft", "Output directory.")
    epochs: float = setting(1.0, "Passes over the data.")
    max_steps: int = setting(-1, "Stop after N optimizer steps; -1 means --epochs decides.")
    batch_size: int = setting(8, "Examples per optimizer step.")
    lr: float = setting(2e-5, "Learning rate.")
    max_length: int = setting(1024, "Max tokens per example.")
    lora: bool = setting(False, "Train LoRA adapters (saved merged into the model).")
    logging_steps: int = setting(10, "Log every N steps.")
    seed: int = setting(42, "Random seed.")

    def __post_init__(self) -> None:
        _require(self.data, "sft needs --data FILE.")
        _check_training(self.lr, self.batch_size, self.max_length, self.logging_steps)
        check_output_folder(self.output, "--output")


@dataclass
class DPORunConfig:
    """Direct preference optimisation of a policy on preference pairs, with TRL's DPOTrainer."""

    data: str = setting(
        "", "Preference pairs in any format `rewardforge train` reads.", shown="required"
    )
    model: str = setting("smollm2-135m", "Policy to tune: bundled alias, hub id or folder.")
    output: str = setting("runs/dpo", "Output directory.")
    epochs: float = setting(1.0, "Passes over the data.")
    max_steps: int = setting(-1, "Stop after N optimizer steps; -1 means --epochs decides.")
    batch_size: int = setting(8, "Pairs per optimizer step.")
    lr: float = setting(5e-7, "Learning rate.")
    beta: float = setting(0.1, "DPO temperature: how far the policy may move from the reference.")
    max_length: int = setting(1024, "Max tokens per prompt + answer.")
    logging_steps: int = setting(10, "Log every N steps.")
    seed: int = setting(42, "Random seed.")

    def __post_init__(self) -> None:
        _require(self.data, "dpo needs --data FILE.")
        _check_training(self.lr, self.batch_size, self.max_length, self.logging_steps)
        check_output_folder(self.output, "--output")
        if not self.beta > 0:
            raise UserError(f"--beta must be above 0, got {self.beta}.")


def _require(value: str, message: str) -> None:
    if not value:
        raise UserError(message)


def _check_training(lr: float, batch_size: int, max_length: int, logging_steps: int) -> None:
    if not lr > 0:
        raise UserError(f"--lr must be above 0, got {lr}.")
    if batch_size < 1 or logging_steps < 1:
        raise UserError("--batch-size and --logging-steps must be at least 1.")
    if max_length < 16:
        raise UserError(f"--max-length must be at least 16, got {max_length}.")
