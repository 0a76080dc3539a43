"""`RemoteRewardModel` rides out a server's hiccups and names the server when it gives up."""

import logging

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from rewardforge import RemoteRewardModel
from rewardforge.errors import UserError
from tests.conftest import running_server


def flaky_server(failures: int) -> tuple[FastAPI, list[int]]:
    """A /v1/score that answers 503 `failures` times, then scores every item 0.5."""
    app = FastAPI()
    calls: list[int] = []

    @app.post("/v1/score")
    async def score(body: dict):
        calls.append(len(body["items"]))
        if len(calls) <= failures:
            return JSONResponse({"detail": "overloaded"}, status_code=503)
        return {"rewards": [0.5] * len(body["items"])}

    return app, calls


def test_a_server_that_fails_twice_then_answers_is_retried(caplog):
    app, calls = flaky_server(failures=2)
    with running_server(app) as url, caplog.at_level(logging.WARNING):
        remote = RemoteRewardModel(url, retries=3, backoff_s=0.01)
        assert remote.score(["Hi", "Yo"], ["Hello!", "Hey"]) == [0.5, 0.5]
    assert calls == [2, 2, 2]
    retries = [record.getMessage() for record in caplog.records if "retry" in record.getMessage()]
    assert len(retries) == 2 and "status 503" in retries[0] and "retry 1 of 3" in retries[0]


def test_a_server_that_keeps_failing_is_one_line_naming_it_and_the_status():
    app, calls = flaky_server(failures=100)
    with running_server(app) as url:
        remote = RemoteRewardModel(url, retries=2, backoff_s=0.01)
        with pytest.raises(UserError) as failed:
            remote.score(["Hi"], ["Hello!"])
    assert len(calls) == 3
    message = str(failed.value)
    assert message.startswith(f"the reward server at {url} failed 3 times, last with status 503")
    assert "\n" not in message


def test_a_server_that_is_not_there_is_retried_then_named():
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UserError, match=f"the reward server at {url} failed 2 times, last with no"):
        RemoteRewardModel(url, retries=1, backoff_s=0.01).score(["Hi"], ["Hello!"])
