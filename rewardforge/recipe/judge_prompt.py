"""What a verdict judge reads and answers: its two questions and the words of its verdicts.

A generative reward model (an LLM judge) is a language model asked, in words, whether an answer
is good (pointwise: "Yes" or "No") or which of two answers is better (pairwise: "A" or "B"). A
verdict judge's reward is read from the probabilities of those words at the first token of its
reply, in one forward pass; a reasoning judge writes a short rationale first and ends with
"Verdict: A" or "Verdict: B", which `parse_verdict` finds. The questions and the words are
saved with the judge (in its scoring recipe), so that training, scoring and serving ask it the
same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rewardforge.errors import UserError

POINTWISE = (
    "Judge the answer to the question below.\n\n"
    "[Question]\n{prompt}\n\n"
    "[Answer]\n{answer}\n\n"
    "Is this a good answer? Reply Yes or No."
)
PAIRWISE = (
    "Judge which answer to the question below is better.\n\n"
    "[Question]\n{prompt}\n\n"
    "[Answer A]\n{answer_a}\n\n"
    "[Answer B]\n{answer_b}\n\n"
    "Which answer is better? Reply A or B."
)
REASONING = (
    "Judge which answer to the question below is better.\n\n"
    "[Question]\n{prompt}\n\n"
    "[Answer A]\n{answer_a}\n\n"
    "[Answer B]\n{answer_b}\n\n"
    "Think it through in a few sentences, then end with your verdict on a line of its own: "
    "Verdict: A or Verdict: B."
)


@dataclass(frozen=True)
class JudgePrompt:
    """The judge's questions (`{prompt}`, `{answer}`; `{prompt}`, `{answer_a}`, `{answer_b}`)
    and verdict words. `yes`/`no` answer the pointwise question, `first`/`second` the pairwise
    one; each must start with a token of its own (`verdict_token_ids` checks it)."""

    pointwise: str = POINTWISE
    pairwise: str = PAIRWISE
    yes: str = "Yes"
    no: str = "No"
    first: str = "A"
    second: str = "B"
    # "verdict": the reply's first token is the verdict; "reasoning": a rationale, then it
    style: Literal["verdict", "reasoning"] = "verdict"

    @classmethod
    def reasoning(cls) -> JudgePrompt:
        """The questions of a reasoning judge (RM-R1/J1-style): think, then give the verdict."""
        return cls(pairwise=REASONING, style="reasoning")

    def parse_verdict(self, reply: str) -> str | None:
        """The verdict a written reply ends with: `first` or `second`, from its last
        "Verdict: X" (or "[[X]]", as many published judges write it); None when it has none."""
        labels = "|".join(re.escape(label) for label in (self.first, self.second))
        pattern = rf"(?:verdict\s*[:：]\s*[*\s]*|\[\[\s*)({labels})(?![^\W_])"
        found = re.findall(pattern, reply, flags=re.IGNORECASE)
        if not found:
            return None
        last = found[-1]
        return self.first if last.lower() == self.first.lower() else self.second

    def pointwise_parts(self, prompt: str) -> tuple[str, str]:
        """The pointwise question split where the answer goes: (before, after)."""
        before, after = self.pointwise.split("{answer}")
        return _fill(before, prompt), _fill(after, prompt)

    def pairwise_parts(self, prompt: str) -> tuple[str, str, str]:
        """The pairwise question split where the two answers go: (before, between, after)."""
        before, rest = self.pairwise.split("{answer_a}")
        between, after = rest.split("{answer_b}")
        return _fill(before, prompt), _fill(between, prompt), _fill(after, prompt)

    def check(self) -> None:
        """Refuse a question without each of its placeholders exactly once."""
        for name, text, keys in (
            ("pointwise", self.pointwise, ("{prompt}", "{answer}")),
            ("pairwise", self.pairwise, ("{prompt}", "{answer_a}", "{answer_b}")),
        ):
            counts = {key: text.count(key) for key in keys}
            if any(count != 1 for count in counts.values()):
                raise UserError(
                    f"the judge's {name} question must hold {', '.join(keys)} once each; "
                    f"it holds {counts}."
                )
        if text.find("{answer_a}") > text.find("{answer_b}"):
            raise UserError("the judge's pairwise question must put {answer_a} first.")


def _fill(part: str, prompt: str) -> str:
    # the template is split before the prompt goes in, so a prompt that itself holds
    # "{answer}" cannot move where the answer goes
    return part.replace("{prompt}", prompt)
