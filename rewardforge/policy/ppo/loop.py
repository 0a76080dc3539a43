"""`train_ppo`: the prompts of each step, `max_steps` PPO steps, a log record a step, and the
held-out reward before and after."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rewardforge.data.conversation import prompt_as_messages, prompt_as_text
from rewardforge.data.example import Prompt
from rewardforge.errors import UserError
from rewardforge.policy.ppo.trainer import PPORun, PromptRow
from rewardforge.policy.rlhf_config import RLHFConfig


def prompt_rows(
    rows: list[tuple[int, Prompt, str | None]], tokenizer, chat: bool
) -> list[PromptRow]:
    """The policy reads a prompt through its chat template (with the assistant's turn opened)
    when it has one; the reward model always gets the prompt as the file wrote it."""

    def query(prompt: Prompt) -> str:
        if not chat:
            return prompt_as_text(prompt)
        messages = prompt_as_messages(prompt)
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    return [PromptRow(query(prompt), prompt, reference) for _, prompt, reference in rows]


def batches(rows: list[PromptRow], config: RLHFConfig) -> Iterator[list[PromptRow]]:
    """`batch_prompts` prompts a step, each repeated `generations` times, in a shuffled order
    (the same in every process) that starts again when the prompts run out."""
    order = random.Random(config.seed)
    while True:
        shuffled = rows[:]
        order.shuffle(shuffled)
        for start in range(0, len(shuffled) - config.batch_prompts + 1, config.batch_prompts):
            chosen = shuffled[start : start + config.batch_prompts]
            yield [row for row in chosen for _ in range(config.generations)]
        if len(shuffled) < config.batch_prompts:
            yield [row for row in shuffled for _ in range(config.generations)]


def train_ppo(
    run: PPORun, train: list[PromptRow], heldout: list[PromptRow] | None, log_path: Path
) -> dict[str, Any]:
    """`max_steps` PPO steps; a record per logged step in `log_path` (written by the main
    process); the held-out reward before and after."""
    config, main = run.config, run.accelerator.is_main_process

    def log(record: dict[str, Any]) -> None:
        if main:
            with log_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")

    if main:
        log_path.write_text("", encoding="utf-8")
    before = run.heldout_reward(heldout) if heldout else None
    if before is not None:
        log({"step": 0, "eval_reward": before})
    records = []
    responses = min(len(train), config.batch_prompts) * config.generations
    if responses % run.accelerator.num_processes:
        raise UserError(
            f"a step's {responses} responses ({len(train)} prompts in the file, times "
            f"--generations) do not divide among {run.accelerator.num_processes} processes; "
            "give more prompts or a multiple of the process count."
        )
    prompts = batches(train, config)
    with tqdm(total=config.max_steps, desc="PPO", unit="step", disable=not main) as bar:
        for step in range(1, config.max_steps + 1):
            record = {"step": step, **run.step(next(prompts))}
            if step % config.logging_steps == 0 or step == config.max_steps:
                log(record)
            records.append(record)
            bar.set_postfix(reward=f"{record['reward']:.3f}", kl=f"{record['kl']:.3f}")
            bar.update()
    after = run.heldout_reward(heldout) if heldout else None
    if after is not None:
        log({"step": config.max_steps, "eval_reward": after})
    return {
        "algo": "ppo",
        "steps": config.max_steps,
        "first_reward": records[0]["reward"],
        "last_reward": records[-1]["reward"],
        "last_kl": records[-1]["kl"],
        "heldout_reward_before": before,
        "heldout_reward_after": after,
    }
