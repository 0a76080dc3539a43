"""`verify-serving`: a server that gives the offline rewards passes; one that applies a sigmoid,
adds a BOS or normalises is caught, and the cause is named."""

from __future__ import annotations

import math
import random

import pytest
from typer.testing import CliRunner

from rewardforge import RewardModel
from rewardforge.cli import app
from rewardforge.scoring.serving_parity import check_serving_parity
from tests.conftest import write_jsonl

PROMPTS = ["How do I boil an egg?", "What is 2 + 2?", "你好", "Name a colour.", "Say hi."]
RESPONSES = ["Eight minutes in water.", "4.", "你好！有什么可以帮你？", "Blue.", "Hi!"]


@pytest.fixture(scope="module")
def model(tiny_reward_model_dir) -> RewardModel:
    return RewardModel.load(tiny_reward_model_dir)


def served_with_a_bos(model: RewardModel):
    """A server whose tokenizer puts a BOS before the text the template rendered."""
    from rewardforge.recipe.encoder import EncodedResponse

    bos = model.encoder.tokenizer.bos_token_id

    def served(prompts, responses):
        encoded = [model.encoder.encode(p, r) for p, r in zip(prompts, responses)]
        assert all(e.input_ids[0] != bos for e in encoded)  # the model has no BOS of its own
        return model.score_encoded(
            [EncodedResponse([bos, *e.input_ids], prompt_length=0) for e in encoded]
        )

    return served


@pytest.mark.parametrize(
    ("server", "cause"),
    [
        (lambda m: lambda p, r: [1 / (1 + math.exp(-x)) for x in m.score(p, r)], "a sigmoid"),
        (lambda m: lambda p, r: m.score(p, r, normalize=True), "normalised on the server's side"),
        (served_with_a_bos, "a BOS token added that the model was trained without"),
        (lambda m: lambda p, r: [2 * x + 1 for x in m.score(p, r)], "2 * r + 1 of the offline"),
        (lambda m: lambda p, r: [random.Random(7).gauss(0, 1) for _ in p], None),
    ],
    ids=["sigmoid", "normalised", "bos-added", "affine", "unknown"],
)
def test_a_wrong_server_is_caught_and_its_cause_named(model, server, cause):
    report = check_serving_parity(model, server(model), PROMPTS, RESPONSES, tolerance=1e-4)
    assert not report.matches and report.differing == list(range(len(PROMPTS)))
    if cause is None:
        assert report.cause is None
    else:
        assert cause in report.cause


def test_the_real_server_gives_the_offline_rewards(live_server, tiny_reward_model_dir, tmp_path):
    rows = write_jsonl(
        tmp_path / "rows.jsonl", [{"prompt": p, "response": r} for p, r in zip(PROMPTS, RESPONSES)]
    )
    result = CliRunner().invoke(
        app,
        ["verify-serving", "--model", str(tiny_reward_model_dir), "--url", live_server]
        + ["--api-key-env", "RM_KEY", "--data", str(rows)],
    )
    assert result.exit_code == 0, result.output
    assert "5 rows; largest difference" in result.output
    assert f"{live_server} gives the offline rewards." in result.output


def test_a_sigmoid_server_fails_the_command_with_its_cause(tiny_reward_model_dir, model):
    """Exit 1, the rows that differ and the cause, through HTTP with the bundled dev rows."""
    from fastapi import FastAPI

    from tests.conftest import running_server

    sigmoid_server = FastAPI()

    @sigmoid_server.post("/v1/score")
    def score(body: dict) -> dict:
        items = body["items"]
        rewards = model.score([i["prompt"] for i in items], [i["response"] for i in items])
        return {"rewards": [1 / (1 + math.exp(-x)) for x in rewards]}

    with running_server(sigmoid_server) as url:
        result = CliRunner().invoke(
            app,
            ["verify-serving", "--model", str(tiny_reward_model_dir), "--url", url]
            + ["--limit", "6"],
        )
    assert result.exit_code == 1, result.output
    assert "6 rows;" in result.output and "6 past the tolerance" in result.output
    assert "rows that differ: 1, 2, 3, 4, 5, 6" in result.stderr
    assert "likely cause: a sigmoid applied to the one-logit head" in result.stderr
