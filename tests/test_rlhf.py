"""`rewardforge rlhf`: TRL's GRPO and RLOO against a rewardforge reward model, a few steps."""

import json

import pytest
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from rewardforge.api.rlhf import rlhf
from rewardforge.api.rlhf_config import RLHFConfig
from rewardforge.cli import app
from rewardforge.errors import UserError
from tests.conftest import write_jsonl


@pytest.fixture
def prompt_files(tmp_path):
    train = write_jsonl(
        tmp_path / "prompts.jsonl", [{"prompt": f"Question {i}?"} for i in range(6)]
    )
    held_out = write_jsonl(
        tmp_path / "held_out.jsonl",
        [{"messages": [{"role": "user", "content": "你好吗？"}]}, {"prompt": "How are you?"}],
    )
    return train, held_out


@pytest.mark.parametrize("algo", ["grpo", "rloo"])
def test_two_steps_log_reward_and_kl_and_save_a_policy(
    tiny_plain_llama_dir, tiny_reward_model_dir, prompt_files, tmp_path, algo
):
    """The policy has no chat template and the reward model a ChatML one: the reward function
    renders with the reward model's recipe."""
    train, held_out = prompt_files
    config = RLHFConfig(
        reward_model=str(tiny_reward_model_dir),
        prompts=str(train),
        eval_prompts=str(held_out),
        policy=str(tiny_plain_llama_dir),
        output=str(tmp_path / algo),
        algo=algo,
        max_steps=2,
        max_new_tokens=8,
        lr=1e-3,
    )
    result = rlhf(config)
    records = [json.loads(line) for line in (result.output_dir / "log.jsonl").open()]
    steps = [record for record in records if "reward" in record]
    assert [record["step"] for record in steps] == [1, 2]
    assert all("kl" in record and "completions/mean_length" in record for record in steps)
    metrics = result.metrics
    assert metrics["steps"] == 2 and metrics["last_reward"] == steps[-1]["reward"]
    assert isinstance(metrics["heldout_reward_before"], float)
    assert isinstance(metrics["heldout_reward_after"], float)
    assert (result.output_dir / "rlhf.png").stat().st_size > 0
    assert AutoModelForCausalLM.from_pretrained(result.output_dir).config.num_hidden_layers == 2


def test_cli_runs_and_reports_the_held_out_reward(
    tiny_llama_dir, tiny_reward_model_dir, prompt_files, tmp_path
):
    train, held_out = prompt_files
    flags = ["rlhf", "--reward-model", str(tiny_reward_model_dir), "--prompts", str(train)]
    flags += ["--eval-prompts", str(held_out), "--policy", str(tiny_llama_dir)]
    flags += ["--output", str(tmp_path / "policy"), "--max-steps", "1", "--max-new-tokens", "8"]
    result = CliRunner().invoke(app, flags)
    assert result.exit_code == 0, result.output
    assert "held-out reward: " in result.output and "1 grpo steps" in result.output


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"prompts": "p.jsonl"}, "needs --reward-model DIR and --prompts FILE"),
        ({"reward_model": "rm", "prompts": "p.jsonl", "algo": "ppo"}, "--algo must be one of"),
        ({"reward_model": "rm", "prompts": "p.jsonl", "generations": 1}, "at least 2"),
    ],
)
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(UserError, match=message):
        RLHFConfig(**settings)
