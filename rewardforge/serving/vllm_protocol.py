"""vLLM's (and SGLang's) `/classify` request and response shapes, so that a client written for a
reward model served by vLLM works against `rewardforge serve`.

A request is `{"model": ..., "input": text or [texts]}`, each text already formatted (as vLLM
takes it); the response lists, per input, `{"index", "label", "probs", "num_classes"}` and a
`usage` count of prompt tokens. `probs` holds the raw reward, one number: a reward model's head
has no activation (vLLM must be told so; rewardforge never applies one).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel


class ClassifyRequest(BaseModel):
    input: str | list[str]
    model: str | None = None

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def classify_response(rewards: list[float], tokens: int, model: str) -> dict[str, Any]:
    """vLLM's `ClassificationResponse` for one reward per input."""
    return {
        "id": f"classify-{uuid.uuid4().hex}",
        "object": "list",
        "created": int(time.time()),
        "model": model,
        "data": [
            {"index": index, "label": "reward", "probs": [reward], "num_classes": 1}
            for index, reward in enumerate(rewards)
        ],
        "usage": {
            "prompt_tokens": tokens,
            "total_tokens": tokens,
            "completion_tokens": 0,
            "prompt_tokens_details": None,
        },
    }
