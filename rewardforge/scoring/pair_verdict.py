"""`PairVerdict`: a judge's two readings of one pair, one with each answer shown first."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PairVerdict:
    """A judge's two readings of one pair: the log-odds that the answer shown first is the
    better one, with answer 1 first (`in_order`) and with answer 2 first (`swapped`)."""

    in_order: float
    swapped: float
    replies: int = 0  # a reasoning judge's written replies (both orders), and those of them
    unparsed: int = 0  # without a verdict: counted, never taken as a vote

    @property
    def first_better(self) -> float:
        """P(answer 1 is better), averaged over both orders (exactly 0.5 when the two orders
        say the same for each position: no preference between the answers)."""
        if self.in_order == self.swapped:
            return 0.5
        return (_sigmoid(self.in_order) + 1.0 - _sigmoid(self.swapped)) / 2

    @property
    def same_position(self) -> bool:
        """Whether the judge picked the same position both times (so a different answer); an
        order it did not decide (a tie of votes, no verdict) picked no position."""
        return self.in_order * self.swapped > 0


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else math.exp(value) / (1 + math.exp(value))


def position_bias(verdicts: Sequence[PairVerdict]) -> float:
    """Share of pairs where the judge picked the same position in both orders: 1.0 for a judge
    that always says "A", 0.0 for one whose verdict follows the answers."""
    if not verdicts:
        return 0.0
    return sum(verdict.same_position for verdict in verdicts) / len(verdicts)
