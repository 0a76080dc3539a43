"""`train_judge()`: a verdict judge trained with TRL's SFTTrainer on preference pairs.

Every pair becomes four questions: "is this a good answer?" about each answer (the better one
"Yes", the other "No"), and "which is better?" with the answers in both orders ("A", then "B"),
so the judge sees each answer in each position and cannot win by favouring one. The questions are
tokenized by the judge's own scoring recipe, the same encoder that scores it later, and handed
to TRL already tokenized, the loss on the verdict only: training and scoring cannot word or
tokenize a question differently.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoTokenizer, TrainerCallback, set_seed

from rewardforge.data import load_preferences
from rewardforge.data.example import PreferenceExample
from rewardforge.errors import UserError
from rewardforge.models.backbones import resolve_backbone
from rewardforge.policy.judge_reasoning import judge_run_settings, train_reasoning_judge
from rewardforge.policy.trl_runs import PolicyRunResult, fit_with_trl, save_run, trl_arguments
from rewardforge.recipe import RecipeEncoder, ScoringRecipe
from rewardforge.recipe.chat_render import render_chat
from rewardforge.recipe.judge_prompt import JudgePrompt
from rewardforge.recipe.judge_render import verdict_completion, verdict_token_ids
from rewardforge.recipe.model_types import is_encoder_config
from rewardforge.training.config import TrainConfig


def train_judge(
    config: TrainConfig,
    judge: JudgePrompt | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> PolicyRunResult:
    """Train a verdict judge (`--kind generative`) on `config.data` and save it to
    `config.output` with its recipe; `judge` words the questions (the default is
    `JudgePrompt()`, or `JudgePrompt.reasoning()` with `config.judge_style="reasoning"`, which
    trains with GRPO instead, `policy/judge_reasoning.py`); `callbacks` are transformers
    `TrainerCallback`s added to the run's own.
    Of the training settings, a judge uses the data, model, template, output, epochs, steps,
    batch, learning rate, warmup, weight decay, max length, LoRA rank, logging and seed."""
    import trl

    if not config.data:
        raise UserError("No training data given; pass --data FILE (repeatable).")
    set_seed(config.seed)
    judge = judge or JudgePrompt()
    folder = resolve_backbone(config.model)
    if is_encoder_config(AutoConfig.from_pretrained(folder).model_type):
        raise UserError(
            f"--kind generative trains a language model to answer, and {config.model} is an "
            "encoder; pick a decoder such as --model smollm2-135m."
        )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if config.judge_style == "reasoning" and judge.style != "reasoning":
        judge = JudgePrompt.reasoning()
    encoder = judge_encoder(tokenizer, config, judge)
    examples = load_preferences(
        config.data, columns=config.columns, skip_invalid=config.skip_invalid
    ).examples
    if judge.style == "reasoning":  # GRPO on its written verdicts
        return train_reasoning_judge(config, folder, tokenizer, encoder.recipe, examples, callbacks)
    rows = judge_training_rows(encoder, examples, random.Random(config.seed))
    longest = max(len(row["input_ids"]) for row in rows)
    args = trl_arguments(
        trl.SFTConfig,
        Path(config.output),
        max_length=longest,  # the encoder already fit each question; TRL cuts nothing
        completion_only_loss=True,
        per_device_train_batch_size=config.batch_pairs,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a share
        weight_decay=config.weight_decay,
        **judge_run_settings(config),
    )
    trainer, fit = fit_with_trl(
        trl.SFTTrainer,
        args,
        folder,
        tokenizer,
        rows,
        Path(config.output),
        callbacks,
        lora_rank=config.lora_rank if config.lora else None,
    )
    metrics: dict[str, Any] = {
        "train_questions": len(rows),
        "steps": trainer.state.global_step,
        "train_loss": fit.training_loss,
        "train_runtime_s": fit.metrics["train_runtime"],
    }
    output = Path(config.output)
    save_run(trainer, tokenizer, output, metrics)
    if trainer.is_world_process_zero():
        encoder.recipe.save(output)
    return PolicyRunResult(output, metrics)


def judge_encoder(tokenizer: Any, config: TrainConfig, judge: JudgePrompt) -> RecipeEncoder:
    """The judge's recipe (its chat template, or plain text) with the tokenizer."""
    template = "chat" if tokenizer.chat_template and config.template != "plain" else "plain"
    if tokenizer.pad_token is None:  # TRL pads batches; the judge never reads a pad
        tokenizer.pad_token = tokenizer.eos_token
    judge.check()
    recipe = ScoringRecipe(template=template, max_length=config.max_length, judge=judge)
    verdict_token_ids(tokenizer, judge)  # words that share a first token are refused now
    return RecipeEncoder(replace(recipe, reward_token="last"), tokenizer)


def judge_training_rows(
    encoder: RecipeEncoder, examples: list[PreferenceExample], rng: random.Random
) -> list[dict[str, list[int]]]:
    """Four tokenized questions per pair (the best response against each other one): each
    answer asked about alone, and the two compared in both orders; shuffled. Each row's
    `completion_mask` marks the verdict reply, the only tokens trained on."""
    judge, tokenizer = encoder.recipe.judge, encoder.tokenizer
    assert judge is not None
    chat = encoder.recipe.template == "chat"
    turn_end = render_chat(tokenizer, "x", "\x00")[1].split("\x00", 1)[1] if chat else ""
    replies = {
        word: verdict_completion(tokenizer, chat, word, turn_end)
        for word in (judge.yes, judge.no, judge.first, judge.second)
    }
    rows = []
    for example in examples:
        best = example.responses[0]
        for worse in example.responses[1:]:
            questions = [
                (encoder.encode(example.prompt, best), judge.yes),
                (encoder.encode(example.prompt, worse), judge.no),
                (encoder.encode_pair(example.prompt, best, worse), judge.first),
                (encoder.encode_pair(example.prompt, worse, best), judge.second),
            ]
            for question, word in questions:
                reply = replies[word]
                rows.append(
                    {
                        "input_ids": question.input_ids + reply,
                        "completion_mask": [0] * len(question.input_ids) + [1] * len(reply),
                    }
                )
    rng.shuffle(rows)
    return rows
