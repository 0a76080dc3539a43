"""`RemoteRewardModel`: a `rewardforge serve` server used as a reward, over HTTP.

The server formats text with the reward model's own saved recipe, so a remote reward is the same
number `RewardModel.score` gives locally; the policy's machine needs neither the reward model's
weights nor its memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import httpx

from rewardforge.data.example import Prompt
from rewardforge.errors import UserError
from rewardforge.scoring.reward_model import trl_reward_function
from rewardforge.scoring.step_aggregates import Aggregate

logger = logging.getLogger(__name__)
ITEMS_PER_REQUEST = 64  # below the server's default --max-items-per-request (256)


def is_url(text: str) -> bool:
    """Whether a `--reward-model` value names a server rather than a folder."""
    return text.startswith(("http://", "https://"))


class RemoteRewardModel:
    """Scores through the `/v1/score` route of a `rewardforge serve` server.

    A server error (5xx), a timeout or a lost connection is retried `retries` times, waiting
    `backoff_s`, then twice as long each time, and logged; a server that restarts or is
    briefly overloaded does not end a long RLHF run. What still fails is one line naming the
    URL and the last status. `aggregate` asks a process reward model's server for that way of
    making one reward from the steps (None: the server's own `--aggregate`).
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        retries: int = 4,
        backoff_s: float = 1.0,
        aggregate: Aggregate | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.aggregate = aggregate
        self.retries = retries
        self.backoff_s = backoff_s
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
            body = {"items": chunk, "normalize": normalize}
            if self.aggregate is not None:
                body["aggregate"] = self.aggregate
            rewards += self._post(body)["rewards"]
        return rewards

    def reward_function(self, normalize: bool = False) -> Callable[..., list[float]]:
        """A reward function for TRL's GRPO and RLOO trainers, like
        `RewardModel.reward_function`."""
        return trl_reward_function(
            lambda prompts, texts, references: self.score(prompts, texts, references, normalize)
        )

    def _post(self, body: dict) -> dict:
        """POST to `/v1/score`, retrying what a restart or an overload causes."""
        for attempt in range(self.retries + 1):
            problem = self._attempt(body)
            if isinstance(problem, dict):
                return problem
            if attempt < self.retries:
                wait = self.backoff_s * 2**attempt
                logger.warning(
                    "reward server %s: %s; retry %d of %d in %.1fs",
                    self.url,
                    problem,
                    attempt + 1,
                    self.retries,
                    wait,
                )
                time.sleep(wait)
        raise UserError(
            f"the reward server at {self.url} failed {self.retries + 1} times, last with "
            f"{problem}; check its log, or restart it with `rewardforge serve`."
        )

    def _attempt(self, body: dict) -> dict | str:
        """The answer, or what went wrong in words when it is worth retrying."""
        try:
            response = self._client.post(f"{self.url}/v1/score", json=body)
        except httpx.TimeoutException:
            return "a timeout"
        except httpx.HTTPError as error:
            return f"no connection ({error})"
        if response.status_code >= 500:
            return f"status {response.status_code} ({response.text[:200]})"
        if response.status_code == 401:
            raise UserError(
                f"{self.url} refused the request (401): give its API key with --reward-api-key-env."
            )
        if response.status_code >= 400:
            raise UserError(f"{self.url} answered {response.status_code}: {response.text[:500]}")
        return response.json()
