import math

import pytest

from rewardforge.evaluation.diagnostics import (
    ScoredExample,
    best_of_n_accuracy,
    bootstrap_accuracy_interval,
    calibration,
    category_accuracy,
    diagnose,
    length_bias,
    mean_kendall_tau,
)

RIGHT = ScoredExample((2.0, 1.0), (10, 5), "x", "f:1")  # right, chosen longer
WRONG = ScoredExample((0.0, 1.0), (3, 8), "x", "f:2")  # wrong, chosen shorter
TIE = ScoredExample((1.0, 1.0), (4, 4), "y", "f:3")  # a tie counts as wrong, same length
GROUP = ScoredExample((3.0, 1.0, 2.0), (6, 2, 9), "y", "f:4")  # pairs 01 and 02 right, 12 wrong
EXAMPLES = [RIGHT, WRONG, TIE, GROUP]


def test_accuracy_counts_pairs_and_ties_as_wrong():
    metrics = diagnose(EXAMPLES)
    assert metrics["n_pairs"] == 6 and metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["n_examples"] == 4


def test_categories_have_their_own_accuracy():
    categories = category_accuracy(EXAMPLES)
    assert categories["x"]["accuracy"] == pytest.approx(1 / 2) and categories["x"]["n_pairs"] == 2
    assert categories["y"]["accuracy"] == pytest.approx(2 / 4) and categories["y"]["n_pairs"] == 4
    assert category_accuracy([ScoredExample((1.0, 0.0), (1, 1))]) == {}


def test_bootstrap_interval():
    assert bootstrap_accuracy_interval([RIGHT] * 5) == (1.0, 1.0)
    low, high = bootstrap_accuracy_interval([RIGHT, WRONG] * 20, seed=3)
    assert 0.0 < low < 0.5 < high < 1.0
    assert bootstrap_accuracy_interval([RIGHT, WRONG] * 20, seed=3) == (low, high)


def test_best_of_n_splits_credit_between_ties():
    tied_top = ScoredExample((1.0, 1.0, 0.0), (1, 1, 1))
    best_last = ScoredExample((0.0, 1.0, 2.0), (1, 1, 1))
    assert best_of_n_accuracy([GROUP]) == 1.0
    assert best_of_n_accuracy([GROUP, tied_top, best_last]) == pytest.approx((1 + 0.5 + 0) / 3)


def test_kendall_tau_against_the_given_order():
    # (3, 1, 2) against the order (best, middle, worst): 2 concordant pairs, 1 discordant.
    assert mean_kendall_tau([GROUP]) == pytest.approx(1 / 3)
    reversed_group = ScoredExample((0.0, 1.0, 2.0), (1, 1, 1))
    assert mean_kendall_tau([GROUP, reversed_group]) == pytest.approx((1 / 3 - 1) / 2)


def test_length_bias_splits_pairs_by_which_response_is_longer():
    bias = length_bias(EXAMPLES)
    assert bias["chosen_longer"] == {"accuracy": 1.0, "n_pairs": 2}  # RIGHT, GROUP 0-1
    assert bias["chosen_shorter"]["n_pairs"] == 3  # WRONG, GROUP 0-2, GROUP 1-2
    assert bias["chosen_shorter"]["accuracy"] == pytest.approx(1 / 3)
    assert bias["same_length"] == {"accuracy": 0.0, "n_pairs": 1}


def test_length_correlations():
    follows_length = [ScoredExample((3.0, 1.0), (30, 10)), ScoredExample((2.0, 4.0), (20, 40))]
    bias = length_bias(follows_length)
    assert bias["pearson"] == pytest.approx(1.0) and bias["spearman"] == pytest.approx(1.0)
    constant = length_bias([ScoredExample((1.0, 1.0), (3, 5))])
    assert constant["pearson"] is None and constant["spearman"] is None


def test_calibration_error_by_hand():
    # diff 0 -> p 0.5 in both orders (gap 0); diff ln 3 -> p 0.75 (won) and 0.25 (lost): gap 0.25.
    pairs = [ScoredExample((0.0, 0.0), (1, 1)), ScoredExample((math.log(3), 0.0), (1, 1))]
    result = calibration(pairs)
    assert result["ece"] == pytest.approx(0.25 * 2 / 4)
    bins = {round(b["low"], 1): b for b in result["bins"]}
    assert set(bins) == {0.2, 0.5, 0.7}
    assert bins[0.5]["count"] == 2 and bins[0.5]["win_rate"] == 0.5
    assert bins[0.7]["mean_probability"] == pytest.approx(0.75) and bins[0.7]["win_rate"] == 1.0


def test_ranking_metrics_only_for_groups_of_three_or_more():
    assert "ranking" not in diagnose([RIGHT, WRONG])
    assert diagnose(EXAMPLES)["ranking"]["n_groups"] == 1
