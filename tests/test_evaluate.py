import pytest

from rewardforge import RewardModel, evaluate, load_preferences


def test_evaluate_matches_scoring(tiny_reward_model_dir, hh_dev_file):
    model = RewardModel.load(tiny_reward_model_dir)
    metrics = evaluate(model, hh_dev_file, progress=False)
    examples = load_preferences(hh_dev_file).examples
    chosen = model.score([e.prompt for e in examples], [e.chosen for e in examples])
    rejected = model.score([e.prompt for e in examples], [e.rejected for e in examples])
    wins = sum(c > r for c, r in zip(chosen, rejected))
    assert metrics["n_pairs"] == 12 and metrics["accuracy"] == pytest.approx(wins / 12)
    margin = sum(c - r for c, r in zip(chosen, rejected)) / 12
    assert metrics["mean_margin"] == pytest.approx(margin, abs=1e-5)
    assert metrics["formats"] == {str(hh_dev_file): "implicit"}


def test_evaluate_accepts_a_directory(tiny_reward_model_dir, hh_dev_file):
    assert evaluate(tiny_reward_model_dir, hh_dev_file, progress=False)["n_examples"] == 12
