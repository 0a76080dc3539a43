"""The settings of `rewardforge score`, one field a flag (and a `--config` YAML key). Kept apart
from the scoring code so that the CLI builds its flags without importing torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rewardforge.adoption.config import (
    REWARD_MODEL_HELP,
    RewardFormat,
    TemplateChoice,
    reward_format_setting,
    template_setting,
)
from rewardforge.config_fields import require, setting
from rewardforge.errors import UserError
from rewardforge.output_paths import check_output_file, check_output_folder
from rewardforge.scoring.step_aggregates import Aggregate, aggregate_setting

Engine = Literal["local", "ray"]
OutputFormat = Literal["jsonl", "parquet"]


@dataclass
class ScoreSettings:
    """`rewardforge score`."""

    model: str = setting("", REWARD_MODEL_HELP, shown="required")
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    aggregate: Aggregate = aggregate_setting()
    input: str = setting(
        "", "JSONL rows with prompt + response (or messages), and reference.", shown="required"
    )
    output: str = setting("", "Where to write the rows with a reward added.", shown="required")
    normalize: bool = setting(False, "Rewards as (r - mean) / std of the training rewards.")
    skip_invalid: bool = setting(False, "Write bad rows to a rejects file instead of stopping.")
    rejects: str | None = setting(None, "Rejects file.", shown="OUTPUT.rejects.jsonl")
    engine: Engine = setting(
        "local",
        "local (this process), or ray: --input a file or folder of .jsonl/.parquet, --output a "
        "folder of scored shards, on Ray Data (resumable).",
    )
    ray_address: str | None = setting(
        None, "Ray cluster to join (else RAY_ADDRESS, else a local Ray).", shown="none"
    )
    workers: int = setting(1, "--engine ray: actors, each holding one copy of the model.")
    gpus_per_worker: float = setting(0.0, "--engine ray: GPUs each actor takes.")
    shard_rows: int = setting(10_000, "--engine ray: JSONL lines a shard holds.")
    output_format: OutputFormat = setting("jsonl", "--engine ray: jsonl or parquet shards.")

    def __post_init__(self) -> None:
        require("score", model=self.model, input=self.input, output=self.output)
        if self.engine == "ray":
            check_output_folder(self.output, "--output")
            if self.rejects:
                raise UserError(
                    "--rejects is for --engine local; Ray writes OUTPUT/*.rejects.jsonl."
                )
            for name in ("workers", "shard_rows"):
                if getattr(self, name) < 1:
                    raise UserError(f"--{name.replace('_', '-')} must be at least 1.")
            if self.gpus_per_worker < 0:
                raise UserError("--gpus-per-worker must be at least 0.")
            return
        if self.output_format != "jsonl":
            raise UserError("--output-format parquet is for --engine ray; score writes JSONL.")
        check_output_file(self.output, "--output")
        if self.rejects:
            check_output_file(self.rejects, "--rejects")


@dataclass
class ParitySettings:
    """`rewardforge verify-serving`."""

    model: str = setting("", REWARD_MODEL_HELP, shown="required")
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    url: str = setting("", "The running server's URL.", shown="required")
    protocol: Literal["rewardforge", "vllm"] = setting(
        "rewardforge",
        "rewardforge (a `rewardforge serve` server's /v1/score) or vllm (vLLM's /classify, or "
        "/score for a sentence-pair encoder, sent as the folder's vllm.json says).",
    )
    served_model: str | None = setting(
        None, "--protocol vllm: the model name vLLM serves it under.", shown="vLLM's default"
    )
    api_key_env: str | None = setting(
        None, "Environment variable that holds the server's API key.", shown="none"
    )
    data: str | None = setting(
        None,
        "JSONL rows with prompt + response (or messages) to send.",
        shown="the bundled HH-RLHF dev pairs",
    )
    limit: int = setting(64, "Rows to send, at most.")
    tolerance: float = setting(1e-4, "Largest difference that still counts as the same reward.")

    def __post_init__(self) -> None:
        require("verify-serving", model=self.model, url=self.url)
        if self.limit < 1:
            raise UserError(f"--limit must be at least 1, got {self.limit}.")
        if not self.tolerance >= 0:
            raise UserError(f"--tolerance must be at least 0, got {self.tolerance}.")


@dataclass
class ExportSettings:
    """`rewardforge export`."""

    model: str = setting("", REWARD_MODEL_HELP, shown="required")
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    server: Literal["vllm"] = setting(
        "vllm",
        "The serving engine to prepare the folder for: vllm (its config and vllm.json are "
        "written into the model's folder).",
        flags=("--for",),
    )

    def __post_init__(self) -> None:
        require("export", model=self.model)
