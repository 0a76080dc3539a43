"""`rewardforge rlhf`: TRL's GRPO and RLOO against a rewardforge reward model, a few steps."""

import json
import math

import pytest
from typer.testing import CliRunner

from rewardforge.cli import app
from rewardforge.errors import UserError
from rewardforge.policy.rlhf import rlhf
from rewardforge.policy.rlhf_config import RLHFConfig
from tests.conftest import moved_weights, write_jsonl


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
    assert math.isfinite(metrics["heldout_reward_before"])
    assert math.isfinite(metrics["heldout_reward_after"])
    assert (result.output_dir / "rlhf.png").stat().st_size > 0
    # The saved policy reloads, and training moved its weights.
    assert len(moved_weights(result.output_dir, tiny_plain_llama_dir)) > 14


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
        ({"reward_model": "rm", "prompts": "p.jsonl", "algo": "ppo2"}, "--algo must be one of"),
        ({"reward_model": "rm", "prompts": "p.jsonl", "generations": 1}, "at least 2"),
        ({"reward_model": "rm", "prompts": "p.jsonl", "lora": True}, "apply to --algo ppo only"),
        (
            {"reward_model": "rm", "prompts": "p.jsonl", "algo": "ppo", "mini_batches": 9},
            "--mini-batches 9 is more than the 8 responses of a step",
        ),
        ({"reward_model": "rm", "prompts": "p.jsonl", "algo": "ppo", "lam": 1.5}, "--lam must be"),
        (
            {"reward_model": "rm", "prompts": "p.jsonl", "algo": "ppo", "kl_target": 0.0},
            "--kl-target must be above 0",
        ),
        (
            {"reward_model": "rm", "prompts": "p.jsonl", "algo": "ppo", "missing_eos_penalty": -1},
            "--missing-eos-penalty must be at least 0",
        ),
    ],
)
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(UserError, match=message):
        RLHFConfig(**settings)


def test_a_remote_reward_model_gives_the_local_rewards_and_trains(
    live_server, tiny_reward_model_dir, tiny_llama_dir, prompt_files, tmp_path
):
    from rewardforge import RemoteRewardModel, RewardModel

    prompts = ["Hi", [{"role": "user", "content": "你好"}]] * 40  # more than one request's worth
    responses = ["Hello!", "你好！"] * 40
    remote = RemoteRewardModel(live_server, api_key="s3cret")
    local = RewardModel.load(tiny_reward_model_dir)
    assert remote.score(prompts, responses) == pytest.approx(
        local.score(prompts, responses), abs=1e-5
    )
    with pytest.raises(UserError, match="refused the request \\(401\\)"):
        RemoteRewardModel(live_server).score(["Hi"], ["Hello!"])

    train, held_out = prompt_files
    config = RLHFConfig(
        reward_model=live_server,
        reward_api_key_env="RM_KEY",
        prompts=str(train),
        eval_prompts=str(held_out),
        policy=str(tiny_llama_dir),
        output=str(tmp_path / "remote"),
        max_steps=1,
        max_new_tokens=8,
    )
    assert math.isfinite(rlhf(config).metrics["heldout_reward_after"])


def test_a_reference_based_reward_model_reads_the_prompts_references(
    tiny_reference_model_dir, tiny_llama_dir, tmp_path
):
    rows = [{"prompt": f"问题{i}？", "reference": "简短的回答。"} for i in range(4)]
    prompts = write_jsonl(tmp_path / "prompts.jsonl", rows)
    config = RLHFConfig(
        reward_model=str(tiny_reference_model_dir),
        prompts=str(prompts),
        eval_prompts=str(prompts),
        policy=str(tiny_llama_dir),
        output=str(tmp_path / "polar"),
        max_steps=1,
        max_new_tokens=8,
    )
    assert math.isfinite(rlhf(config).metrics["heldout_reward_before"])
    write_jsonl(prompts, [*rows, {"prompt": "no reference"}])
    with pytest.raises(UserError, match="some rows have a 'reference' and some do not"):
        rlhf(config)


def test_grpo_runs_in_two_processes_under_accelerate_launch(
    tiny_llama_dir, tiny_reward_model_dir, prompt_files, tmp_path
):
    from tests.conftest import accelerate_launch

    train, held_out = prompt_files
    output = tmp_path / "ddp"
    flags = f"--reward-model {tiny_reward_model_dir} --prompts {train} --eval-prompts {held_out}"
    flags += f" --policy {tiny_llama_dir} --max-steps 2 --max-new-tokens 8 --output {output}"
    stdout = accelerate_launch("--multi_gpu --dynamo_backend no", f"rlhf {flags}")
    assert stdout.count("2 grpo steps; policy saved") == 1  # the main process reports
    records = [json.loads(line) for line in (output / "log.jsonl").open()]
    assert [record["step"] for record in records if "reward" in record] == [1, 2]
    assert json.loads((output / "metrics.json").read_text())["steps"] == 2
    assert len(moved_weights(output, tiny_llama_dir)) > 14


def test_chat_prompts_reach_the_reward_model_as_messages_under_a_plain_policy(
    tiny_plain_llama_dir, tiny_reward_model_dir, tmp_path, monkeypatch
):
    """The policy has no chat template, so it reads a transcript; the reward model still reads
    the conversation as messages, in its own (ChatML) format, as `RewardModel.score` does."""
    from rewardforge import RewardModel

    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "你好吗？"},
    ]
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"messages": messages}] * 4)
    scored: list[tuple[list, list[str], list[float]]] = []
    real_score = RewardModel.score

    def recorded(self, prompts, responses, references=None, normalize=False, progress=False):
        rewards = real_score(self, prompts, responses, references, normalize, progress)
        scored.append((list(prompts), list(responses), rewards))
        return rewards

    monkeypatch.setattr(RewardModel, "score", recorded)
    config = RLHFConfig(
        reward_model=str(tiny_reward_model_dir),
        prompts=str(prompts),
        policy=str(tiny_plain_llama_dir),
        output=str(tmp_path / "policy"),
        max_steps=1,
        max_new_tokens=8,
    )
    rlhf(config)
    assert scored, "the reward model was never called"
    model = RewardModel.load(tiny_reward_model_dir)
    for prompts_seen, responses, rewards in scored:
        assert prompts_seen == [messages] * len(responses)
        expected = real_score(model, prompts_seen, responses)
        assert rewards == pytest.approx(expected, abs=1e-5)
        transcript = real_score(
            model, ["\n\nSystem: Be brief.\n\nHuman: 你好吗？\n\nAssistant:"], responses[:1]
        )
        assert abs(transcript[0] - rewards[0]) > 1e-4  # the format that was scored before
