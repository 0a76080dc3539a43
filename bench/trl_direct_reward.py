"""What goes wrong when a rewardforge reward model is handed to TRL directly.

    .venv/bin/python bench/trl_direct_reward.py --model runs/rm [--encoder-model runs/minilm-rm]

`GRPOTrainer(reward_funcs=["runs/rm"])` scores a completion itself: TRL 1.16's
`_calculate_rewards` joins plain-text prompts and completions as `prompt + completion`, or puts
chat prompts through the reward tokenizer's chat template, tokenizes without special tokens and
reads `logits[:, 0]`. This script reproduces that path (with TRL's own `apply_chat_template`)
on the first human turns of HH-RLHF dev conversations, each with its real first answer and with
an empty completion, and compares the rewards with `RewardModel.reward_function()`, which
renders through the model's saved recipe (the rewards it was trained to give).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from trl.data_utils import apply_chat_template

from rewardforge import RewardModel
from rewardforge.data.sample import sample_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A decoder reward model folder.")
    parser.add_argument("--encoder-model", help="An encoder reward model folder.")
    parser.add_argument("--n", type=int, default=48, help="Prompts from the dev split.")
    args = parser.parse_args()
    questions, answers = first_exchanges(args.n)
    completions = answers + [""] * len(questions)  # each prompt: its real answer, then nothing
    prompts = questions + questions

    ours = RewardModel.load(args.model, device="cpu").reward_function()
    for shape, policy_prompts in (
        ("plain-text prompts", prompts),
        ("chat prompts", [[{"role": "user", "content": q}] for q in prompts]),
    ):
        policy_completions = (
            completions
            if shape == "plain-text prompts"
            else [[{"role": "assistant", "content": c}] for c in completions]
        )
        direct = trl_direct_rewards(args.model, policy_prompts, policy_completions)
        recipe = np.array(ours(policy_prompts, policy_completions))
        report(shape, direct, recipe, len(questions))
    if args.encoder_model:
        chat = [[{"role": "user", "content": q}] for q in questions[:2]]
        reply = [[{"role": "assistant", "content": a}] for a in answers[:2]]
        try:
            trl_direct_rewards(args.encoder_model, chat, reply)
            print("encoder reward model, chat prompts: no error")
        except Exception as error:  # what a TRL user would see
            print(f"encoder reward model, chat prompts: {type(error).__name__}: {error}")
        encoder_rewards = RewardModel.load(args.encoder_model).reward_function()(chat, reply)
        print(f"  the reward function instead: {[round(r, 4) for r in encoder_rewards]}")


def trl_direct_rewards(model_dir: str, prompts: list, completions: list) -> np.ndarray:
    """The rewards TRL computes for a reward model passed as a path (its text path, verbatim)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    if isinstance(prompts[0], list):
        texts = [
            apply_chat_template({"messages": p + c}, tokenizer)["text"]
            for p, c in zip(prompts, completions)
        ]
    else:
        texts = [p + c for p, c in zip(prompts, completions)]
    rewards = []
    for start in range(0, len(texts), 8):
        inputs = tokenizer(
            text=texts[start : start + 8],
            return_tensors="pt",
            padding=True,
            padding_side="right",
            add_special_tokens=False,
        )
        with torch.inference_mode():
            rewards += model(**inputs).logits[:, 0].tolist()
    return np.array(rewards)


def report(shape: str, direct: np.ndarray, recipe: np.ndarray, n: int) -> None:
    difference = np.abs(direct - recipe)
    correlation = np.corrcoef(direct, recipe)[0, 1]
    empty_wins_direct = float(np.mean(direct[n:] > direct[:n]))
    empty_wins_recipe = float(np.mean(recipe[n:] > recipe[:n]))
    print(
        f"{shape}: max |difference| {difference.max():.3f}, mean {difference.mean():.3f}, "
        f"correlation {correlation:.3f}; the empty completion outscores the real answer on "
        f"{empty_wins_direct:.0%} of prompts passed directly, {empty_wins_recipe:.0%} through "
        "the recipe"
    )


def first_exchanges(count: int) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in Path(sample_paths()[1]).read_text("utf-8").splitlines()]
    questions, answers = [], []
    for row in rows[:count]:
        human = row["chosen"].split("\n\nHuman: ", 1)[1]
        question, _, rest = human.partition("\n\nAssistant: ")
        questions.append(question.strip())
        answers.append(rest.split("\n\nHuman: ", 1)[0].strip())
    return questions, answers


if __name__ == "__main__":
    main()
