"""vLLM's (and SGLang's) `/classify` request and response shapes, so that a client written for a
reward model served by vLLM works against `rewardforge serve`.

A request is `{"model": ..., "input": text or [texts] or [ids] or [[ids]]}`, each text already
formatted (as vLLM takes it); the response lists, per input, `{"index", "label", "probs",
"num_classes"}` and a `usage` count of prompt tokens. `probs` holds the raw reward, one number:
a reward model's head has no activation (vLLM must be told so; rewardforge never applies one).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel


class ClassifyRequest(BaseModel):
    """vLLM's completion-style classify request: texts, or token ids (one list, or a list of
    lists). `add_special_tokens` is accepted for clients that send it; rewardforge reads a text
    as its recipe reads it, with the special tokens the recipe puts there."""

    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    add_special_tokens: bool = True

    @property
    def items(self) -> list[str] | list[list[int]]:
        """One text or one id list per input."""
        if isinstance(self.input, str):
            return [self.input]
        if self.input and all(isinstance(item, int) for item in self.input):
            return [list(self.input)]  # one list of token ids
        return list(self.input)


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
