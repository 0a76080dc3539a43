"""`sft()` and `dpo()`: the flywheel's policy steps, with TRL's SFTTrainer and DPOTrainer.

Best-of-N writes the winners as SFT rows and best-against-worst pairs; `sft` fine-tunes a policy
on the first and `dpo` tunes it on the second. rewardforge writes neither trainer: it reads the
rows (with row-numbered errors), shapes them as TRL wants them (chat messages for a policy with
a chat template, text otherwise), and saves the policy the same way as `rlhf`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from rewardforge.data.loader import load_preferences
from rewardforge.data.scoring_rows import read_demonstrations
from rewardforge.policy.trl_runs import (
    PolicyRunResult,
    policy_completion,
    policy_prompt,
    run_callbacks,
    save_run,
    start_run,
    trl_arguments,
)
from rewardforge.policy.tuning_config import DPORunConfig, SFTRunConfig
from rewardforge.training.callbacks import use_quiet_progress


def sft(config: SFTRunConfig) -> PolicyRunResult:
    """Fine-tune a policy on demonstrations (loss on the answers only) and save it."""
    import trl
    from peft import LoraConfig

    output, policy_path, tokenizer, chat = start_run(config.model, config.output)
    rows = [
        {"prompt": policy_prompt(prompt, chat), "completion": policy_completion(answer, chat)}
        for prompt, answer in read_demonstrations(config.data)
    ]
    args = trl_arguments(trl.SFTConfig, output, max_length=config.max_length, **_common(config))
    trainer = trl.SFTTrainer(
        model=policy_path,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=run_callbacks(output),
        peft_config=LoraConfig(task_type="CAUSAL_LM", target_modules="all-linear")
        if config.lora
        else None,
    )
    use_quiet_progress(trainer)
    fit = trainer.train()
    if config.lora:
        trainer.model = trainer.model.merge_and_unload()
    return _finish(trainer, tokenizer, output, fit, examples=len(rows))


def dpo(config: DPORunConfig) -> PolicyRunResult:
    """Tune a policy on preference pairs with DPO against its starting copy, and save it.

    A K-way ranked group gives K - 1 pairs: the best answer against each of the others.
    """
    import trl

    output, policy_path, tokenizer, chat = start_run(config.model, config.output)
    rows = [
        {
            "prompt": policy_prompt(example.prompt, chat),
            "chosen": policy_completion(example.responses[0], chat),
            "rejected": policy_completion(worse, chat),
        }
        for example in load_preferences([config.data]).examples
        for worse in example.responses[1:]
    ]
    args = trl_arguments(
        trl.DPOConfig, output, beta=config.beta, max_length=config.max_length, **_common(config)
    )
    trainer = trl.DPOTrainer(
        model=policy_path,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=run_callbacks(output),
    )
    use_quiet_progress(trainer)
    fit = trainer.train()
    return _finish(trainer, tokenizer, output, fit, examples=len(rows))


def _common(config: SFTRunConfig | DPORunConfig) -> dict[str, Any]:
    return {
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "learning_rate": config.lr,
        "logging_steps": config.logging_steps,
        "seed": config.seed,
    }


def _finish(trainer: Any, tokenizer: Any, output: Path, fit: Any, examples: int) -> PolicyRunResult:
    metrics = {
        "train_examples": examples,
        "steps": trainer.state.global_step,
        "train_loss": fit.training_loss,
        "train_runtime_s": fit.metrics["train_runtime"],
    }
    save_run(trainer, tokenizer, output, metrics)
    return PolicyRunResult(output, metrics)
