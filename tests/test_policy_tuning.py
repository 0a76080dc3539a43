"""`rewardforge sft` and `dpo`: the flywheel's policy steps through TRL, a few steps each."""

import json

import pytest
from typer.testing import CliRunner

from rewardforge.cli import app
from rewardforge.data import DataError
from rewardforge.policy.tuning import dpo, sft
from rewardforge.policy.tuning_config import DPORunConfig, SFTRunConfig
from tests.conftest import moved_weights, write_jsonl

DEMONSTRATIONS = [
    {"prompt": "How do I bake bread?", "answer": "Knead, rise, bake."},
    {
        "prompt": "你好吗？",
        "response": "很好，谢谢。",
        "reward": 0.3,
        "rank": 1,
    },  # best-of-N's rows
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
    {"prompt": [{"role": "user", "content": "Name a colour."}], "answer": "Blue."},
]
PAIRS = [  # as best-of-N's --pairs-output writes them
    {
        "prompt": "How do I bake bread?",
        "chosen": "Knead, rise, bake.",
        "rejected": "No.",
        "chosen_reward": 0.4,
        "rejected_reward": -0.2,
    },
    {
        "prompt": "你好吗？",
        "chosen": "很好，谢谢。",
        "rejected": "不好。",
        "chosen_reward": 0.1,
        "rejected_reward": 0.0,
    },
]


def steps_logged(output) -> list[int]:
    records = [json.loads(line) for line in (output / "log.jsonl").open()]
    return [record["step"] for record in records if "loss" in record]


@pytest.mark.parametrize("lora", [False, True])
def test_sft_trains_on_every_row_shape_and_saves_a_plain_model(tiny_llama_dir, tmp_path, lora):
    data = write_jsonl(tmp_path / "sft.jsonl", DEMONSTRATIONS)
    config = SFTRunConfig(
        data=str(data),
        model=str(tiny_llama_dir),
        output=str(tmp_path / "sft"),
        max_steps=2,
        batch_size=2,
        lr=1e-3,
        max_length=64,
        logging_steps=1,
        lora=lora,
    )
    result = sft(config)
    assert result.metrics["train_examples"] == 4 and result.metrics["steps"] == 2
    assert steps_logged(result.output_dir) == [1, 2]
    assert not (result.output_dir / "adapter_config.json").exists()  # LoRA merged in
    config_mode = (result.output_dir / "config.json").stat().st_mode & 0o777
    for weights in result.output_dir.glob("*.safetensors"):  # readable as the config is
        assert weights.stat().st_mode & 0o777 == config_mode
    moved = moved_weights(result.output_dir, tiny_llama_dir)
    if lora:  # the adapted linear layers moved; embeddings and norms stayed frozen
        assert moved and all("proj" in name for name in moved)
        assert len(moved) == 14  # 7 linear layers in each of 2 blocks
    else:
        assert len(moved) > 14


def test_dpo_tunes_on_best_of_n_pairs(tiny_plain_llama_dir, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    config = DPORunConfig(
        data=str(data),
        model=str(tiny_plain_llama_dir),
        output=str(tmp_path / "dpo"),
        max_steps=2,
        batch_size=2,
        lr=1e-3,
        max_length=64,
        logging_steps=1,
    )
    result = dpo(config)
    assert result.metrics["train_examples"] == 2 and result.metrics["steps"] == 2
    records = [json.loads(line) for line in (result.output_dir / "log.jsonl").open()]
    assert all("rewards/chosen" in record for record in records if "loss" in record)
    assert len(moved_weights(result.output_dir, tiny_plain_llama_dir)) > 14


def test_bad_demonstration_rows_are_named(tmp_path):
    data = write_jsonl(tmp_path / "sft.jsonl", [DEMONSTRATIONS[0], {"prompt": "no answer"}])
    with pytest.raises(DataError, match="sft.jsonl: line 2: a row needs 'prompt' and 'answer'"):
        sft(SFTRunConfig(data=str(data), output=str(tmp_path / "out")))


@pytest.mark.parametrize("command", ["sft", "dpo"])
def test_cli_commands(tiny_llama_dir, tmp_path, command):
    rows = DEMONSTRATIONS if command == "sft" else PAIRS
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    flags = [command, "--data", str(data), "--model", str(tiny_llama_dir), "--max-steps", "1"]
    flags += ["--batch-size", "2", "--max-length", "64", "--output", str(tmp_path / command)]
    result = CliRunner().invoke(app, flags)
    assert result.exit_code == 0, result.output
    assert f"{command}: 1 steps on " in result.output


def test_sft_runs_in_two_processes_under_accelerate_launch(tiny_llama_dir, tmp_path):
    from tests.conftest import accelerate_launch

    data = write_jsonl(tmp_path / "sft.jsonl", DEMONSTRATIONS * 4)
    output = tmp_path / "ddp"
    flags = f"--data {data} --model {tiny_llama_dir} --max-steps 2 --batch-size 2"
    stdout = accelerate_launch(
        "--multi_gpu --dynamo_backend no", f"sft {flags} --max-length 64 --output {output}"
    )
    assert stdout.count("sft: 2 steps on 16 examples") == 1  # the main process reports
    assert json.loads((output / "metrics.json").read_text())["steps"] == 2
    assert len(moved_weights(output, tiny_llama_dir)) > 14


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["sft"], "error: sft needs"),
        (["sft", "--data", "x.jsonl", "--lr", "-1"], "error: --lr must be above 0"),
        (["dpo", "--data", "x.jsonl", "--beta", "0"], "error: --beta must be above 0"),
        (["dpo", "--config", "nope.yaml"], "error: nope.yaml: no such file."),
    ],
)
def test_a_settings_mistake_is_one_line_not_an_internal_error(command, message, tmp_path):
    """The settings check ran inside a second or_exit: "internal error: Exit" and a crash
    report followed the right line."""
    from typer.testing import CliRunner

    from rewardforge.cli import app

    result = CliRunner().invoke(app, [*command, "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.output


def test_sft_prints_no_deprecation_warnings(tiny_llama_dir, tmp_path):
    """TRL's configs and trainers use transformers' old gradient_checkpointing names; the
    `rewardforge` command passes the new one and keeps their FutureWarnings off the screen."""
    import subprocess
    import sys
    from pathlib import Path

    data = write_jsonl(
        tmp_path / "demo.jsonl", [{"prompt": f"q{i}", "answer": "a"} for i in range(8)]
    )
    command = [str(Path(sys.executable).parent / "rewardforge"), "sft", "--model"]
    command += [str(tiny_llama_dir), "--data", str(data), "--output", str(tmp_path / "sft")]
    done = subprocess.run(
        [*command, "--max-steps", "1", "--lora"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "deprecated" not in done.stderr and "FutureWarning" not in done.stderr
    assert "train_runtime" not in done.stdout + done.stderr  # the Trainer's closing dict
    assert done.stdout.strip().splitlines()[-1].startswith("sft: 1 steps on 8 examples")
