"""Best-of-N by a knockout over pairs: the judge's preferred answer wins in N - 1 comparisons,
each asked in both orders, and `best-of-n --knockout` writes the winner a judge picks."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from rewardforge.cli import app
from rewardforge.data.prompt_rows import read_prompts_with_references
from rewardforge.generation.best_of_n import best_of_n
from rewardforge.generation.knockout import knockout
from rewardforge.models.policy import Policy, SamplingSettings
from rewardforge.scoring.judge import Judge
from rewardforge.scoring.pair_verdict import PairVerdict

runner = CliRunner()


class QualityJudge:
    """A stand-in judge that prefers the answer of higher hidden quality, in both orders, and
    records each call's pairs."""

    writer = None

    def __init__(self, quality: dict[str, float], position_bias: float = 0.0) -> None:
        self.quality, self.bias, self.calls = quality, position_bias, []

    def judge_pairs(self, prompts, answers_1, answers_2, **asking):
        self.calls.append(list(zip(answers_1, answers_2)))
        return [
            PairVerdict(
                self.quality[a] - self.quality[b] + self.bias,
                self.quality[b] - self.quality[a] + self.bias,
            )
            for a, b in zip(answers_1, answers_2)
        ]


@pytest.mark.parametrize("count", [2, 3, 5, 8])
def test_the_best_answer_wins_in_n_minus_one_comparisons(count):
    answers = [f"answer {i}" for i in range(count)]
    quality = {answer: float((7 * i) % count) for i, answer in enumerate(answers)}
    judge = QualityJudge(quality)
    result = knockout(judge, "q", answers)
    assert answers[result.winner] == max(answers, key=quality.get)
    assert len(result.matches) == sum(len(call) for call in judge.calls) == count - 1
    assert len(judge.calls) == math.ceil(math.log2(count))  # one judge call per round
    assert all(match.winner_probability > 0.5 for match in result.winner_matches)


def test_a_judge_that_always_says_a_cancels_out_and_the_bracket_order_decides():
    answers = ["first", "second", "third", "fourth"]
    judge = QualityJudge(dict.fromkeys(answers, 0.0), position_bias=3.0)  # always "A"
    result = knockout(judge, "q", answers)
    # both orders averaged: P = 0.5 each time, so the answer shown first goes on
    assert result.winner == 0
    assert all(match.first_better == pytest.approx(0.5) for match in result.matches)


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_best_of_n_with_a_knockout_writes_the_winner_the_judge_picks(tiny_llama_dir, tmp_path):
    critic = tmp_path / "critic"
    adopted = runner.invoke(
        app,
        ["adopt", "--source", str(tiny_llama_dir), "--output", str(critic)]
        + ["--reward-format", "judge", "--judge-template", "skywork-critic"],
    )
    assert adopted.exit_code == 0, adopted.output
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "How do I bake bread?"}\n', encoding="utf-8")
    sampling = SamplingSettings(max_new_tokens=8, temperature=1.0, top_p=1.0)
    policy = Policy.load(str(tiny_llama_dir))
    judge = Judge.load(critic)
    report = best_of_n(
        policy,
        judge,
        prompts,
        tmp_path / "sft.jsonl",
        n=4,
        pairs_output_path=tmp_path / "pairs.jsonl",
        sampling=sampling,
        progress=False,
        knockout=True,
    )
    assert (report.prompts_done, report.sft_rows) == (1, 1)
    # the bracket replayed by hand: (0, 1) and (2, 3), then their winners
    ((line, prompt, _),) = read_prompts_with_references(prompts)
    answers = policy.sample(prompt, 4, replace(sampling, seed=sampling.seed + line))

    def winner(a: int, b: int) -> tuple[int, float]:
        (verdict,) = judge.judge_pairs(["How do I bake bread?"], [answers[a]], [answers[b]])
        p = verdict.first_better
        return (a, p) if p >= 0.5 else (b, 1 - p)

    (left, p_left), (right, p_right) = winner(0, 1), winner(2, 3)
    final, p_final = winner(left, right)
    (row,) = read(tmp_path / "sft.jsonl")
    assert row["response"] == answers[final] and row["wins"] == 2
    first_win = p_left if final == left else p_right
    assert row["judge_probability"] == pytest.approx((first_win + p_final) / 2, abs=1e-6)
    (pair,) = read(tmp_path / "pairs.jsonl")
    assert pair["chosen"] == answers[final]
    assert pair["judge_probability"] == pytest.approx(max(first_win, p_final), abs=1e-6)


def test_knockout_keeps_one_answer(tmp_path):
    result = runner.invoke(
        app,
        ["best-of-n", "--policy", "p", "--reward-model", "j", "--prompts", "x.jsonl"]
        + ["--output", str(tmp_path / "o.jsonl"), "--knockout", "--top-k", "2"],
    )
    assert result.exit_code == 2
    assert result.output == "error: --knockout finds one best answer; use it with --top-k 1.\n"
