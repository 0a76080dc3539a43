"""`RemoteRewardModel`: a `rewardforge serve` server used as a reward, over HTTP.

The server formats text with the reward model's own saved recipe, so a remote reward is the same
number `RewardModel.score` gives locally; the policy's machine needs neither the reward model's
weights nor its memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx

from rewardforge.api.reward_model import trl_reward_function
from rewardforge.data.example import Prompt
from rewardforge.errors import UserError

ITEMS_PER_REQUEST = 64  # below the server's default --max-items-per-request (256)


def is_url(text: str) -> bool:
    """Whether a `--reward-model` value names a server rather than a folder."""
    return text.startswith(("http://", "https://"))


class RemoteRewardModel:
    """Scores through the `/v1/score` route of a `rewardforge serve` server."""

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 300.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout_s)

    def score(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[str],
        references: Sequence[str] | None = None,
        normalize: bool = False,
    ) -> list[float]:
        """One reward per (prompt, response[, reference]), as the server's model gives it."""
        items = [
            {"prompt": prompt, "response": response}
            | ({} if references is None else {"reference": references[index]})
            for index, (prompt, response) in enumerate(zip(prompts, responses, strict=True))
        ]
        rewards: list[float] = []
        for start in range(0, len(items), ITEMS_PER_REQUEST):
            chunk = items[start : start + ITEMS_PER_REQUEST]
            rewards += self._post({"items": chunk, "normalize": normalize})["rewards"]
        return rewards

    def reward_function(self, normalize: bool = False) -> Callable[..., list[float]]:
        """A reward function for TRL's GRPO and RLOO trainers, like
        `RewardModel.reward_function`."""
        return trl_reward_function(
            lambda prompts, texts, references: self.score(prompts, texts, references, normalize)
        )

    def _post(self, body: dict) -> dict:
        try:
            response = self._client.post(f"{self.url}/v1/score", json=body)
        except httpx.HTTPError as error:
            raise UserError(
                f"could not reach the reward server at {self.url} ({error}); start it with "
                "`rewardforge serve`, or pass a reward model folder."
            ) from error
        if response.status_code == 401:
            raise UserError(
                f"{self.url} refused the request (401): give its API key with --reward-api-key-env."
            )
        if response.status_code >= 500:
            raise RuntimeError(f"the reward server {self.url} failed: {response.text[:500]}")
        if response.status_code >= 400:
            raise UserError(f"{self.url} answered {response.status_code}: {response.text[:500]}")
        return response.json()
