import math

import pytest
import torch

from rewardforge.forward.plan import GroupRewards
from rewardforge.training.losses import (
    loss_terms,
    plackett_luce_loss,
    preference_loss,
    preference_pairs,
)

NAN = math.nan


def padded(groups: list[list[float]], requires_grad: bool = False) -> GroupRewards:
    """Groups of different sizes as GroupRewards: padding masked out, its value 0."""
    width = max(len(group) for group in groups)
    values = torch.tensor([group + [0.0] * (width - len(group)) for group in groups])
    present = torch.tensor([[i < len(group) for i in range(width)] for group in groups])
    return GroupRewards(values.requires_grad_(requires_grad), present)


def softplus(x: float) -> float:
    return math.log(1 + math.exp(x))


def loss_of(rewards, margins=None, **options) -> float:
    rewards = torch.tensor(rewards)
    margins = torch.tensor(margins if margins is not None else [NAN] * len(rewards))
    return preference_loss(rewards, margins, **options).loss.item()


def test_bradley_terry_matches_hand_value():
    # -log(sigmoid(2.0 - 0.5)) = log(1 + e^-1.5)
    assert loss_of([[2.0, 0.5]], loss="bt") == pytest.approx(softplus(-1.5))


def test_bradley_terry_subtracts_the_data_margin():
    assert loss_of([[2.0, 0.5]], [1.0], loss="bt") == pytest.approx(softplus(-0.5))


def test_logexp_ignores_margin():
    assert loss_of([[2.0, 0.5]], [1.0], loss="logexp") == pytest.approx(softplus(-1.5))


def test_hinge_uses_default_or_data_margin():
    assert loss_of([[0.2, 0.0]], loss="hinge") == pytest.approx(0.8)
    assert loss_of([[0.2, 0.0]], [2.0], loss="hinge") == pytest.approx(1.8)
    assert loss_of([[3.0, 0.0]], loss="hinge") == pytest.approx(0.0)


def test_listwise_is_plackett_luce():
    lse_all = math.log(math.exp(3) + math.exp(1) + math.exp(0))
    lse_tail = math.log(math.exp(1) + math.exp(0))
    expected = -((3 - lse_all) + (1 - lse_tail))
    assert loss_of([[3.0, 1.0, 0.0]], loss="listwise") == pytest.approx(expected)


def test_listwise_ignores_padding_and_keeps_finite_gradients():
    rewards = padded([[3.0, 1.0], [0.5, 1.0, 2.0]], requires_grad=True)
    loss = plackett_luce_loss(rewards)
    lse = math.log(math.exp(0.5) + math.exp(1) + math.exp(2))
    second = -((0.5 - lse) + (1 - math.log(math.exp(1) + math.exp(2))))
    assert loss.item() == pytest.approx((softplus(-2.0) + second) / 2)
    loss.backward()
    assert torch.isfinite(rewards.values.grad).all()
    assert rewards.values.grad[0, 2].item() == 0.0  # padding gets no gradient


def test_all_pairs_and_adjacent_pairs_from_groups():
    rewards = padded([[3.0, 2.0, 1.0], [5.0, 4.0]])
    margins = torch.tensor([NAN, 0.5])
    every = preference_pairs(rewards, margins, "all")
    assert every.better.tolist() == [3.0, 3.0, 2.0, 5.0]
    assert every.worse.tolist() == [2.0, 1.0, 1.0, 4.0]
    adjacent = preference_pairs(rewards, margins, "adjacent")
    assert adjacent.better.tolist() == [3.0, 2.0, 5.0]
    assert adjacent.margin[-1].item() == 0.5


@pytest.mark.parametrize("loss", ["bt", "logexp", "hinge", "listwise"])
def test_a_nan_reward_is_never_taken_for_padding(loss):
    # A real NaN among present rewards makes the loss NaN (the trainer then stops); it must
    # not silently drop the pairs it is in.
    rewards = padded([[3.0, NAN, 1.0], [5.0, 4.0]])
    output = preference_loss(rewards, torch.tensor([NAN, NAN]), loss=loss)
    assert math.isnan(output.loss.item())
    finite = preference_loss(padded([[3.0, 2.0, 1.0], [5.0, 4.0]]), torch.tensor([NAN, NAN]))
    assert math.isfinite(finite.loss.item())


def test_centering_adds_squared_sum():
    plain = loss_of([[2.0, 0.5]], loss="bt")
    centred = loss_of([[2.0, 0.5]], loss="bt", center_coef=0.01)
    assert centred - plain == pytest.approx(0.01 * 2.5**2)


def test_pair_statistics():
    output = preference_loss(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([NAN, NAN]))
    assert output.accuracy.item() == 0.5
    assert output.margin.item() == pytest.approx(-0.5)
    assert output.chosen_reward.item() == pytest.approx(0.5)
    assert output.rejected_reward.item() == pytest.approx(1.0)


def test_ties_count_as_wrong():
    output = preference_loss(torch.tensor([[1.0, 1.0]]), torch.tensor([NAN]))
    assert output.accuracy.item() == 0.0


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="bt, logexp, hinge, listwise"):
        loss_of([[1.0, 0.0]], loss="dpo")


@pytest.mark.parametrize(
    ("loss", "pairs", "expected"),
    [("bt", "all", 1 + 6 + 3), ("hinge", "adjacent", 1 + 3 + 2), ("listwise", "all", 3)],
)
def test_loss_terms_count_what_the_loss_averages(loss, pairs, expected):
    assert loss_terms(torch.tensor([2, 4, 3]), loss, pairs) == expected
