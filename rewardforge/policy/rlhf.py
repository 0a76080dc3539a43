"""`rlhf()`: policy optimisation against a rewardforge reward model.

GRPO and RLOO are TRL's trainers; PPO, which TRL no longer ships, is rewardforge's own
(`rewardforge.policy.ppo`). For TRL's, what rewardforge adds is the reward: TRL hands the
policy's prompts and completions to `RewardModel.reward_function()` (or to a `rewardforge serve`
server's), which renders them with the reward model's own recipe, so the policy's chat template
never reaches the reward model.
The story: prompts, policy and reward model, trainer, held-out reward before, fit, held-out
reward after, save.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import datasets

from rewardforge.adoption.resolve import ResolvedRewardModel, resolve_reward_model
from rewardforge.api_key import api_key_from_env
from rewardforge.data.prompt_rows import read_prompts_with_references
from rewardforge.errors import UserError
from rewardforge.evaluation.plots import policy_curves, ppo_curves
from rewardforge.models.file_modes import share_weights_like_config
from rewardforge.policy.rlhf_config import RLHFConfig
from rewardforge.policy.trl_runs import (
    PolicyRunResult,
    policy_prompt,
    run_callbacks,
    save_run,
    start_run,
    trl_arguments,
)
from rewardforge.scoring.remote_reward import RemoteRewardModel, is_url
from rewardforge.scoring.reward_model import (
    REWARD_PROMPT_COLUMN,
    RewardModel,
    encode_reward_prompt,
)
from rewardforge.training.callbacks import LOG_FILE, use_quiet_progress


def rlhf(config: RLHFConfig) -> PolicyRunResult:
    """Optimise a policy against a reward model with TRL's GRPO or RLOO, or with rewardforge's
    PPO (`algo="ppo"`, see `rewardforge.policy.ppo`); save it to `output`.

    `OUTPUT/log.jsonl` gets a record per logged step (reward, KL, completion length, ...),
    `rlhf.png` plots them, `metrics.json` holds the held-out reward before and after.
    """
    output, policy_path, tokenizer, chat = start_run(config.policy, config.output)
    if config.algo == "ppo":
        return _ppo(config, output, policy_path, tokenizer, chat)
    train_prompts = _prompt_dataset(config.prompts, chat)
    eval_prompts = _prompt_dataset(config.eval_prompts, chat) if config.eval_prompts else None
    reward_model = _reward_model(config)

    trainer = _trainer(
        config, output, policy_path, tokenizer, reward_model, train_prompts, eval_prompts
    )
    before = trainer.evaluate()["eval_reward"] if eval_prompts else None
    trainer.train()
    after = trainer.evaluate()["eval_reward"] if eval_prompts else None

    steps = [record for record in trainer.state.log_history if "reward" in record]
    metrics = {
        "algo": config.algo,
        "steps": trainer.state.global_step,
        "first_reward": steps[0]["reward"] if steps else None,
        "last_reward": steps[-1]["reward"] if steps else None,
        "last_kl": steps[-1].get("kl") if steps else None,
        "heldout_reward_before": before,
        "heldout_reward_after": after,
    }
    save_run(trainer, tokenizer, output, metrics)
    if trainer.is_world_process_zero():
        policy_curves(output / LOG_FILE, output / "rlhf.png")
        (output / "rlhf_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    return PolicyRunResult(output, metrics)


def _ppo(
    config: RLHFConfig, output: Path, policy_path: str, tokenizer: Any, chat: bool
) -> PolicyRunResult:
    """PPO, rewardforge's own (TRL no longer ships one): the same story, with a critic."""
    from rewardforge.policy.ppo.loop import prompt_rows, train_ppo
    from rewardforge.policy.ppo.trainer import PPORun
    from rewardforge.policy.ppo.value_model import critic_for

    train = prompt_rows(_prompt_rows(config.prompts), tokenizer, chat)
    heldout = None
    if config.eval_prompts:
        heldout = prompt_rows(_prompt_rows(config.eval_prompts), tokenizer, chat)
    resolved = None  # resolved once: the reward model and (by default) the critic load from it
    if not is_url(config.reward_model):
        resolved = resolve_reward_model(config.reward_model, config.reward_format, config.template)
    reward_model = _reward_model(config, resolved)
    reward_tokenizer = reward_model.encoder.tokenizer if resolved is not None else None
    critic, where = critic_for(
        resolved, reward_tokenizer, config.value_model, policy_path, tokenizer
    )
    run = PPORun(config, policy_path, tokenizer, reward_model, critic)
    main = run.accelerator.is_main_process
    if main:
        print(where, file=sys.stderr)
        output.mkdir(parents=True, exist_ok=True)
    run.accelerator.wait_for_everyone()
    metrics = train_ppo(run, train, heldout, output / LOG_FILE)
    run.accelerator.wait_for_everyone()
    if main:
        policy = run.unwrapped_policy
        policy = policy.merge_and_unload() if config.lora else policy
        policy.save_pretrained(output)
        tokenizer.save_pretrained(output)
        share_weights_like_config(output)
        (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
        policy_curves(output / LOG_FILE, output / "rlhf.png")
        ppo_curves(output / LOG_FILE, output / "ppo.png")
        (output / "rlhf_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    run.accelerator.wait_for_everyone()
    return PolicyRunResult(output, metrics)


def _prompt_rows(path: str) -> list:
    rows = read_prompts_with_references(path)
    with_references = [reference is not None for _, _, reference in rows]
    if any(with_references) and not all(with_references):
        raise UserError(f"{path}: some rows have a 'reference' and some do not; give all one.")
    return rows


def _reward_model(
    config: RLHFConfig, resolved: ResolvedRewardModel | None = None
) -> RewardModel | RemoteRewardModel:
    """The reward model's folder loaded here (`resolved`, if already resolved), or a client of
    the server at its URL."""
    if not is_url(config.reward_model):
        if resolved is None:
            resolved = resolve_reward_model(
                config.reward_model, config.reward_format, config.template
            )
        aggregate = config.aggregate or "min"
        return RewardModel.load_resolved(resolved, config.reward_model, aggregate=aggregate)
    key = None
    if config.reward_api_key_env is not None:
        key = api_key_from_env(config.reward_api_key_env, "--reward-api-key-env")
    return RemoteRewardModel(config.reward_model, api_key=key, aggregate=config.aggregate)


def _prompt_dataset(path: str, chat: bool) -> datasets.Dataset:
    """TRL's prompt column: chat messages for a policy with a chat template, else text. TRL
    passes the other columns on to the reward function: the prompt as the file wrote it
    (`REWARD_PROMPT_COLUMN`), so that the reward model reads the conversation in its own
    format even when the policy saw a transcript of it, and a `reference` column when the rows
    have references."""
    rows = _prompt_rows(path)
    with_references = any(reference is not None for _, _, reference in rows)
    return datasets.Dataset.from_list(
        [
            {
                "prompt": policy_prompt(prompt, chat),
                REWARD_PROMPT_COLUMN: encode_reward_prompt(prompt),
            }
            | ({"reference": reference} if with_references else {})
            for _, prompt, reference in rows
        ]
    )


def _trainer(
    config: RLHFConfig,
    output: Path,
    policy_path: str,
    tokenizer: Any,
    reward_model: RewardModel | RemoteRewardModel,
    train_prompts: datasets.Dataset,
    eval_prompts: datasets.Dataset | None,
) -> Any:
    import trl

    trainer_class, config_class = {
        "grpo": (trl.GRPOTrainer, trl.GRPOConfig),
        "rloo": (trl.RLOOTrainer, trl.RLOOConfig),
    }[config.algo]
    completions = config.batch_prompts * config.generations
    args = trl_arguments(
        config_class,
        output,
        max_steps=config.max_steps,
        learning_rate=config.lr,
        beta=config.beta,
        num_generations=config.generations,
        per_device_train_batch_size=completions,
        per_device_eval_batch_size=completions,
        max_completion_length=config.max_new_tokens,
        temperature=config.temperature,
        logging_steps=config.logging_steps,
        seed=config.seed,
    )
    trainer = trainer_class(
        model=policy_path,
        reward_funcs=[reward_model.reward_function(normalize=config.normalize)],
        args=args,
        train_dataset=train_prompts,
        eval_dataset=eval_prompts,
        processing_class=tokenizer,
        callbacks=run_callbacks(output),
    )
    use_quiet_progress(trainer)
    return trainer
