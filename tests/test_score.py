import json

import pytest

from rewardforge import RewardModel
from rewardforge.data import DataError
from rewardforge.scoring.score import score_file

ROWS = [
    {"id": "a", "prompt": "How do I bake bread?", "response": "Knead, rise, bake."},
    {
        "id": "b",
        "messages": [
            {"role": "user", "content": "你好"},
            {"role": "assistant", "content": "你好！有什么可以帮你？"},
        ],
    },
    {"id": "c", "prompt": [{"role": "user", "content": "Hi"}], "response": "Hello! " * 30},
]


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_rewards_in_input_order_equal_the_api(tiny_reward_model_dir, tmp_path):
    source = write(tmp_path / "in.jsonl", [json.dumps(r, ensure_ascii=False) for r in ROWS])
    report = score_file(tiny_reward_model_dir, source, tmp_path / "out.jsonl", progress=False)
    out = read(tmp_path / "out.jsonl")
    assert report.scored == 3 and report.rejected == 0 and report.rejects_path is None
    assert [row["id"] for row in out] == ["a", "b", "c"]
    assert out[1]["messages"] == ROWS[1]["messages"]
    model = RewardModel.load(tiny_reward_model_dir)
    expected = model.score(
        ["How do I bake bread?", [{"role": "user", "content": "你好"}], ROWS[2]["prompt"]],
        ["Knead, rise, bake.", "你好！有什么可以帮你？", ROWS[2]["response"]],
    )
    assert [row["reward"] for row in out] == pytest.approx(expected, abs=1e-5)


def test_normalized_rewards_use_the_stored_statistics(tiny_reward_model_dir, tmp_path):
    source = write(tmp_path / "in.jsonl", [json.dumps(ROWS[0])])
    score_file(tiny_reward_model_dir, source, tmp_path / "raw.jsonl", progress=False)
    score_file(
        tiny_reward_model_dir, source, tmp_path / "norm.jsonl", normalize=True, progress=False
    )
    recipe = RewardModel.load(tiny_reward_model_dir).recipe
    raw, norm = (
        read(tmp_path / "raw.jsonl")[0]["reward"],
        read(tmp_path / "norm.jsonl")[0]["reward"],
    )
    assert norm == pytest.approx((raw - recipe.reward_mean) / recipe.reward_std)


def test_bad_rows_stop_the_run_with_their_lines(tiny_reward_model_dir, tmp_path):
    source = write(tmp_path / "in.jsonl", [json.dumps(ROWS[0]), "{oops", '{"prompt": "p"}'])
    with pytest.raises(DataError) as error:
        score_file(tiny_reward_model_dir, source, tmp_path / "out.jsonl", progress=False)
    assert f"{source}: line 2: invalid JSON" in str(error.value)
    assert f"{source}: line 3: missing key 'response'" in str(error.value)
    assert not (tmp_path / "out.jsonl").exists()


def test_skip_invalid_writes_rejects_and_loses_nothing(tiny_reward_model_dir, tmp_path):
    source = write(tmp_path / "in.jsonl", [json.dumps(ROWS[0]), "{oops", '{"prompt": "p"}'])
    report = score_file(
        tiny_reward_model_dir, source, tmp_path / "out.jsonl", skip_invalid=True, progress=False
    )
    assert (report.scored, report.rejected) == (1, 2)
    rejects = read(report.rejects_path)
    assert [item["line"] for item in rejects] == [2, 3]
    assert rejects[1]["row"] == {"prompt": "p"} and "missing key" in rejects[1]["error"]
    assert len(read(tmp_path / "out.jsonl")) + len(rejects) == 3


def test_reference_rows_are_scored_against_their_reference(tiny_reference_model_dir, tmp_path):
    rows = [
        {"prompt": "天气？", "reference": "晴。", "response": "晴天。"},
        {"prompt": "Egg?", "reference": "9 minutes.", "response": "Ten minutes."},
        {"prompt": "Egg?", "response": "No reference here."},
    ]
    source = write(tmp_path / "in.jsonl", [json.dumps(r, ensure_ascii=False) for r in rows])
    with pytest.raises(DataError, match="line 3: the row has no 'reference'"):
        score_file(tiny_reference_model_dir, source, tmp_path / "out.jsonl", progress=False)
    report = score_file(
        tiny_reference_model_dir, source, tmp_path / "out.jsonl", skip_invalid=True, progress=False
    )
    assert (report.scored, report.rejected) == (2, 1)
    expected = RewardModel.load(tiny_reference_model_dir).score(
        ["天气？", "Egg?"], ["晴天。", "Ten minutes."], ["晴。", "9 minutes."]
    )
    assert [row["reward"] for row in read(tmp_path / "out.jsonl")] == pytest.approx(expected)


def test_a_plain_model_rejects_rows_with_a_reference(tiny_reward_model_dir, tmp_path):
    row = {"prompt": "Egg?", "reference": "9 minutes.", "response": "Ten minutes."}
    source = write(tmp_path / "in.jsonl", [json.dumps(row)])
    with pytest.raises(DataError, match="line 1: the row has a 'reference'"):
        score_file(tiny_reward_model_dir, source, tmp_path / "out.jsonl", progress=False)


def test_a_normal_score_run_prints_only_its_own_bar_and_line(tiny_reward_model_dir, tmp_path):
    """The `rewardforge` command itself: no transformers "Loading weights" bar, no warnings;
    rewardforge's own bar counts responses."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "Hi", "response": "Hello."}\n', encoding="utf-8")
    command = [str(Path(sys.executable).parent / "rewardforge"), "score", "--model"]
    command += [str(tiny_reward_model_dir), "--input", str(rows), "--output", str(tmp_path / "o")]
    environment = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"scored 1 rows -> {tmp_path / 'o'}"
    bars = [part for part in done.stderr.replace("\r", "\n").splitlines() if part.strip()]
    assert bars and all(part.startswith("Scoring:") for part in bars), done.stderr
    assert "response/s" in done.stderr and "Warning" not in done.stderr
