"""The resolved configuration of one training run (CLI flags, YAML file and defaults)."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from rewardforge.errors import UserError
from rewardforge.training.losses import LOSSES

MIXED_PRECISION = ("auto", "bf16", "fp16", "no")


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
    dtype: str = "float32"  # weights; bfloat16 = pure bf16 training, on request
    mixed_precision: str = "auto"  # auto: bf16 autocast on GPUs that have it, fp16 on others
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
            raise UserError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}.")
        if self.pairs not in ("all", "adjacent"):
            raise UserError(f"--pairs must be 'all' or 'adjacent', got {self.pairs!r}.")
        micro = self.micro_batch_pairs
        if self.batch_pairs < 1 or (micro is not None and micro < 1):
            raise UserError("--batch-pairs and --micro-batch-pairs must be at least 1.")
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
        }
        for name, smallest in minimums.items():
            if getattr(self, name) < smallest:
                raise UserError(
                    f"--{_flag(name)} must be at least {smallest}, got {getattr(self, name)}."
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
        if not 0 <= self.warmup_ratio < 1:
            raise UserError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}.")
        if self.mixed_precision not in MIXED_PRECISION:
            raise UserError(
                f"--mixed-precision must be one of {', '.join(MIXED_PRECISION)}, "
                f"got {self.mixed_precision!r}."
            )

    @classmethod
    def from_sources(cls, config_file: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """Defaults, then the YAML file, then explicit overrides (None means 'not given')."""
        values: dict[str, Any] = {}
        if config_file is not None:
            values.update(_read_yaml(Path(config_file)))
        values.update({key: value for key, value in overrides.items() if value is not None})
        types = {f.name: str(f.type) for f in fields(cls)}
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise UserError(
                f"Unknown setting(s) {', '.join(unknown)}"
                + (f" in {config_file}" if config_file else "")
                + ". See `rewardforge train --help` for the names."
            )
        for key in ("data", "eval_data"):
            if isinstance(values.get(key), str):
                values[key] = [values[key]]
        where = f"{config_file}: " if config_file else ""
        return cls(
            **{key: _checked(key, value, types[key], where) for key, value in values.items()}
        )

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


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise UserError(f"{path}: not valid YAML{where}: {problem}.") from error
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: expected a mapping of flag names to values.")
    return {str(key).replace("-", "_"): value for key, value in loaded.items()}


def _checked(name: str, value: Any, annotation: str, where: str) -> Any:
    """`value` as the field's type, or a one-line error naming the setting.

    YAML reads `1e-4` (no dot) as a string, so numbers written as text are accepted.
    """
    kind = annotation.replace(" | None", "")
    if value is None and annotation.endswith("| None"):
        return None
    if kind in ("float", "int") and isinstance(value, str):
        with contextlib.suppress(ValueError):  # not a number: reported below
            value = float(value) if kind == "float" else int(value)
    expected = {
        "float": (int, float),
        "int": (int,),
        "bool": (bool,),
        "str": (str,),
        "list[str]": (list,),
        "dict[str, str]": (dict,),
    }[kind]
    wrong_bool = isinstance(value, bool) and kind in ("float", "int")
    if not isinstance(value, expected) or wrong_bool:
        raise UserError(f"{where}{_flag(name)} must be {_KIND_NAMES[kind]}, got {value!r}.")
    if kind == "list[str]" and not all(isinstance(item, str) for item in value):
        raise UserError(f"{where}{_flag(name)} must be a list of strings, got {value!r}.")
    return float(value) if kind == "float" else value


_KIND_NAMES = {
    "float": "a number",
    "int": "a whole number",
    "bool": "true or false",
    "str": "text",
    "list[str]": "a list of strings",
    "dict[str, str]": "a mapping",
}


def _flag(name: str) -> str:
    return name.replace("_", "-")
