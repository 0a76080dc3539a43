"""Property-based fuzzing of the reward server's routes: no input may produce a 5xx."""

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardforge import RewardModel
from rewardforge.serving.app import create_app
from rewardforge.serving.config import ServerSettings

KEY = "fuzz-key"
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
roles = st.sampled_from(["user", "assistant", "system", "tool", "", "Human"])
messages = st.lists(
    st.fixed_dictionaries({"role": roles | json_values, "content": st.text() | json_values}),
    max_size=4,
)
items = st.one_of(
    st.fixed_dictionaries({"prompt": st.text() | json_values, "response": st.text() | json_values}),
    st.fixed_dictionaries({"messages": messages | json_values}),
    st.dictionaries(st.sampled_from(["prompt", "response", "messages", "x"]), json_values),
    json_values,
)
score_bodies = st.one_of(
    st.fixed_dictionaries(
        {"items": st.lists(items, max_size=5)}, optional={"normalize": json_values}
    ),
    json_values,
)
reward_bodies = st.one_of(
    st.fixed_dictionaries(
        {"query": st.lists(st.text(), max_size=4) | json_values},
        optional={"prompts": st.lists(st.text(), max_size=4) | json_values, "labels": json_values},
    ),
    json_values,
)


@pytest.fixture(scope="module")
def client(tiny_reward_model_dir):
    settings_ = ServerSettings(max_items_per_request=4, max_text_chars=500)
    app = create_app(RewardModel.load(tiny_reward_model_dir), settings_, api_key=KEY)
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as test_client:
        yield test_client


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(body=score_bodies)
def test_score_never_answers_5xx(client, body):
    reply = client.post("/v1/score", json=body)
    assert reply.status_code < 500, (body, reply.text)
    if reply.status_code == 200:
        assert len(reply.json()["rewards"]) == len(body["items"])


@FUZZ
@given(body=reward_bodies)
def test_get_reward_never_answers_5xx(client, body):
    reply = client.post("/get_reward", json=body)
    assert reply.status_code < 500, (body, reply.text)


@FUZZ
@given(raw=st.binary(max_size=200), path=st.sampled_from(["/v1/score", "/get_reward"]))
def test_arbitrary_bytes_never_answer_5xx(client, raw, path):
    reply = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert reply.status_code < 500, (raw, reply.text)
