"""rewardforge as verl's custom reward function: verl's call, the reward model's scores."""

from __future__ import annotations

import pytest

from rewardforge import RewardModel
from rewardforge.errors import UserError
from rewardforge.policy import verl_reward
from rewardforge.policy.verl_reward import compute_score, compute_score_batch

PROMPTS = ["How do I boil an egg?", [{"role": "user", "content": "你好"}]]
RESPONSES = ["Eight minutes in boiling water.", "你好！有什么可以帮你？"]


@pytest.fixture(autouse=True)
def fresh_models():
    verl_reward._loaded.cache_clear()
    yield
    verl_reward._loaded.cache_clear()


def test_verls_calls_get_the_reward_models_scores(tiny_reward_model_dir):
    """verl's naive manager calls per row with keywords, its batch manager with lists."""
    expected = RewardModel.load(tiny_reward_model_dir).score(PROMPTS, RESPONSES)
    infos = [{"prompt": PROMPTS[0]}, {"question": PROMPTS[1]}]
    single = [
        compute_score(
            data_source="hh",
            solution_str=response,
            ground_truth=None,
            extra_info=info,
            reward_model=str(tiny_reward_model_dir),
        )
        for response, info in zip(RESPONSES, infos)
    ]
    batch = compute_score_batch(
        data_sources=["hh", "hh"],
        solution_strs=RESPONSES,
        ground_truths=[None, None],
        extra_infos=infos,
        reward_model=str(tiny_reward_model_dir),
    )
    assert single == pytest.approx(expected, abs=1e-5)
    assert batch == pytest.approx(expected, abs=1e-5)


def test_a_served_model_named_by_the_environment(live_server, tiny_reward_model_dir, monkeypatch):
    monkeypatch.setenv(verl_reward.MODEL_VARIABLE, live_server)
    expected = RewardModel.load(tiny_reward_model_dir).score(PROMPTS, RESPONSES)
    rewards = compute_score_batch(
        ["hh", "hh"],
        RESPONSES,
        [None, None],
        [{"prompt": prompt} for prompt in PROMPTS],
        reward_api_key_env="RM_KEY",
    )
    assert rewards == pytest.approx(expected, abs=1e-5)


def test_a_row_without_a_prompt_or_a_model_is_one_line(tiny_reward_model_dir, monkeypatch):
    with pytest.raises(UserError, match="row 1 of verl's batch has no prompt"):
        compute_score_batch(["a", "b"], ["x", "y"], [None, None], [{"prompt": "p"}, {}])
    monkeypatch.delenv(verl_reward.MODEL_VARIABLE, raising=False)
    with pytest.raises(UserError, match="name the reward model"):
        compute_score("a", "x", None, {"prompt": "p"})


def test_a_reference_based_model_reads_verls_ground_truth(tiny_reference_model_dir):
    """verl's `ground_truth` is the reference answer a POLAR-style model compares with."""
    model = RewardModel.load(tiny_reference_model_dir)
    references = ["Boil it for eight minutes.", "你好！"]
    expected = model.score(PROMPTS, RESPONSES, references)
    rewards = compute_score_batch(
        data_sources=["hh", "hh"],
        solution_strs=RESPONSES,
        ground_truths=references,
        extra_infos=[{"prompt": prompt} for prompt in PROMPTS],
        reward_model=str(tiny_reference_model_dir),
    )
    assert rewards == pytest.approx(expected, abs=1e-5)
