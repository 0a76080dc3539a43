"""Scoring speed of a reward model trained elsewhere against the same model as rewardforge's own.

    .venv/bin/python bench/adopted_speed.py --pairs 100 --repeats 3

One SmolLM2-135M reward model (the bundled backbone with a fresh seeded head) is saved three
ways: with rewardforge's recipe (our own), as TRL's RewardTrainer saves a model (no recipe: its
family is detected on every load), and as `rewardforge adopt` writes that TRL folder. Each scores
the same HH dev groups (chosen and rejected to one prompt) through `RewardModel.score_examples`,
the call behind `score`, `eval`, `serve` and the RLHF reward function; runs alternate between
the three, and the best of `--repeats` counts. Prints responses per second, tokens fed and
whether the forward plan shares prompts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from rewardforge import RewardModel, load_preferences
from rewardforge.adoption.resolve import adopt
from rewardforge.data.sample import sample_paths
from rewardforge.models import load_reward_backbone
from rewardforge.recipe import ScoringRecipe


def save_models(root: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    model, tokenizer, _ = load_reward_backbone("smollm2-135m")
    trl_folder, ours = root / "trl", root / "ours"
    for folder in (trl_folder, ours):
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    ScoringRecipe.for_model(tokenizer, is_encoder=False, max_length=1024).save(ours)
    adopt(trl_folder, root / "adopted")
    return {"rewardforge's own": ours, "TRL folder": trl_folder, "adopted": root / "adopted"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="HH dev groups to score.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed passes each; best counts.")
    args = parser.parse_args()
    examples = load_preferences(sample_paths()[1]).examples[: args.pairs]
    with tempfile.TemporaryDirectory() as root:
        models = {
            name: RewardModel.load(path, device="cpu")
            for name, path in save_models(Path(root)).items()
        }
        rows = {
            name: [rm.encoder.encode_example(e).as_row() for e in examples]
            for name, rm in models.items()
        }
        best = dict.fromkeys(models, float("inf"))
        for _ in range(args.repeats):
            for name, rm in models.items():
                started = time.perf_counter()
                rm.score_examples(examples)
                best[name] = min(best[name], time.perf_counter() - started)
    responses = sum(len(e.responses) for e in examples)
    for name, rm in models.items():
        plan = rm.plan
        fed = sum(plan.batch_tokens(plan.sequence_lengths(row)) for row in rows[name])
        print(
            f"{name:<18} {responses / best[name]:7.2f} responses/s  tokens fed {fed:>7}  "
            f"family {rm.recipe.family}, shared prompts {plan.share_prompt}"
        )


if __name__ == "__main__":
    main()
