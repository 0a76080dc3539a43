"""A reasoning judge's written verdicts and grades: replies it writes, each ending with its
verdict (or grade), counted.

Each pair is asked in both orders, `samples` replies each; the verdict of a reply is its last
"Verdict: A" or "Verdict: B" (or its template's `verdict_pattern`). The votes of an order become
the log-odds of its first answer, `log((votes for A + 0.5) / (votes for B + 0.5))` (a majority
vote, softened so that one reply is not certainty). A grading judge (Prometheus 2's absolute
grading) writes a grade for one answer; an answer's grade is the mean of its replies' grades.
A reply without a verdict or grade is counted as unparsed, never as a vote or a grade.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rewardforge.data.conversation import prompt_as_question
from rewardforge.data.example import Prompt
from rewardforge.models.policy import Policy, SamplingSettings
from rewardforge.recipe.judge_prompt import JudgePrompt
from rewardforge.recipe.judge_render import plain_question, question_messages
from rewardforge.scoring.pair_verdict import PairVerdict

QUESTIONS_PER_CALL = 8  # questions generated together (each with its samples)


@dataclass(frozen=True)
class WrittenGrade:
    """A grading judge's grade of one answer: the mean of its replies' grades (None when no
    reply held one), from `replies` replies of which `unparsed` held none."""

    grade: float | None
    replies: int
    unparsed: int


def question_text(judge: JudgePrompt, prompt: Prompt, answer_a: str, answer_b: str) -> str:
    """The pairwise question as the judge's user message, answers in place (as in training)."""
    before, between, after = judge.pairwise_parts(prompt_as_question(prompt))
    return before + answer_a + between + answer_b + after


def written_verdicts(
    policy: Policy,
    judge: JudgePrompt,
    prompts: Sequence[Prompt],
    answers_1: Sequence[str],
    answers_2: Sequence[str],
    settings: SamplingSettings,
    samples: int = 1,
) -> list[PairVerdict]:
    """`samples` written verdicts on each pair in each order, counted into a `PairVerdict`."""
    questions = []
    for prompt, first, second in zip(prompts, answers_1, answers_2):
        questions.append(question_text(judge, prompt, first, second))
        questions.append(question_text(judge, prompt, second, first))
    replies = written_replies(policy, judge, questions, settings, samples)
    verdicts = []
    for index in range(0, len(replies), 2):
        in_order = [judge.parse_verdict(reply) for reply in replies[index]]
        swapped = [judge.parse_verdict(reply) for reply in replies[index + 1]]
        unparsed = sum(verdict is None for verdict in in_order + swapped)
        verdicts.append(
            PairVerdict(
                _log_odds(in_order, judge),
                _log_odds(swapped, judge),
                replies=2 * samples,
                unparsed=unparsed,
            )
        )
    return verdicts


def written_grades(
    policy: Policy,
    judge: JudgePrompt,
    prompts: Sequence[Prompt],
    answers: Sequence[str],
    settings: SamplingSettings,
    samples: int = 1,
) -> list[WrittenGrade]:
    """`samples` written grades of each answer to its prompt, averaged into a `WrittenGrade`."""
    questions = []
    for prompt, answer in zip(prompts, answers):
        before, after = judge.pointwise_parts(prompt_as_question(prompt))
        questions.append(before + answer + after)
    graded = []
    for replies in written_replies(policy, judge, questions, settings, samples):
        grades = [grade for grade in map(judge.parse_grade, replies) if grade is not None]
        mean = sum(grades) / len(grades) if grades else None
        graded.append(WrittenGrade(mean, len(replies), len(replies) - len(grades)))
    return graded


def written_replies(
    policy: Policy,
    judge: JudgePrompt,
    questions: Sequence[str],
    settings: SamplingSettings,
    samples: int,
) -> list[list[str]]:
    """`samples` replies the judge writes to each question (its system message first)."""
    chat = policy.tokenizer.chat_template is not None
    asked: list[Prompt] = [
        question_messages(policy.tokenizer, judge, question)
        if chat
        else plain_question(judge, question)
        for question in questions
    ]
    replies: list[list[str]] = []
    for start in range(0, len(asked), QUESTIONS_PER_CALL):
        chunk = asked[start : start + QUESTIONS_PER_CALL]
        replies.extend(policy.sample_batch(chunk, samples, settings))
    return replies


def _log_odds(verdicts: list[str | None], judge: JudgePrompt) -> float:
    first = sum(verdict == judge.first for verdict in verdicts)
    second = sum(verdict == judge.second for verdict in verdicts)
    return math.log((first + 0.5) / (second + 0.5))
