"""Trainer callbacks shared by every training command (reward model, SFT, DPO, RLHF): the JSONL
log that `eval --report` and the plots read, the stop on a loss that is no longer finite, and
the progress bar without the Trainer's closing dict."""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import ProgressCallback, Trainer, TrainerCallback

from rewardforge.errors import UserError

LOG_FILE = "log.jsonl"  # in every run's output directory


class TrainingDiverged(UserError):
    """The loss turned NaN or infinite; the run stops before it can write a broken model."""


class JsonlLogCallback(TrainerCallback):
    """Appends every logged dict, with step and epoch, as one JSON line to `log.jsonl`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 (Trainer API)
        if state.is_world_process_zero and logs:
            record = {"step": state.global_step, "epoch": state.epoch, **logs}
            with self.path.open("a", encoding="utf-8") as log_file:
                log_file.write(json.dumps(record) + "\n")


class StopOnNonFinite(TrainerCallback):
    """Stops a run whose logged loss, reward or KL turned NaN or infinite, with a message."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 (Trainer API)
        for key in ("loss", "reward", "kl"):
            value = (logs or {}).get(key)
            if isinstance(value, float) and not math.isfinite(value):
                raise TrainingDiverged(
                    f"The logged {key} became {value} at step {state.global_step}; lower --lr "
                    "or raise --beta and run again."
                )


class ProgressWithoutSummary(ProgressCallback):
    """transformers' progress bar, without the run's closing `{'train_runtime': ...}` dict
    written into it: that is in log.jsonl, and each command prints its own summary line."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # transformers' hook
        if logs is not None and "train_runtime" in logs:
            return
        super().on_log(args, state, control, logs=logs, **kwargs)


def use_quiet_progress(trainer: Trainer) -> None:
    """Swap the Trainer's progress bar for `ProgressWithoutSummary` (where it has a bar)."""
    if any(
        isinstance(callback, ProgressCallback) for callback in trainer.callback_handler.callbacks
    ):
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(ProgressWithoutSummary())
