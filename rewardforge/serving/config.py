"""The settings of `rewardforge serve`, one field a flag (kept apart from the server code so that
the CLI can build its flags without importing FastAPI or torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rewardforge.adoption.config import (
    REWARD_MODEL_HELP,
    RewardFormat,
    TemplateChoice,
    reward_format_setting,
    template_setting,
)
from rewardforge.config_fields import setting
from rewardforge.scoring.step_aggregates import Aggregate, aggregate_setting


@dataclass(frozen=True)
class ServerSettings:
    """Where the reward server listens, its API key's variable, batching and input limits."""

    model: str = setting("", REWARD_MODEL_HELP, shown="required")
    reward_format: RewardFormat = reward_format_setting()
    template: TemplateChoice | None = template_setting()
    aggregate: Aggregate = aggregate_setting()
    host: str = setting("127.0.0.1", "Interface to bind; 0.0.0.0 exposes it.")
    port: int = setting(8000, "Port.")
    api_key_env: str | None = setting(
        None, "Environment variable holding the API key; requests then need it.", shown="none"
    )
    insecure: bool = setting(False, "Allow a non-loopback --host without an API key.")
    max_batch_items: int = setting(64, "Responses per model call.")
    max_wait_ms: float = setting(10.0, "How long a request waits for others to batch with.")
    max_items_per_request: int = setting(256, "Items per request, at most (413 above).")
    max_text_chars: int = setting(32_000, "Characters per item: prompt + response (422 above).")
    max_body_bytes: int = setting(8 * 2**20, "Bytes per request body (413 above).")
    judge_samples: int = setting(
        1, "A judge that writes: replies per pair and order (votes), or per answer (grades)."
    )
