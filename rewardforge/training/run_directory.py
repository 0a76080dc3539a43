"""The training output directory: resuming, staged saves and its log, kept consistent.

A run may be killed at any moment. These helpers make `--resume` pick a checkpoint that was
saved completely, keep each step once in `log.jsonl`, write the final model so that a crash
never leaves a half-saved one that loads, and refuse to mix two different runs in one folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import yaml

from rewardforge.errors import UserError
from rewardforge.training.config import TrainConfig

CONFIG_FILE = "train_config.yaml"
CHECKPOINTS = "checkpoints"
STAGING_DIR = ".saving"


def refuse_a_different_run(output: Path, config: TrainConfig) -> None:
    """Stop before anything loads if `output` holds a run trained with other settings.

    Writing there would mix two runs' checkpoints and logs; the same settings again (a rerun)
    or --resume are fine.
    """
    saved = output / CONFIG_FILE
    if config.resume or not saved.is_file():
        return
    earlier = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    ignored = {"output", "resume"}
    differing = [
        name
        for name, value in asdict(config).items()
        if name not in ignored and earlier.get(name, value) != value
    ]
    if differing:
        raise UserError(
            f"{output} already holds a run trained with other settings ({', '.join(differing)} "
            "differ). Choose another --output, delete that directory, or pass --resume to "
            "continue the run that is there."
        )


def move_into(staging: Path, output: Path, last: str) -> None:
    """Move every entry of `staging` into `output`, replacing old ones, `last` at the end.

    `RewardModel.load` needs the recipe file, so a crash part-way leaves no directory that
    looks like a complete model: the old recipe goes first, the new one comes last.
    """
    (output / last).unlink(missing_ok=True)
    for entry in sorted(staging.iterdir(), key=lambda path: path.name == last):
        target = output / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()


def resume_checkpoint(output: Path) -> str | None:
    """The newest complete checkpoint (with its trainer_state.json), or None with a notice.

    A checkpoint that a crash cut short has no trainer_state.json yet (transformers writes it
    last); it is skipped, and so is resuming when no checkpoint exists yet.
    """
    found = sorted((output / CHECKPOINTS).glob("checkpoint-*"), key=checkpoint_step)
    complete = [path for path in found if (path / "trainer_state.json").is_file()]
    for path in found:
        if path not in complete:
            print(f"--resume: skipping {path.name}, which was not saved completely")
    if not complete:
        print(f"--resume: no checkpoint in {output / CHECKPOINTS} yet; starting from the beginning")
        return None
    print(f"--resume: continuing from {complete[-1].name}")
    return str(complete[-1])


def checkpoint_step(path: str | Path) -> int:
    """The step number in a `checkpoint-N` path (so that checkpoint-10 sorts after -9)."""
    return int(Path(path).name.rsplit("-", 1)[-1])


def keep_log_up_to(log: Path, step: int) -> None:
    """Drop log records after `step`, so that steps redone after a resume appear once."""
    if not log.is_file():
        return
    kept = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line a kill cut short
            continue
        if record.get("step", 0) <= step:
            kept.append(line + "\n")
    log.write_text("".join(kept), encoding="utf-8")
