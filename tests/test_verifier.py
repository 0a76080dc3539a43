import pytest

from rewardforge import RewardModel
from rewardforge.generation.verifier import Verifier

ANSWERS = ["No.", "Sure, here is how: knead the dough, let it rise, then bake it.", "Maybe."]


@pytest.fixture(scope="module")
def judge(tiny_reward_model_dir):
    return RewardModel.load(tiny_reward_model_dir)


def scripted(answers):
    calls = []

    def generate(prompt, number):
        calls.append(number)
        return answers[number]

    return generate, calls


def test_returns_the_first_answer_over_the_threshold(judge):
    rewards = judge.score(["Bake bread?"] * 3, ANSWERS)
    threshold = rewards[1]
    generate, calls = scripted(ANSWERS)
    verdict = Verifier(judge, threshold, max_attempts=3)("Bake bread?", generate)
    expected = next(i for i, reward in enumerate(rewards) if reward >= threshold)
    assert verdict.accepted and verdict.answer == ANSWERS[expected]
    assert calls == list(range(expected + 1))
    assert [a.reward for a in verdict.attempts] == pytest.approx(rewards[: expected + 1])


def test_falls_back_after_max_attempts_and_reports_them_all(judge):
    generate, calls = scripted(ANSWERS)
    verifier = Verifier(judge, threshold=1e9, max_attempts=2, fallback="请稍后再试。")
    verdict = verifier("Bake bread?", generate)
    assert not verdict.accepted and verdict.used_fallback and verdict.answer == "请稍后再试。"
    assert calls == [0, 1] and [a.answer for a in verdict.attempts] == ANSWERS[:2]
    assert not any(attempt.accepted for attempt in verdict.attempts)


def test_normalized_threshold(judge):
    raw = judge.score(["Bake bread?"], [ANSWERS[1]])[0]
    normalized = judge.recipe.normalize(raw)
    generate, _ = scripted(ANSWERS[1:])
    verdict = Verifier(judge, normalized, max_attempts=1, normalized=True)("Bake bread?", generate)
    assert verdict.accepted and verdict.attempts[0].reward == pytest.approx(normalized)


def test_max_attempts_must_be_positive(judge):
    with pytest.raises(ValueError, match="max_attempts"):
        Verifier(judge, 0.0, max_attempts=0)
