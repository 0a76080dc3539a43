"""What a verdict judge reads and answers: its two questions and the words of its verdicts.

A generative reward model (an LLM judge) is a language model asked, in words, whether an answer
is good (pointwise: "Yes" or "No") or which of two answers is better (pairwise: "A" or "B"). A
verdict judge's reward is read from the probabilities of those words at the first token of its
reply, in one forward pass; a reasoning judge writes a short rationale first and ends with
"Verdict: A" or "Verdict: B", which `parse_verdict` finds. The questions and the words are
saved with the judge (in its scoring recipe), so that training, scoring and serving ask it the
same way. A published judge (Prometheus 2, Skywork-Critic) is asked with its own questions, read
from a template file (`recipe/judge_template.py`): a system message, the text its reply starts
with, and the pattern its written verdict or grade follows.
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
    one; each must start with a token of its own (`verdict_token_ids` checks it). A published
    judge may ask only one of the two questions (the other is None)."""

    pointwise: str | None = POINTWISE
    pairwise: str | None = PAIRWISE
    yes: str = "Yes"
    no: str = "No"
    first: str = "A"
    second: str = "B"
    # "verdict": the reply's first token is the verdict; "reasoning": a rationale, then it
    style: Literal["verdict", "reasoning"] = "verdict"
    system: str | None = None  # a system message before the question
    reply_prefix: str = ""  # a verdict judge's reply starts with this, then the verdict word
    # A reasoning judge's written verdict: a regular expression whose first group is `first` or
    # `second` (the last match counts); None: "Verdict: X" or "[[X]]".
    verdict_pattern: str | None = None
    # A reasoning judge that grades one answer: a regular expression whose first group is its
    # grade, a whole number from `grades[0]` to `grades[1]` (the last match counts).
    grade_pattern: str | None = None
    grades: tuple[int, int] = (1, 5)

    @classmethod
    def reasoning(cls) -> JudgePrompt:
        """The questions of a reasoning judge (RM-R1/J1-style): think, then give the verdict."""
        return cls(pairwise=REASONING, style="reasoning")

    def parse_verdict(self, reply: str) -> str | None:
        """The verdict a written reply ends with: `first` or `second`, from its last
        "Verdict: X" (or "[[X]]", as many published judges write it); None when it has none."""
        labels = "|".join(re.escape(label) for label in (self.first, self.second))
        pattern = self.verdict_pattern or (
            rf"(?:verdict\s*[:：]\s*[*\s]*|\[\[\s*)({labels})(?![^\W_])"
        )
        found = [_group(match) for match in re.finditer(pattern, reply, _FLAGS)]
        found = [
            label for label in found if label.lower() in (self.first.lower(), self.second.lower())
        ]
        if not found:
            return None
        last = found[-1]
        return self.first if last.lower() == self.first.lower() else self.second

    def parse_grade(self, reply: str) -> int | None:
        """The grade a written reply ends with (its last match of `grade_pattern`, inside
        `grades`); None when it has none."""
        if self.grade_pattern is None:
            raise UserError(
                "this judge grades no single answer (its template has no grade_pattern)."
            )
        low, high = self.grades
        found = [_group(match) for match in re.finditer(self.grade_pattern, reply, _FLAGS)]
        grades = [int(text) for text in found if text.strip().isdigit()]
        grades = [grade for grade in grades if low <= grade <= high]
        return grades[-1] if grades else None

    @property
    def grades_answers(self) -> bool:
        """Whether the judge writes a grade for one answer (a published absolute grader)."""
        return self.style == "reasoning" and self.grade_pattern is not None

    def pointwise_parts(self, prompt: str) -> tuple[str, str]:
        """The pointwise question split where the answer goes: (before, after)."""
        if self.pointwise is None:
            raise UserError(
                "this judge only compares two answers and rates none alone; use `eval`, "
                "`best-of-n --knockout`, serve's /v1/judge or Judge.judge_pairs."
            )
        before, after = self.pointwise.split("{answer}")
        return _fill(before, prompt), _fill(after, prompt)

    def pairwise_parts(self, prompt: str) -> tuple[str, str, str]:
        """The pairwise question split where the two answers go: (before, between, after)."""
        if self.pairwise is None:
            raise UserError(
                "this judge rates one answer at a time and compares none; use `eval`, `score` "
                "or `best-of-n` with it."
            )
        before, rest = self.pairwise.split("{answer_a}")
        between, after = rest.split("{answer_b}")
        return _fill(before, prompt), _fill(between, prompt), _fill(after, prompt)

    def check(self) -> None:
        """Refuse a question without each of its placeholders exactly once, a judge with no
        question, and a pattern that is not a regular expression with a group."""
        if self.pointwise is None and self.pairwise is None:
            raise UserError("the judge needs a pointwise or a pairwise question, or both.")
        for name, pattern in (("verdict", self.verdict_pattern), ("grade", self.grade_pattern)):
            if pattern is not None:
                try:
                    groups = re.compile(pattern).groups
                except re.error as error:
                    raise UserError(f"the judge's {name}_pattern is not valid: {error}.") from None
                if groups < 1:
                    raise UserError(
                        f"the judge's {name}_pattern must capture the {name} in a group."
                    )
        for name, text, keys in (
            ("pointwise", self.pointwise, ("{prompt}", "{answer}")),
            ("pairwise", self.pairwise, ("{prompt}", "{answer_a}", "{answer_b}")),
        ):
            if text is None:
                continue
            counts = {key: text.count(key) for key in keys}
            if any(count != 1 for count in counts.values()):
                raise UserError(
                    f"the judge's {name} question must hold {', '.join(keys)} once each; "
                    f"it holds {counts}."
                )
        if self.pairwise is not None and self.pairwise.find("{answer_a}") > self.pairwise.find(
            "{answer_b}"
        ):
            raise UserError("the judge's pairwise question must put {answer_a} first.")


_FLAGS = re.IGNORECASE  # a pattern that needs ^ and $ at each line says (?m)


def _group(match: re.Match[str]) -> str:
    """The first group of a verdict or grade pattern that matched."""
    return next((group for group in match.groups() if group is not None), "")


def _fill(part: str, prompt: str) -> str:
    # the template is split before the prompt goes in, so a prompt that itself holds
    # "{answer}" cannot move where the answer goes
    return part.replace("{prompt}", prompt)
