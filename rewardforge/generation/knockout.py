"""A knockout over pairs: the best of N answers picked by a judge that compares two at a time.

A judge that only compares (Skywork-Critic, Prometheus 2's relative grading, a reasoning judge)
gives no reward to one answer, so best-of-N cannot rank its answers by reward. Instead they meet
in a single-elimination bracket: each round pairs the answers left in order (an odd one out
goes through), the judge asks each pair in both orders, and the answer it prefers goes on. N
answers take N - 1 comparisons; a round's pairs are judged in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardforge.data.example import Prompt
from rewardforge.scoring.judge import Judge


@dataclass(frozen=True)
class Match:
    """One comparison: the indices of the answers shown first and second, and P(the first is
    better) with both orders averaged."""

    first: int
    second: int
    first_better: float

    @property
    def winner(self) -> int:
        """The answer that goes on (the first on an exact tie: the bracket's order decides)."""
        return self.first if self.first_better >= 0.5 else self.second

    @property
    def loser(self) -> int:
        return self.second if self.winner == self.first else self.first

    @property
    def winner_probability(self) -> float:
        """P(the winner is better), as the judge gave it."""
        return self.first_better if self.winner == self.first else 1.0 - self.first_better


@dataclass(frozen=True)
class KnockoutResult:
    """The answer that won, and every match in the order played."""

    winner: int
    matches: tuple[Match, ...]

    @property
    def winner_matches(self) -> list[Match]:
        """The matches the winner played (and won)."""
        return [match for match in self.matches if self.winner in (match.first, match.second)]


def knockout(judge: Judge, prompt: Prompt, answers: list[str], **asking) -> KnockoutResult:
    """The best of `answers` to `prompt` by `judge`'s pairwise verdicts in a single-elimination
    bracket; `asking` goes to `Judge.judge_pairs` (a reasoning judge's samples and length)."""
    if not answers:
        raise ValueError("a knockout needs at least one answer.")
    left = list(range(len(answers)))
    played: list[Match] = []
    while len(left) > 1:
        pairs = [(left[i], left[i + 1]) for i in range(0, len(left) - 1, 2)]
        verdicts = judge.judge_pairs(
            [prompt] * len(pairs),
            [answers[first] for first, _ in pairs],
            [answers[second] for _, second in pairs],
            **asking,
        )
        matches = [Match(a, b, v.first_better) for (a, b), v in zip(pairs, verdicts)]
        played.extend(matches)
        bye = [left[-1]] if len(left) % 2 else []
        left = [match.winner for match in matches] + bye
    return KnockoutResult(left[0], tuple(played))
