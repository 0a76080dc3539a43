"""`train_reasoning_judge()`: a judge that reasons before its verdict, trained with TRL's GRPO.

RM-R1 and J1 train a judge with reinforcement learning on whether its verdict was right: the
judge reads a pair (each pair in both orders), writes a short rationale and ends with
"Verdict: A" or "Verdict: B"; the reward is verifiable, no reward model needed: 1 for the right
verdict, 0 for the wrong one, -1 for a reply without a verdict in the format (a verdict in
the format pays even when wrong). The question is the judge's saved recipe's, so scoring asks
it the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rewardforge.data.example import PreferenceExample
from rewardforge.policy.trl_runs import PolicyRunResult, fit_with_trl, save_run, trl_arguments
from rewardforge.recipe.judge_prompt import JudgePrompt
from rewardforge.recipe.judge_render import plain_question
from rewardforge.recipe.scoring_recipe import ScoringRecipe
from rewardforge.scoring.written_verdicts import question_text
from rewardforge.training.config import TrainConfig


def judge_run_settings(config: TrainConfig) -> dict[str, Any]:
    """The TRL settings both kinds of judge take from `train`'s flags as they are."""
    return {
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "learning_rate": config.lr,
        "logging_steps": config.logging_steps,
        "seed": config.seed,
    }


def verdict_reward(judge: JudgePrompt) -> Callable[..., list[float]]:
    """GRPO's reward for a written verdict: 1 right, 0 wrong, -1 none in the format. TRL calls
    it with the completions and the rows' `label` column (the right verdict word)."""

    def judge_verdict_reward(
        prompts: list[Any], completions: list[Any], label: list[str], **_: Any
    ) -> list[float]:
        rewards = []
        for completion, wanted in zip(completions, label):
            text = completion if isinstance(completion, str) else completion[-1]["content"]
            verdict = judge.parse_verdict(text)
            rewards.append(-1.0 if verdict is None else 1.0 if verdict == wanted else 0.0)
        return rewards

    return judge_verdict_reward


def reasoning_rows(
    judge: JudgePrompt, examples: Sequence[PreferenceExample], chat: bool
) -> list[dict[str, Any]]:
    """Each pair (the best response against each other one) asked in both orders, with the
    right verdict as `label`; the question as a user message after the judge's system message
    (text without a chat template)."""
    system = [{"role": "system", "content": judge.system}] if judge.system else []
    rows = []
    for example in examples:
        best = example.responses[0]
        for worse in example.responses[1:]:
            for first, second, label in ((best, worse, judge.first), (worse, best, judge.second)):
                question = question_text(judge, example.prompt, first, second)
                prompt = (
                    [*system, {"role": "user", "content": question}]
                    if chat
                    else plain_question(judge, question)
                )
                rows.append({"prompt": prompt, "label": label})
    return rows


def train_reasoning_judge(
    config: TrainConfig,
    folder: str,
    tokenizer: Any,
    recipe: ScoringRecipe,
    examples: Sequence[PreferenceExample],
    callbacks: Sequence[TrainerCallback] = (),
) -> PolicyRunResult:
    """GRPO on the judge (`folder`, a causal LM) with `verdict_reward`; saved to the output
    with `recipe`, whose judge prompt words the questions."""
    import trl

    judge = recipe.judge
    assert judge is not None
    chat = recipe.template == "chat"
    rows = reasoning_rows(judge, examples, chat)
    output = Path(config.output)
    args = trl_arguments(
        trl.GRPOConfig,
        output,
        num_generations=config.generations,
        per_device_train_batch_size=config.batch_pairs * config.generations,
        max_completion_length=config.max_new_tokens,
        **judge_run_settings(config),
    )
    trainer, fit = fit_with_trl(
        trl.GRPOTrainer,
        args,
        folder,
        tokenizer,
        rows,
        output,
        callbacks,
        lora_rank=config.lora_rank if config.lora else None,
        reward_funcs=[verdict_reward(judge)],
    )
    rewards = [record["reward"] for record in trainer.state.log_history if "reward" in record]
    metrics = {
        "train_questions": len(rows),
        "steps": trainer.state.global_step,
        "train_loss": fit.training_loss,
        "train_runtime_s": fit.metrics["train_runtime"],
        "first_reward": rewards[0] if rewards else None,
        "last_reward": rewards[-1] if rewards else None,
    }
    save_run(trainer, tokenizer, output, metrics)
    if trainer.is_world_process_zero():
        recipe.save(output)
    return PolicyRunResult(output, metrics)
