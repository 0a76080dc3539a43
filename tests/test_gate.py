"""The server's gate denies by default: with a key, only /health is open, wherever it is mounted."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rewardforge import RewardModel
from rewardforge.serving.app import create_app

KEY = "gate-test-key"
ITEM = {"prompt": "Hi?", "response": "Hello."}


@pytest.fixture(scope="module")
def reward_model(tiny_reward_model_dir):
    return RewardModel.load(tiny_reward_model_dir)


@pytest.fixture
def reward_app(reward_model):
    """A new app per test: its batcher belongs to the event loop of the client that starts it."""
    return create_app(reward_model, api_key=KEY)


def check_default_deny(client: TestClient, prefix: str) -> None:
    score = f"{prefix}/v1/score"
    assert client.post(score, json={"items": [ITEM]}).status_code == 401
    assert client.post(f"{prefix}/get_reward", json={"query": ["x"]}).status_code == 401
    assert client.get(f"{prefix}/metrics").status_code == 401
    assert client.get(f"{prefix}/health").status_code == 200
    authorised = client.post(
        score, json={"items": [ITEM]}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert authorised.status_code == 200 and len(authorised.json()["rewards"]) == 1


def test_an_app_mounted_under_a_prefix_still_needs_the_key(reward_app):
    outer = FastAPI()
    outer.mount("/rm", reward_app)
    with TestClient(outer) as client:
        check_default_deny(client, "/rm")


def test_an_app_behind_a_root_path_still_needs_the_key(reward_app):
    with TestClient(reward_app, root_path="/rm") as client:
        check_default_deny(client, "/rm")


def test_a_path_that_only_looks_open_needs_the_key(reward_app):
    with TestClient(reward_app) as client:
        for path in ("/health/", "/rm/health", "/healthz", "/health/../metrics"):
            assert client.get(path).status_code == 401, path
