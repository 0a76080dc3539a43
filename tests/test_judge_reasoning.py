"""Reasoning judges: written verdicts parsed, the GRPO reward on hand-made replies, votes
counted with unparsed replies apart, and a short GRPO run through the CLI."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from rewardforge import RewardModel, TrainConfig
from rewardforge.data.example import PreferenceExample
from rewardforge.errors import UserError
from rewardforge.policy.judge_reasoning import reasoning_rows, verdict_reward
from rewardforge.recipe.judge_prompt import REASONING, JudgePrompt
from rewardforge.scoring.judge import Judge, position_bias
from rewardforge.scoring.written_verdicts import question_text
from tests.conftest import write_jsonl

JUDGE = JudgePrompt.reasoning()


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("Answer A explains the steps; B is off topic.\nVerdict: A", "A"),
        ("Both are short. verdict: **B**", "B"),
        ("First I thought Verdict: A, but on reflection\nVerdict: B", "B"),  # the last one
        ("[[A]]", "A"),  # as many published judges write it
        ("回答 B 更准确。\nVerdict：B", "B"),  # a full-width colon
        ("I prefer A.", None),  # no verdict in the format
        ("Verdict: C", None),  # not a verdict word
        ("Verdict: Apple", None),  # a word that only starts like one
        ("", None),
    ],
)
def test_written_verdicts_are_parsed_or_counted_missing(reply, verdict):
    assert JUDGE.parse_verdict(reply) == verdict


def test_the_grpo_reward_is_right_wrong_or_unformatted():
    reward = verdict_reward(JUDGE)
    completions = [
        "A is correct and complete.\nVerdict: A",
        [{"role": "assistant", "content": "B is vague.\nVerdict: A"}],  # conversational
        "A is better.",
        "Verdict: A",
    ]
    labels = ["A", "B", "A", "B"]
    assert reward(prompts=[None] * 4, completions=completions, label=labels) == [
        1.0,
        0.0,
        -1.0,
        0.0,
    ]


def test_reasoning_rows_ask_both_orders_with_the_right_label():
    example = PreferenceExample("2+2?", ("4", "5", "22"))
    rows = reasoning_rows(JUDGE, [example], chat=True)
    assert len(rows) == 4  # the best against each of two others, in both orders
    for row, (first, second, label) in zip(
        rows, [("4", "5", "A"), ("5", "4", "B"), ("4", "22", "A"), ("22", "4", "B")]
    ):
        assert row["label"] == label
        assert row["prompt"] == [
            {
                "role": "user",
                "content": REASONING.format(prompt="2+2?", answer_a=first, answer_b=second),
            }
        ]
    assert reasoning_rows(JUDGE, [example], chat=False)[0]["prompt"] == question_text(
        JUDGE, "2+2?", "4", "5"
    )


class ScriptedWriter:
    """A stand-in for the judge's language model: the replies it writes are given."""

    tokenizer = SimpleNamespace(chat_template=None)  # its questions come as plain text

    def __init__(self, replies: dict[str, list[str]]) -> None:
        self.replies = replies

    def sample_batch(self, prompts, n, settings):
        return [self.replies[prompt][:n] for prompt in prompts]


def test_votes_become_log_odds_and_unparsed_replies_are_counted_apart():
    in_order = question_text(JUDGE, "q", "good", "bad")
    swapped = question_text(JUDGE, "q", "bad", "good")
    writer = ScriptedWriter(
        {
            in_order: ["Verdict: A", "Verdict: A", "no verdict here"],
            swapped: ["Verdict: B", "Verdict: A", "Verdict: B"],
        }
    )
    judge = Judge.writing(writer, JUDGE)
    (verdict,) = judge.judge_pairs(["q"], ["good"], ["bad"], samples=3)
    assert verdict.in_order == pytest.approx(math.log(2.5 / 0.5))  # 2 for A, 0 for B
    assert verdict.swapped == pytest.approx(math.log(1.5 / 2.5))  # 1 for A, 2 for B
    assert verdict.replies == 6 and verdict.unparsed == 1
    assert verdict.first_better > 0.5 and not verdict.same_position
    always_a = ScriptedWriter({in_order: ["Verdict: A"], swapped: ["Verdict: A"]})
    verdicts = Judge.writing(always_a, JUDGE).judge_pairs(["q"], ["good"], ["bad"])
    assert position_bias(verdicts) == 1.0


def test_a_reasoning_judge_trains_with_grpo_and_evaluates_by_writing(tiny_llama_dir, tmp_path):
    from typer.testing import CliRunner

    from rewardforge.cli import app

    rows = [
        {"prompt": "Can you help?", "chosen": "Yes, gladly.", "rejected": "No."},
        {"prompt": "能帮我吗？", "chosen": "当然可以。", "rejected": "不行。"},
    ]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    output = tmp_path / "judge"
    flags = ["--data", str(data), "--eval-data", str(data), "--model", str(tiny_llama_dir)]
    flags += ["--kind", "generative", "--judge-style", "reasoning", "--max-steps", "2"]
    flags += ["--batch-pairs", "2", "--generations", "2", "--max-new-tokens", "8"]
    result = CliRunner().invoke(app, ["train", *flags, "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "judge: 2 steps on 4 questions" in result.stdout
    # an untrained tiny model writes no verdict: counted, not taken as a vote
    assert "judge, 2 pairs asked in both orders" in result.stdout
    assert "100% of 4 replies without a verdict" in result.stdout
    recipe = json.loads((output / "rewardforge_recipe.json").read_text())
    assert recipe["judge"]["style"] == "reasoning" and recipe["judge"]["pairwise"] == REASONING
    with pytest.raises(UserError, match="is a reasoning judge: it writes a verdict"):
        RewardModel.load(output)
    report = tmp_path / "report"
    evaluated = CliRunner().invoke(
        app,
        ["eval", "--model", str(output), "--data", str(data), "--samples", "2"]
        + ["--report", str(report)],
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "of 8 replies without a verdict" in evaluated.stdout
    assert f"report: {report / 'metrics.json'}" in evaluated.stdout
    written = json.loads((report / "metrics.json").read_text())
    assert written["judge"]["replies"] == 8 and written["judge"]["unparsed_rate"] == 1.0


def test_train_config_bounds_the_reasoning_flags():
    with pytest.raises(UserError, match="--generations must be at least 2"):
        TrainConfig(kind="generative", judge_style="reasoning", generations=1)
