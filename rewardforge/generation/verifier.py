"""`Verifier`: a reward-model gate in front of a generator.

Generate an answer, score it, return the first one whose reward clears the threshold; otherwise
try again, up to `max_attempts`, and answer with the fallback text. Every attempt is reported.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from tqdm.auto import tqdm

from rewardforge.data.example import Prompt
from rewardforge.errors import UserError
from rewardforge.generation.config import VerifySettings
from rewardforge.scoring.reward_model import RewardModel

Generator = Callable[[Prompt, int], str]  # (prompt, attempt number from 0) -> answer


@dataclass(frozen=True)
class Attempt:
    answer: str
    reward: float
    accepted: bool


@dataclass(frozen=True)
class Verdict:
    """What the verifier answered, whether a generated answer passed, and every attempt."""

    answer: str
    accepted: bool
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def used_fallback(self) -> bool:
        return not self.accepted


class Verifier:
    """Gate answers on a reward model's score.

    Args:
        reward_model: the judge.
        threshold: an answer passes when its reward is at least this.
        max_attempts: answers generated before giving up.
        fallback: the answer given when no attempt passes.
        normalized: compare the normalised reward ((r - mean) / std with the statistics stored
            at training time) instead of the raw one; a threshold of 0 then means "better than
            the average training response".
    """

    def __init__(
        self,
        reward_model: RewardModel,
        threshold: float,
        max_attempts: int = 3,
        fallback: str = "I'm sorry, I can't give a good answer to that.",
        normalized: bool = False,
    ) -> None:
        if max_attempts < 1:
            raise UserError(f"max_attempts must be at least 1, got {max_attempts}.")
        self.reward_model = reward_model
        self.threshold = threshold
        self.max_attempts = max_attempts
        self.fallback = fallback
        self.normalized = normalized

    def __call__(
        self, prompt: Prompt, generate: Generator, reference: str | None = None
    ) -> Verdict:
        """Ask `generate` for answers until one passes or the attempts run out.

        A reference-based reward model scores each answer against `reference`.
        """
        attempts: list[Attempt] = []
        references = None if reference is None else [reference]
        for number in range(self.max_attempts):
            answer = generate(prompt, number)
            reward = self.reward_model.score(
                [prompt], [answer], references, normalize=self.normalized
            )[0]
            attempts.append(Attempt(answer, reward, reward >= self.threshold))
            if attempts[-1].accepted:
                return Verdict(answer, True, attempts)
        return Verdict(self.fallback, False, attempts)


def verify(settings: VerifySettings) -> Verdict:
    """`rewardforge verify`: load the judge and the policy, then answer `settings.prompt`; each
    attempt samples with its own seed (the settings' seed plus the attempt number)."""
    from rewardforge.models.policy import Policy

    judge = RewardModel.load(
        settings.reward_model,
        reward_format=settings.reward_format,
        template=settings.template,
        aggregate=settings.aggregate,
    )
    writer = Policy.load(settings.policy)
    sampling = settings.sampling()
    verifier = Verifier(
        judge, settings.threshold, settings.max_attempts, settings.fallback, settings.normalized
    )

    # generating is the slow part: a bar over the attempts, on stderr
    bar = tqdm(total=settings.max_attempts, desc="Verifying", unit="attempt", file=sys.stderr)

    def generate(prompt: Prompt, number: int) -> str:
        answer = writer.sample(prompt, 1, replace(sampling, seed=sampling.seed + number))[0]
        bar.update(1)
        return answer

    with bar:
        return verifier(settings.prompt, generate, settings.reference)
