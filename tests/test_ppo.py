"""PPO end to end on tiny models: the critic starts as the reward model, a PRM's step rewards
land on the tokens that end the steps, LoRA's reference is the base with the adapter off, a rule
reward moves the policy its way, and `rlhf --algo ppo` writes a run folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from rewardforge.adoption.resolve import resolve_reward_model
from rewardforge.cli import app
from rewardforge.policy.ppo.loop import prompt_rows, train_ppo
from rewardforge.policy.ppo.rollout import Rollout, step_end_positions, token_logprobs
from rewardforge.policy.ppo.scores import rollout_scores
from rewardforge.policy.ppo.trainer import PPORun
from rewardforge.policy.ppo.value_model import (
    value_model_from_backbone,
    value_model_from_reward_model,
)
from rewardforge.policy.rlhf import rlhf
from rewardforge.policy.rlhf_config import RLHFConfig
from rewardforge.scoring.reward_model import RewardModel
from tests.conftest import write_jsonl

PROMPTS = [{"prompt": f"Question {n}: what is {n} plus {n}?"} for n in range(8)]


def ppo_config(tmp_path: Path, **changes) -> RLHFConfig:
    settings = dict(
        reward_model="unused",
        prompts=str(write_jsonl(tmp_path / "prompts.jsonl", PROMPTS)),
        output=str(tmp_path / "run"),
        algo="ppo",
        batch_prompts=4,
        generations=2,
        max_new_tokens=12,
        lr=1e-3,
        beta=0.01,
        ppo_epochs=2,
        mini_batches=2,
        seed=0,
    )
    return RLHFConfig(**{**settings, **changes})


class ShorterIsBetter:
    """A rule reward: minus the response's length in characters."""

    def score(self, prompts, responses, references=None, normalize=False):
        return [-float(len(response)) for response in responses]


def test_the_critic_starts_as_the_reward_model(tiny_reward_model_dir):
    """Its value at the last token of a text is the reward model's score of that text."""
    reward_model = RewardModel.load(tiny_reward_model_dir)
    critic = value_model_from_reward_model(resolve_reward_model(tiny_reward_model_dir))
    prompt, response = "How do I boil an egg?", "Put it in boiling water for eight minutes."
    ids = torch.tensor([reward_model.encoder.encode(prompt, response).input_ids])
    positions = torch.arange(ids.shape[1]).unsqueeze(0)
    with torch.no_grad():
        values = critic(ids, torch.ones_like(ids), positions)
    assert values[0, -1].item() == pytest.approx(
        reward_model.score([prompt], [response])[0], abs=1e-4
    )


def test_step_ends_are_the_tokens_written_by_hand(tiny_llama_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    pieces = ["Tom has 2 apples.", "\n", "He buys 3 more, so 5.", "\n", "The answer is 5."]
    ids = [tokenizer(piece, add_special_tokens=False)["input_ids"] for piece in pieces]
    ends, total = [], 0
    for index, piece_ids in enumerate(ids):
        total += len(piece_ids)
        if index % 2 == 0:
            ends.append(total - 1)
    flat = [token for piece_ids in ids for token in piece_ids]
    steps = [pieces[0], pieces[2], pieces[4]]
    assert step_end_positions(tokenizer, flat, steps) == ends


@pytest.mark.parametrize("mode", ["dense", "final"])
def test_a_prms_rewards_land_on_the_step_ends_or_the_last_token(tiny_prm_dir, tiny_llama_dir, mode):
    from transformers import AutoTokenizer

    prm = RewardModel.load(tiny_prm_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    separator = prm.recipe.step_separator
    steps = ["Tom has 2 apples.", "2 + 3 = 5.", "The answer is 5."]
    ids, ends = [], []
    for index, step in enumerate(steps):
        if index:
            ids += tokenizer(separator, add_special_tokens=False)["input_ids"]
        ids += tokenizer(step, add_special_tokens=False)["input_ids"]
        ends.append(len(ids) - 1)
    ids.append(tokenizer.eos_token_id)
    response = torch.tensor([ids])
    rollout = Rollout(
        sequences=torch.cat([torch.tensor([[5, 6]]), response], dim=1),
        attention_mask=torch.ones(1, len(ids) + 2, dtype=torch.long),
        query_length=2,
        response_mask=torch.ones(1, len(ids)),
        ended_with_eos=torch.tensor([True]),
        texts=[tokenizer.decode(ids, skip_special_tokens=True)],
    )
    prompt = "Tom has 2 apples and buys 3. How many?"
    scores, positions, logged = rollout_scores(
        prm, [prompt], None, rollout, tokenizer, prm_rewards=mode
    )
    expected = prm.score_steps([prompt], [steps])[0]
    if mode == "dense":
        assert positions.tolist() == [ends]
        assert scores[0].tolist() == pytest.approx(expected)
    else:
        assert positions.tolist() == [[len(ids) - 1]]
        assert scores[0].tolist() == pytest.approx([min(expected)])
    assert logged == pytest.approx([min(expected)])


def test_lora_reference_is_the_base_with_the_adapter_off(tiny_plain_llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_plain_llama_dir)
    config = ppo_config(tmp_path, lora=True, lr=5e-2)
    critic = value_model_from_backbone(str(tiny_plain_llama_dir))
    run = PPORun(config, str(tiny_plain_llama_dir), tokenizer, ShorterIsBetter(), critic)
    assert run.reference is None  # no second copy of the weights
    rows = prompt_rows([(1, "Hello", None)] * 4, tokenizer, chat=False)
    run.step(rows)
    rollout = run.rollout(rows).rollout
    base = AutoModelForCausalLM.from_pretrained(tiny_plain_llama_dir)
    with torch.no_grad():
        expected = token_logprobs(base, rollout, config.temperature)[0]
        moved = token_logprobs(run.policy, rollout, config.temperature)[0]
        reference = run.reference_logprobs(rollout)
    assert torch.allclose(reference, expected, atol=1e-5)
    assert not torch.allclose(moved, expected, atol=1e-4)  # the adapter did learn


def test_a_rule_reward_moves_the_policy_its_way_and_the_kl_is_logged(
    tiny_plain_llama_dir, tmp_path
):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_plain_llama_dir)
    config = ppo_config(tmp_path, max_steps=16, lr=1e-2)
    critic = value_model_from_backbone(str(tiny_plain_llama_dir))
    run = PPORun(config, str(tiny_plain_llama_dir), tokenizer, ShorterIsBetter(), critic)
    rows = prompt_rows(
        [(n, row["prompt"], None) for n, row in enumerate(PROMPTS)], tokenizer, False
    )
    log = tmp_path / "log.jsonl"
    metrics = train_ppo(run, rows, rows[:4], log)
    records = [json.loads(line) for line in log.read_text().splitlines() if "reward" in line]
    steps = [record for record in records if "kl" in record]
    assert len(steps) == 16
    early = sum(r["reward"] for r in steps[:3]) / 3
    late = sum(r["reward"] for r in steps[-3:]) / 3
    assert late > early + 2  # characters fewer per response
    assert metrics["heldout_reward_after"] > metrics["heldout_reward_before"]
    assert steps[-1]["kl"] > 0 and all(
        key in steps[-1] for key in ("clipfrac", "value_loss", "entropy")
    )


def test_rlhf_ppo_from_the_cli(tiny_reward_model_dir, tiny_llama_dir, tmp_path):
    prompts = write_jsonl(tmp_path / "prompts.jsonl", PROMPTS[:4])
    output = tmp_path / "policy"
    result = CliRunner().invoke(
        app,
        ["rlhf", "--algo", "ppo", "--reward-model", str(tiny_reward_model_dir)]
        + [
            "--policy",
            str(tiny_llama_dir),
            "--prompts",
            str(prompts),
            "--eval-prompts",
            str(prompts),
        ]
        + [
            "--generations",
            "1",
            "--batch-prompts",
            "2",
            "--max-steps",
            "2",
            "--max-new-tokens",
            "8",
        ]
        + ["--output", str(output)],
    )
    assert result.exit_code == 0, result.output
    assert "critic: the reward model" in result.output
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["algo"] == "ppo" and metrics["steps"] == 2
    assert isinstance(metrics["heldout_reward_after"], float)
    assert (output / "ppo.png").stat().st_size > 10_000 and (output / "model.safetensors").exists()


def test_ppo_against_a_served_reward_model(live_server, tiny_llama_dir, tmp_path, capsys):
    """A `serve` URL scores the rollouts; the critic is then the policy's backbone."""
    config = ppo_config(
        tmp_path,
        reward_model=live_server,
        reward_api_key_env="RM_KEY",
        policy=str(tiny_llama_dir),
        generations=1,
        max_steps=1,
        mini_batches=1,
    )
    metrics = rlhf(config).metrics
    assert "critic: the policy's backbone with a new head" in capsys.readouterr().err
    assert metrics["steps"] == 1 and math.isfinite(metrics["last_reward"])


def test_a_reward_model_that_cannot_score_is_one_line(tiny_plain_llama_dir, tmp_path):
    """A plain language model has no reward head: refused before the policy loads."""
    prompts = write_jsonl(tmp_path / "prompts.jsonl", PROMPTS[:2])
    result = CliRunner().invoke(
        app,
        ["rlhf", "--algo", "ppo", "--reward-model", str(tiny_plain_llama_dir)]
        + ["--policy", str(tiny_plain_llama_dir), "--prompts", str(prompts)]
        + ["--output", str(tmp_path / "out")],
    )
    assert result.exit_code == 2
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "has no weights for the reward head" in error and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def update_on_a_fixed_batch(policy_dir: Path, work: Path) -> tuple[dict[str, torch.Tensor], Any]:
    """One PPO step on four responses sampled with seed 0, each process learning from its
    share; the policy's weights after it, and the run's accelerator."""
    from transformers import AutoTokenizer

    from rewardforge.policy.ppo.trainer import ScoredRollout

    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    config = ppo_config(work, batch_prompts=4, generations=1, ppo_epochs=2, mini_batches=1)
    critic = value_model_from_backbone(str(policy_dir))
    run = PPORun(config, str(policy_dir), tokenizer, ShorterIsBetter(), critic)
    # plain SGD, whose update is the gradient itself (Adam's first steps are nearly its sign,
    # which would hide a gradient scaled wrong)
    run.optimizer = run.accelerator.prepare(torch.optim.SGD(run.parameters, lr=0.1))
    rows = prompt_rows([(n, f"Count to {n}.", None) for n in range(4)], tokenizer, chat=False)
    torch.manual_seed(0)
    whole = run.rollout(rows)
    accelerator = run.accelerator
    mine = torch.arange(accelerator.process_index, 4, accelerator.num_processes)
    share = ScoredRollout(
        whole.rollout.rows(mine),
        whole.scores[mine],
        whole.positions[mine],
        [whole.rewards[i] for i in mine.tolist()],
    )
    run.learn(share)
    weights = {
        name: parameter.detach().contiguous()
        for name, parameter in run.unwrapped_policy.named_parameters()
    }
    return weights, accelerator


def test_two_processes_make_the_update_one_process_makes(tiny_plain_llama_dir, tmp_path):
    """Advantages whitened over both processes' tokens and each loss divided by its share of
    them: DDP's averaged gradients are one process's over the whole batch."""
    from safetensors.torch import load_file

    from tests.conftest import launch_processes

    saved = tmp_path / "two.safetensors"
    script = Path(__file__).parent / "launched_ppo.py"
    done = launch_processes(
        "--multi_gpu --dynamo_backend no", f"{script} {tiny_plain_llama_dir} {saved}"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "processes: 2" in done.stdout
    two = load_file(saved)
    one, _ = update_on_a_fixed_batch(tiny_plain_llama_dir, tmp_path)
    start = load_file(tiny_plain_llama_dir / "model.safetensors")
    assert set(two) == set(one)
    moved = [name for name in one if not torch.equal(one[name], start.get(name, one[name]))]
    assert len(moved) > 10  # the update did change the policy
    for name in one:
        assert torch.allclose(two[name], one[name], atol=1e-6), name


def test_logprobs_of_left_padded_rows_are_those_of_each_row_alone(tiny_plain_llama_dir):
    """Prompts of different lengths are left-padded together; each response's log-probabilities
    must be those the model gives the row unpadded (positions counted from its first token)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardforge.policy.ppo.rollout import sample

    tokenizer = AutoTokenizer.from_pretrained(tiny_plain_llama_dir)
    tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(tiny_plain_llama_dir).eval()
    torch.manual_seed(0)
    queries = ["Hi", "Tell me a long story about apples and pears, please."]
    tokenizer.padding_side = "right"
    rollout = sample(model, tokenizer, queries, max_new_tokens=6, temperature=0.7)
    assert rollout.attention_mask[0, 0] == 0  # "Hi" was padded on the left
    assert (
        tokenizer.padding_side == "right"
    )  # and the tokenizer, saved with the policy, is as it was
    with torch.no_grad():
        logprobs, _ = token_logprobs(model, rollout, 0.7)
        for row, query in enumerate(queries):
            prompt = tokenizer(query, add_special_tokens=False)["input_ids"]
            response = rollout.responses[row].tolist()
            logits = model(torch.tensor([prompt + response])).logits[0, len(prompt) - 1 : -1]
            expected = torch.log_softmax(logits / 0.7, -1)[torch.arange(6), response]
            assert torch.allclose(logprobs[row], expected, atol=1e-4)


@pytest.mark.parametrize("mode", ["dense", "final"])
def test_ppo_with_a_process_reward_model(tiny_prm_dir, tiny_llama_dir, tmp_path, mode):
    """A PRM trained by rewardforge judges every step of the policy's answers."""
    config = ppo_config(
        tmp_path,
        reward_model=str(tiny_prm_dir),
        policy=str(tiny_llama_dir),
        prm_rewards=mode,
        max_steps=2,
        generations=1,
        mini_batches=1,
    )
    metrics = rlhf(config).metrics
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert metrics["steps"] == 2 and len(log) == 2
    assert all(0.0 <= record["reward"] <= 1.0 for record in log)  # step probabilities


def test_ppo_with_a_reward_model_trained_by_openrlhf(tiny_llama_dir, tmp_path, capsys):
    """An adopted family, read from its folder (OpenRLHF's own saving code made it)."""
    folder = Path(__file__).parent / "data" / "openrlhf" / "rm"
    config = ppo_config(
        tmp_path, reward_model=str(folder), policy=str(tiny_llama_dir), max_steps=1, generations=1
    )
    metrics = rlhf(config).metrics
    assert "scoring as OpenRLHF" in capsys.readouterr().err
    assert metrics["steps"] == 1 and math.isfinite(metrics["last_reward"])


def test_ppo_runs_in_two_processes_under_accelerate_launch(
    tiny_llama_dir, tiny_reward_model_dir, tmp_path
):
    """The whole command under `accelerate launch`: each process rolls out its share, the main
    one logs, reports and saves once."""
    from tests.conftest import accelerate_launch, moved_weights

    prompts = write_jsonl(tmp_path / "prompts.jsonl", PROMPTS)
    output = tmp_path / "ddp"
    flags = f"--algo ppo --reward-model {tiny_reward_model_dir} --prompts {prompts}"
    flags += f" --eval-prompts {prompts} --policy {tiny_llama_dir} --generations 1"
    flags += f" --batch-prompts 2 --max-steps 2 --max-new-tokens 8 --lr 1e-3 --output {output}"
    stdout = accelerate_launch("--multi_gpu --dynamo_backend no", f"rlhf {flags}")
    assert stdout.count("2 ppo steps; policy saved") == 1
    assert stdout.count("held-out reward: ") == 1
    records = [json.loads(line) for line in (output / "log.jsonl").open()]
    assert [record["step"] for record in records if "kl" in record] == [1, 2]
    assert len([record for record in records if "eval_reward" in record]) == 2
    assert len(moved_weights(output, tiny_llama_dir)) > 10
