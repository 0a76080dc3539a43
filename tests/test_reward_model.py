import pytest

from rewardforge import RewardModel


@pytest.fixture(scope="module")
def reward_model(tiny_reward_model_dir) -> RewardModel:
    return RewardModel.load(tiny_reward_model_dir)


def test_score_returns_one_float_per_pair(reward_model):
    rewards = reward_model.score(["Hi", [{"role": "user", "content": "你好"}]], ["Hello", "你好！"])
    assert len(rewards) == 2 and all(isinstance(r, float) for r in rewards)


def test_normalised_scores_use_the_stored_statistics(reward_model):
    raw = reward_model.score(["Hi"], ["Hello"])[0]
    normalised = reward_model.score(["Hi"], ["Hello"], normalize=True)[0]
    recipe = reward_model.recipe
    assert normalised == pytest.approx((raw - recipe.reward_mean) / recipe.reward_std)


def test_compare_and_rank_agree_with_scores(reward_model):
    candidates = ["Sure.", "No.", "Let me explain step by step."]
    rewards = reward_model.score(["Help?"] * 3, candidates)
    ranking = reward_model.rank("Help?", candidates)
    assert [index for index, _ in ranking] == sorted(range(3), key=lambda i: -rewards[i])
    probability = reward_model.compare("Help?", candidates[0], candidates[1])
    assert (probability > 0.5) == (rewards[0] > rewards[1])
    assert reward_model.compare("Help?", candidates[0], candidates[0]) == pytest.approx(0.5)


def test_mismatched_lengths_are_rejected(reward_model):
    with pytest.raises(ValueError, match="one prompt per response"):
        reward_model.score(["a", "b"], ["only one"])
