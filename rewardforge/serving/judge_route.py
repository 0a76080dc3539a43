"""`POST /v1/judge`: a judge's pairwise verdicts over HTTP, and a grading judge's grades on
`/v1/score`.

`{"pairs": [{"prompt": text or messages, "answer_a": "...", "answer_b": "..."}]}` ->
`{"results": [{"first_better", "in_order", "swapped", "same_position"}]}`: P(answer_a is
better) averaged over both orders, the log-odds of each order's verdict, and whether both picked
the same position, as `Judge.judge_pairs` gives them offline. Pairs of requests that arrive
together are judged in one model call. A model that is not a judge answers 422. A judge that
writes its verdicts does so `--judge-samples` times an order, as `eval --samples` does; a
grading judge answers `/v1/score` with each answer's mean written grade (null where no reply
held one) and how many of its replies held none.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel

from rewardforge.data.example import Prompt
from rewardforge.data.formats import RowError, parse_prompt
from rewardforge.data.scoring_rows import parse_reference, parse_scoring_item
from rewardforge.scoring.judge import Judge, PairVerdict, WrittenGrade
from rewardforge.serving.batcher import MicroBatcher

Pair = tuple[Prompt, str, str]


class JudgeRequest(BaseModel):
    pairs: list[dict[str, Any]]


def verdict_batcher(
    judge: Judge | None, samples: int, **batching: Any
) -> MicroBatcher[Pair, PairVerdict] | None:
    """The micro-batcher of a judge's pairs; None for a model that is not a judge, or a judge
    that only grades."""
    if judge is None or judge.prompt.pairwise is None:
        return None
    asking = {"samples": samples} if judge.writer is not None else {}

    def judge_pairs(pairs: list[Pair]) -> list[PairVerdict]:
        prompts, answers_a, answers_b = zip(*pairs)
        return judge.judge_pairs(prompts, answers_a, answers_b, **asking)

    return MicroBatcher(judge_pairs, **batching)


def grade_batcher(
    judge: Judge | None, samples: int, **batching: Any
) -> MicroBatcher[tuple[Prompt, str], WrittenGrade] | None:
    """The micro-batcher of a grading judge's answers; None for any other model."""
    if judge is None or not judge.prompt.grades_answers:
        return None

    def grade(items: list[tuple[Prompt, str]]) -> list[WrittenGrade]:
        prompts, answers = zip(*items)
        return judge.grade(prompts, answers, samples=samples)

    return MicroBatcher(grade, **batching)


async def grade_items(server: Any, items: list[dict[str, Any]], normalize: bool) -> dict:
    """`/v1/score` of a grading judge: each answer's mean written grade (null where none of its
    replies held one) and its replies without a grade."""
    if normalize:
        raise HTTPException(422, "a judge's grades are not normalized: send normalize false.")
    asked = []
    for index, item in enumerate(items):
        try:
            prompt, response = parse_scoring_item(item)
            reference = parse_reference(item)
        except RowError as error:
            raise HTTPException(422, f"item {index}: {error}") from error
        if reference is not None:
            raise HTTPException(422, f"item {index}: a judge grades answers without a reference.")
        server.check_text(index, response, str(prompt))
        asked.append((prompt, response))
    grades = await server.grades.submit(asked)
    return {
        "rewards": [grade.grade for grade in grades],
        "unparsed": [grade.unparsed for grade in grades],
    }


async def verdicts_route(body: JudgeRequest, request: Request) -> dict[str, Any]:
    """`/v1/judge`: which answer of each pair is better, asked in both orders."""
    server = request.app.state.server
    if server.verdicts is None and server.grades is not None:
        raise HTTPException(422, "this judge grades one answer at a time: send them to /v1/score.")
    if server.verdicts is None:
        raise HTTPException(
            422,
            "this reward model is not a judge: send single answers to /v1/score, or serve a "
            "judge (rewardforge train --kind generative).",
        )
    server.check_count(len(body.pairs))
    pairs = []
    for index, item in enumerate(body.pairs):
        try:
            pairs.append(_pair(item))
        except RowError as error:
            raise HTTPException(422, f"pair {index}: {error}") from error
        server.check_text(index, *pairs[-1][1:], str(pairs[-1][0]))
    verdicts = await server.verdicts.submit(pairs)
    return {
        "results": [
            {
                "first_better": verdict.first_better,
                "in_order": verdict.in_order,
                "swapped": verdict.swapped,
                "same_position": verdict.same_position,
            }
            for verdict in verdicts
        ]
    }


def _pair(item: dict[str, Any]) -> Pair:
    missing = [key for key in ("prompt", "answer_a", "answer_b") if item.get(key) is None]
    if missing:
        raise RowError(
            "missing key",
            f"missing key {missing[0]!r}; a pair needs 'prompt', 'answer_a' and 'answer_b'.",
        )
    answers = item["answer_a"], item["answer_b"]
    if not all(isinstance(answer, str) for answer in answers):
        raise RowError("wrong type", "'answer_a' and 'answer_b' must be strings.")
    return parse_prompt(item["prompt"]), *answers
