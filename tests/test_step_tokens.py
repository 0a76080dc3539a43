"""How a process reward model's solution becomes tokens (rewardforge/recipe/steps.py): each step
and its separator apart, so that every step's reward is read at the same separator token."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from transformers import AutoTokenizer

from rewardforge.recipe import RecipeEncoder, ScoringRecipe
from rewardforge.recipe.steps import encode_solution

PROMPT = "A bakery makes 30 trays of 2 cookies. How many cookies?"
STEPS = ["30 trays of 2 make 30 * 2 = 60.", "the bakery has 60 cookies.", "the answer is 60."]


def encoder_for(model_dir, template: str, separator: str, step_tokens="pieces") -> RecipeEncoder:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    recipe = ScoringRecipe.for_model(tokenizer, False, 256)
    recipe = replace(
        recipe, kind="process", template=template, step_separator=separator, step_tokens=step_tokens
    )
    return RecipeEncoder(recipe, tokenizer)


def tokens_read(encoder: RecipeEncoder) -> list[list[int]]:
    """The separator-long run of tokens that ends where each step's reward is read."""
    encoded = encode_solution(encoder, PROMPT, STEPS)
    separator = encoder.recipe.step_separator
    width = len(encoder.tokenizer.encode(separator, add_special_tokens=False))
    return [encoded.input_ids[end - width + 1 : end + 1] for end in encoded.step_ends]


@pytest.mark.parametrize("template", ["plain", "chat"])
@pytest.mark.parametrize("separator", ["\n\n", " "])
def test_every_step_is_read_at_the_separators_own_tokens(tiny_llama_dir, template, separator):
    encoder = encoder_for(tiny_llama_dir, template, separator)
    expected = encoder.tokenizer.encode(separator, add_special_tokens=False)
    assert tokens_read(encoder) == [expected] * len(STEPS)


def test_one_text_would_read_steps_at_different_tokens(tiny_llama_dir):
    # why steps are tokenized apart: as one text, a space before the next step joins that
    # step's first word, so only the last step would be read at the separator itself
    whole = tokens_read(encoder_for(tiny_llama_dir, "plain", " ", step_tokens="whole"))
    space = AutoTokenizer.from_pretrained(tiny_llama_dir).encode(" ", add_special_tokens=False)
    assert whole[-1] == space and whole[0] != space


def test_the_steps_and_prompt_are_all_there(tiny_llama_dir):
    encoder = encoder_for(tiny_llama_dir, "plain", "\n\n")
    encoded = encode_solution(encoder, PROMPT, STEPS)
    text = encoder.tokenizer.decode(encoded.input_ids)
    assert text.endswith(" " + "\n\n".join(STEPS) + "\n\n") and PROMPT in text


def test_a_prm_saved_before_step_tokens_existed_reads_as_it_was_trained(tmp_path):
    recipe = replace(ScoringRecipe("plain"), kind="process")
    recipe.save(tmp_path)
    assert ScoringRecipe.load(tmp_path).step_tokens == "pieces"
    saved = json.loads((tmp_path / "rewardforge_recipe.json").read_text())
    del saved["step_tokens"]
    (tmp_path / "rewardforge_recipe.json").write_text(json.dumps(saved))
    assert ScoringRecipe.load(tmp_path).step_tokens == "whole"
