"""Tokens a process reward model's training data costs: the forward plan's layout against one
solution a row (the token classifiers' way, before their padding).

    .venv/bin/python bench/prm_tokens.py --model smollm2-135m --template plain

Tokenizes the bundled step-labelled training solutions under rewardforge's recipe for `--model`
and counts the tokens the plan feeds (a decoder: each problem's prefix tree, where the problem,
shared leading steps and repeated solutions appear once; an encoder: each distinct solution
once) against the tokens of every solution in its own row.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from rewardforge.data.sample import prm_sample_paths
from rewardforge.data.step_loader import load_step_examples
from rewardforge.forward.plan import ForwardPlan
from rewardforge.forward.reward_forward import RewardForward
from rewardforge.models import load_reward_backbone, resolve_backbone
from rewardforge.models.reward_head import is_encoder_backbone
from rewardforge.recipe import RecipeEncoder, ScoringRecipe
from rewardforge.recipe.steps import encode_step_example


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6", help="minilm-l6 or smollm2-135m")
    parser.add_argument("--template", help="plain or chat (decoders); the model's own by default")
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()
    path = resolve_backbone(args.model)
    model, tokenizer, _ = load_reward_backbone(path, disable_dropout=True)
    recipe = ScoringRecipe.for_model(tokenizer, is_encoder_backbone(path), args.max_length)
    recipe = replace(recipe, kind="process", template=args.template or recipe.template)
    encoder = RecipeEncoder(recipe, tokenizer)
    examples = load_step_examples(prm_sample_paths()[0]).examples
    rows = [encode_step_example(encoder, example).as_row() for example in examples]
    plan = ForwardPlan.for_model(RewardForward(model), encoder)
    fed = sum(sum(plan.sequence_lengths(row)) for row in rows)
    alone = sum(len(ids) for row in rows for ids in row["input_ids"])
    solutions = sum(len(row["input_ids"]) for row in rows)
    print(
        f"{args.model} ({recipe.template}): {len(rows)} problems, {solutions} solutions; "
        f"the plan feeds {fed:,} tokens, one solution a row {alone:,} ({alone / fed:.2f}x)"
    )


if __name__ == "__main__":
    main()
