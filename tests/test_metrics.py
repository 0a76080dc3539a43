import pytest

from rewardforge.training.metrics import pairwise_metrics


def test_pairwise_metrics_by_hand():
    metrics = pairwise_metrics([[2.0, 1.0], [0.0, 0.0], [1.0, 3.0], [3.0, 2.0, 1.0]])
    # margins: 1, 0 (tie = wrong), -2, and 1, 2, 1 from the 3-way group
    assert metrics["n_pairs"] == 6
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["mean_margin"] == pytest.approx(3 / 6)
    softplus = [0.313262, 0.693147, 2.126928, 0.313262, 0.126928, 0.313262]  # log(1 + e^-m)
    assert metrics["loss"] == pytest.approx(sum(softplus) / 6, abs=1e-5)


def test_pairwise_metrics_needs_pairs():
    with pytest.raises(ValueError, match="No preference pairs"):
        pairwise_metrics([[1.0]])
