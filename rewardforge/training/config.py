"""The resolved configuration of one training run (CLI flags, YAML file and defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from rewardforge.training.losses import LOSSES


@dataclass
class TrainConfig:
    """Everything `rewardforge train` needs. Field names match the CLI flags (`-` becomes `_`)."""

    data: list[str] = field(default_factory=list)
    eval_data: list[str] = field(default_factory=list)
    model: str = "minilm-l6"
    output: str = "runs/rm"
    columns: dict[str, str] = field(default_factory=dict)
    skip_invalid: bool = False
    min_score_gap: float | None = None
    epochs: float = 1.0
    max_steps: int = -1
    batch_pairs: int = 16
    micro_batch_pairs: int | None = None  # None: 1 on CPU, 8 on GPU
    lr: float = 5e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    max_length: int = 512
    loss: str = "bt"
    pairs: str = "all"
    hinge_margin: float = 1.0
    center_coef: float = 0.0
    lora: bool = False
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = None
    save_adapter: bool = False
    load_in_8bit: bool = False
    load_in_4bit: bool = False
    dtype: str = "float32"
    gradient_checkpointing: bool = False
    disable_dropout: bool = True
    save_steps: int = 500
    eval_steps: int | None = None
    logging_steps: int = 10
    seed: int = 42
    resume: bool = False
    max_tokens_per_batch: int = 16384

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}.")
        if self.pairs not in ("all", "adjacent"):
            raise ValueError(f"--pairs must be 'all' or 'adjacent', got {self.pairs!r}.")
        micro = self.micro_batch_pairs
        if self.batch_pairs < 1 or (micro is not None and micro < 1):
            raise ValueError("--batch-pairs and --micro-batch-pairs must be at least 1.")
        if self.load_in_8bit and self.load_in_4bit:
            raise ValueError("Choose one of --load-in-8bit and --load-in-4bit, not both.")

    @classmethod
    def from_sources(cls, config_file: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """Defaults, then the YAML file, then explicit overrides (None means 'not given')."""
        values: dict[str, Any] = {}
        if config_file is not None:
            loaded = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{config_file}: expected a mapping of flag names to values.")
            values.update({key.replace("-", "_"): value for key, value in loaded.items()})
        values.update({key: value for key, value in overrides.items() if value is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown setting(s) {', '.join(unknown)}"
                + (f" in {config_file}" if config_file else "")
                + ". See `rewardforge train --help` for the names."
            )
        for key in ("data", "eval_data"):
            if isinstance(values.get(key), str):
                values[key] = [values[key]]
        return cls(**values)

    def save(self, path: str | Path) -> None:
        """Write the resolved configuration as YAML (reusable with `--config`)."""
        Path(path).write_text(
            yaml.safe_dump(asdict(self), sort_keys=False, allow_unicode=True), encoding="utf-8"
        )

    @property
    def quantization(self) -> str | None:
        if self.load_in_4bit:
            return "4bit"
        return "8bit" if self.load_in_8bit else None
