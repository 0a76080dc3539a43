"""`POST /v1/judge`: a verdict judge's pairwise verdicts over HTTP.

`{"pairs": [{"prompt": text or messages, "answer_a": "...", "answer_b": "..."}]}` ->
`{"results": [{"first_better", "in_order", "swapped", "same_position"}]}`: P(answer_a is
better) averaged over both orders, the log-odds of each order's verdict, and whether both picked
the same position, as `Judge.judge_pairs` gives them offline. Pairs of requests that arrive
together are judged in one model call. A model that is not a judge answers 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel

from rewardforge.data.example import Prompt
from rewardforge.data.formats import RowError, parse_prompt
from rewardforge.scoring.judge import Judge, PairVerdict
from rewardforge.scoring.reward_model import RewardModel
from rewardforge.serving.batcher import MicroBatcher

Pair = tuple[Prompt, str, str]


class JudgeRequest(BaseModel):
    pairs: list[dict[str, Any]]


def verdict_batcher(
    reward_model: RewardModel, **batching: Any
) -> MicroBatcher[Pair, PairVerdict] | None:
    """The micro-batcher of a judge's pairs; None for a model that is not a judge."""
    if reward_model.recipe.judge is None:
        return None
    judge = Judge(reward_model)

    def judge_pairs(pairs: list[Pair]) -> list[PairVerdict]:
        prompts, answers_a, answers_b = zip(*pairs)
        return judge.judge_pairs(prompts, answers_a, answers_b)

    return MicroBatcher(judge_pairs, **batching)


async def verdicts_route(body: JudgeRequest, request: Request) -> dict[str, Any]:
    """`/v1/judge`: which answer of each pair is better, asked in both orders."""
    server = request.app.state.server
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
