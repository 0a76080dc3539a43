"""The reward server: FastAPI routes over a `RewardModel`, with micro-batching, auth and limits.

- `POST /v1/score`: `{"items": [{"prompt", "response"} | {"messages"}], "normalize": bool}`
  -> `{"rewards": [...]}`. Items for a reference-based model also carry `"reference"`.
- `POST /get_reward`: OpenRLHF's remote reward model protocol: `{"query": [full texts],
  "prompts": [...], "labels": [...]}` -> `{"rewards", "scores", "extra_logs"}`. A query is text
  the policy already formatted; it is scored as it is, not templated again.
- `POST /classify` (and `/v1/classify`): vLLM's classification protocol (`vllm_protocol.py`),
  each input text scored as it is, its raw reward as the one "probs" value.
- `POST /v1/judge`: a judge's pairwise verdicts (`judge_route.py`). A judge that writes its
  verdicts or grades has only `/v1/judge` or (grades) `/v1/score`; its other routes answer 422.
- `GET /health`, `GET /metrics` (Prometheus text format).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from rewardforge.data.formats import RowError
from rewardforge.data.scoring_rows import parse_reference, parse_scoring_item, parse_steps
from rewardforge.errors import UserError
from rewardforge.recipe import EncodedResponse
from rewardforge.recipe.steps import encode_solution
from rewardforge.scoring.judge import Judge, PairVerdict, WrittenGrade
from rewardforge.scoring.reward_model import RewardModel
from rewardforge.scoring.step_aggregates import Aggregate, aggregate, solution_steps
from rewardforge.serving.batcher import BatcherClosed, MicroBatcher
from rewardforge.serving.config import ServerSettings
from rewardforge.serving.formatted_text import split_query
from rewardforge.serving.gate import RequestGate
from rewardforge.serving.judge_route import (
    Pair,
    grade_batcher,
    grade_items,
    verdict_batcher,
    verdicts_route,
)
from rewardforge.serving.metrics import Metrics
from rewardforge.serving.vllm_protocol import ClassifyRequest, classify_response

OPEN_PATHS = ("/health",)  # with an API key set, every other path needs it
SCORING_PATHS = ("/v1/score", "/get_reward", "/classify", "/v1/classify", "/v1/judge")


class ScoreRequest(BaseModel):
    items: list[dict[str, Any]]
    normalize: bool = False
    aggregate: Aggregate | None = None  # a process reward model's; None: the server's own


class OpenRLHFRequest(BaseModel):
    query: list[str]
    prompts: list[str] | None = None
    labels: list[Any] | None = None


@dataclass
class Server:
    """What the routes work with: the model, the limits, the metrics, and one micro-batcher
    for outcome rewards, one for a process reward model's step rewards, and a judge's for its
    verdicts or grades (each request's items are scored together with those of requests that
    arrive at the same time)."""

    reward_model: RewardModel | None  # None: a judge that writes (`judge` only)
    settings: ServerSettings
    metrics: Metrics
    rewards: MicroBatcher[EncodedResponse, float] | None
    step_rewards: MicroBatcher[EncodedResponse, list[float]] | None
    verdicts: MicroBatcher[Pair, PairVerdict] | None  # a judge's pairs; None for other models
    grades: MicroBatcher[tuple[Any, str], WrittenGrade] | None  # a grading judge's answers

    def scorer(self) -> RewardModel:
        """The reward model, or a 422 for a judge that writes (it reads no reward in a pass)."""
        if self.reward_model is None:
            raise HTTPException(
                422,
                "this judge writes its verdicts and reads no reward from a forward pass: send "
                "pairs to /v1/judge.",
            )
        return self.reward_model

    def batchers(self) -> list[MicroBatcher]:
        every = (self.rewards, self.step_rewards, self.verdicts, self.grades)
        return [batcher for batcher in every if batcher is not None]

    def check_count(self, count: int) -> None:
        if count > self.settings.max_items_per_request:
            raise HTTPException(
                413,
                f"{count} items in one request; the limit is "
                f"{self.settings.max_items_per_request} (--max-items-per-request).",
            )

    def check_text(self, index: int, *texts: str) -> None:
        size = sum(len(text) for text in texts)
        if size > self.settings.max_text_chars:
            raise HTTPException(
                422,
                f"item {index}: {size} characters; the limit is "
                f"{self.settings.max_text_chars} (--max-text-chars).",
            )


def create_app(
    model: RewardModel | Judge,
    settings: ServerSettings | None = None,
    api_key: str | None = None,
) -> FastAPI:
    """A FastAPI app that serves `model` (a reward model, or a judge that writes its verdicts
    or grades); run it with uvicorn. With `api_key`, every request except `GET /health` needs
    `Authorization: Bearer <api_key>`, wherever the app is mounted."""
    settings = settings or ServerSettings()
    metrics = Metrics()
    batching = {
        "max_batch_items": settings.max_batch_items,
        "max_wait_s": settings.max_wait_ms / 1000,
        "on_batch": metrics.record_batch,
    }
    reward_model = model if isinstance(model, RewardModel) else model.reward_model
    judge = model if isinstance(model, Judge) else None
    if judge is None and reward_model is not None and reward_model.recipe.judge is not None:
        judge = Judge(reward_model)
    server = Server(
        reward_model,
        settings,
        metrics,
        MicroBatcher(reward_model.score_encoded, **batching) if reward_model else None,
        MicroBatcher(reward_model.score_encoded_steps, **batching) if reward_model else None,
        verdict_batcher(judge, settings.judge_samples, **batching),
        grade_batcher(judge, settings.judge_samples, **batching),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202 (FastAPI's protocol)
        yield
        for batcher in server.batchers():
            await batcher.close()

    app = FastAPI(title="rewardforge reward server", lifespan=lifespan)
    app.state.server = server
    app.add_exception_handler(BatcherClosed, shutting_down)
    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/metrics", prometheus_metrics, methods=["GET"])
    app.add_api_route("/v1/score", score, methods=["POST"])
    app.add_api_route("/get_reward", get_reward, methods=["POST"])
    app.add_api_route("/v1/judge", verdicts_route, methods=["POST"])
    for path in ("/classify", "/v1/classify"):  # vLLM's path, and SGLang's
        app.add_api_route(path, classify, methods=["POST"])
    known_paths = {route.path for route in app.routes}

    @app.middleware("http")
    async def count_requests(request: Request, call_next):  # noqa: ANN202
        started = time.perf_counter()
        scoring = request.url.path in SCORING_PATHS
        with metrics.in_progress.track_inprogress() if scoring else contextlib.nullcontext():
            response = await call_next(request)
        # Known routes by name, anything else as one label: arbitrary URLs make no new series.
        route = request.url.path if request.url.path in known_paths else "other"
        metrics.requests.labels(route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    # Outermost, so that it runs before anything reads the body (and before the counter).
    app.add_middleware(
        RequestGate,
        api_key=api_key,
        open_paths=OPEN_PATHS,
        max_body_bytes=settings.max_body_bytes,
    )
    return app


def _server(request: Request) -> Server:
    return request.app.state.server


async def shutting_down(request: Request, error: BatcherClosed) -> JSONResponse:
    return JSONResponse({"detail": f"{error}; send it again."}, status_code=503)


async def health(request: Request) -> dict[str, Any]:
    reward_model = _server(request).reward_model
    if reward_model is None:
        return {"status": "ok", "judge": "writes its verdicts or grades"}
    recipe = reward_model.recipe
    return {"status": "ok", "recipe": recipe.template, "reference_mode": recipe.reference_mode}


async def prometheus_metrics(request: Request) -> Response:
    registry = _server(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def score(body: ScoreRequest, request: Request) -> dict[str, Any]:
    """`/v1/score`: a reward per item (a process reward model's: and each step's)."""
    server = _server(request)
    server.check_count(len(body.items))
    if server.grades is not None:
        return await grade_items(server, body.items, body.normalize)
    if server.scorer().is_process:
        return await score_steps(server, body)
    encoded = []
    for index, item in enumerate(body.items):
        try:
            prompt, response = parse_scoring_item(item)
            reference = parse_reference(item)
        except RowError as error:
            raise HTTPException(422, f"item {index}: {error}") from error
        server.check_text(index, _prompt_text(prompt), response, reference or "")
        encode = server.scorer().encoder.encode
        encoded.append(_encode(index, encode, prompt, response, reference))
    rewards = await server.rewards.submit(encoded)
    if body.normalize:
        rewards = [server.scorer().recipe.normalize(reward) for reward in rewards]
    return {"rewards": rewards}


async def score_steps(server: Server, body: ScoreRequest) -> dict[str, Any]:
    """A process reward model: each item's step probabilities and their aggregate. Items give
    their steps as `completions`, or a response cut at the model's separator."""
    if body.normalize:
        raise HTTPException(
            422, "a process reward model's rewards are probabilities: no normalize."
        )
    reward_model = server.scorer()
    separator = reward_model.recipe.step_separator
    encoded = []
    for index, item in enumerate(body.items):
        try:
            prompt, response = parse_scoring_item(item)
            steps = solution_steps(response, separator, parse_steps(item))
        except RowError as error:
            raise HTTPException(422, f"item {index}: {error}") from error
        server.check_text(index, _prompt_text(prompt), *steps)
        solve = functools.partial(encode_solution, reward_model.encoder)
        encoded.append(_encode(index, solve, prompt, list(steps)))
    found = await server.step_rewards.submit(encoded)
    how = body.aggregate or reward_model.aggregate
    return {"rewards": [aggregate(steps, how) for steps in found], "step_rewards": found}


async def get_reward(body: OpenRLHFRequest, request: Request) -> dict[str, Any]:
    """`/get_reward`: OpenRLHF's remote reward protocol, queries scored as they are."""
    server = _server(request)
    server.check_count(len(body.query))
    if server.scorer().is_process:
        raise HTTPException(
            422, "this is a process reward model: send its steps to /v1/score instead."
        )
    if body.prompts is not None and len(body.prompts) != len(body.query):
        raise HTTPException(422, "'prompts' must have one entry per 'query'.")
    rewards = await server.rewards.submit(_encode_queries(server, body.query, body.prompts))
    return {"rewards": rewards, "scores": rewards, "extra_logs": {}}


async def classify(body: ClassifyRequest, request: Request) -> dict[str, Any]:
    """`/classify`: vLLM's classification protocol, texts scored as they are."""
    server = _server(request)
    items = body.items
    server.check_count(len(items))
    if server.scorer().is_process:
        raise HTTPException(
            422, "this is a process reward model: send its steps to /v1/score instead."
        )
    if all(isinstance(item, list) for item in items):  # token ids, read as they are
        encoded = [_encode_ids(server, index, ids) for index, ids in enumerate(items)]
    else:
        encoded = _encode_queries(server, items, None)
    rewards = await server.rewards.submit(encoded)
    tokens = sum(len(response.input_ids) for response in encoded)
    return classify_response(rewards, tokens, body.model or "rewardforge")


def _encode_queries(
    server: Server, queries: list[str], prompts: list[str] | None
) -> list[EncodedResponse]:
    """Already formatted texts, encoded as they are (their prompt split off when given)."""
    encoded = []
    for index, query in enumerate(queries):
        server.check_text(index, query)
        prompt = prompts[index] if prompts is not None else ""
        prompt_text, response_text = split_query(query, prompt, server.scorer())
        encode = server.scorer().encoder.encode_rendered
        encoded.append(_encode(index, encode, prompt_text, response_text))
    return encoded


def _encode_ids(server: Server, index: int, ids: list[int]) -> EncodedResponse:
    """Token ids a client tokenized itself: scored as they are, within the recipe's length."""
    vocabulary = len(server.scorer().encoder.tokenizer)
    if not ids or not all(0 <= token < vocabulary for token in ids):
        raise HTTPException(422, f"item {index}: token ids must be 0 to {vocabulary - 1}.")
    if len(ids) > server.scorer().recipe.max_length:
        raise HTTPException(
            422,
            f"item {index}: {len(ids)} token ids, more than the model's "
            f"{server.scorer().recipe.max_length}.",
        )
    return EncodedResponse(list(ids), None, False, 0)


def _encode(
    index: int, encode: Callable[..., EncodedResponse], prompt: Any, *texts: str | None
) -> EncodedResponse:
    """Run the recipe on one item; a chat template that rejects the input is the input's fault."""
    try:
        return encode(prompt, *texts)
    except UserError as error:  # e.g. a reference missing, or one a plain model cannot use
        raise HTTPException(422, f"item {index}: {error}") from error
    except Exception as error:  # jinja raises TemplateError and others for odd conversations
        raise HTTPException(
            422, f"item {index}: the model's template cannot format it ({error})."
        ) from error


def _prompt_text(prompt: str | list[dict[str, str]]) -> str:
    return prompt if isinstance(prompt, str) else "".join(m["content"] for m in prompt)
