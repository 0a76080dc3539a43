"""A published judge (Prometheus 2, Skywork-Critic, any instruction-tuned language model) written
as a rewardforge judge folder: its language model as it is, and a recipe holding the questions
of its template, so that every command asks it as its authors do."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from rewardforge.errors import UserError
from rewardforge.models.file_modes import share_weights_like_config
from rewardforge.recipe.encoder import RecipeEncoder
from rewardforge.recipe.judge_render import verdict_token_ids
from rewardforge.recipe.judge_template import load_judge_template
from rewardforge.recipe.scoring_recipe import ScoringRecipe


def judge_recipe(recipe: ScoringRecipe, judge_template: str | None) -> ScoringRecipe:
    """`recipe` (the `judge` family's) asking the questions of `judge_template` (a bundled
    name or a file; None keeps rewardforge's own Yes/No and A/B questions)."""
    if judge_template is None:
        return recipe
    return replace(recipe, judge=load_judge_template(judge_template))


def write_judge(source: Path, output: Path, recipe: ScoringRecipe, dtype: str | None) -> None:
    """The language model at `source` (safetensors only) and `recipe` written to `output`,
    after checking that its tokenizer asks the questions and reads the verdict words."""
    judge = recipe.judge
    assert judge is not None
    tokenizer = AutoTokenizer.from_pretrained(source)
    if judge.style == "verdict":
        verdict_token_ids(tokenizer, judge)
    encoder = RecipeEncoder(recipe, tokenizer)  # renders each question once, or says why not
    if judge.pairwise is not None:
        encoder.encode_pair("question", "answer", "answer")
    if judge.pointwise is not None:
        encoder.encode("question", "answer")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype or "float32", use_safetensors=True
        )
    except ValueError as error:  # no causal-LM class for this config
        raise UserError(
            f"{source} is not a language model transformers can load: {error}"
        ) from None
    model.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    share_weights_like_config(output)
    recipe.save(output)
