import pytest

from rewardforge import PreferenceExample, evaluate
from rewardforge.training.metrics import pairwise_metrics


def test_pairwise_metrics_by_hand():
    metrics = pairwise_metrics([[2.0, 1.0], [0.0, 0.0], [1.0, 3.0], [3.0, 2.0, 1.0]])
    # margins: 1, 0 (tie = wrong), -2, and 1, 2, 1 from the 3-way group
    assert metrics["n_pairs"] == 6
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["mean_margin"] == pytest.approx(3 / 6)


def test_pairwise_metrics_needs_pairs():
    with pytest.raises(ValueError, match="No preference pairs"):
        pairwise_metrics([[1.0]])


def test_evaluate_matches_scoring(tiny_llama_dir, tmp_path, hh_dev_file):
    from rewardforge import RewardModel, TrainConfig, load_preferences, train

    config = TrainConfig(
        data=[str(hh_dev_file)],
        model=str(tiny_llama_dir),
        output=str(tmp_path / "rm"),
        batch_pairs=4,
        max_steps=1,
        max_length=64,
    )
    model = RewardModel.load(train(config).output_dir)
    metrics = evaluate(model, hh_dev_file, progress=False)
    examples: list[PreferenceExample] = load_preferences(hh_dev_file).examples
    chosen = model.score([e.prompt for e in examples], [e.chosen for e in examples])
    rejected = model.score([e.prompt for e in examples], [e.rejected for e in examples])
    wins = sum(c > r for c, r in zip(chosen, rejected))
    assert metrics["n_pairs"] == 12 and metrics["accuracy"] == pytest.approx(wins / 12)
