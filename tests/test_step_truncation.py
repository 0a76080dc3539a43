"""A process reward model's solutions fitted into the model's length: whole steps kept from the
first, the prompt cut from its start when not even the first step fits, a first step longer
than the length keeping its end; and an empty answer read as one empty step. Positions are
placed by hand from the tokenizer's own pieces, not by the code under test."""

from __future__ import annotations

from dataclasses import replace

import pytest
from transformers import AutoTokenizer

from rewardforge.models import resolve_backbone
from rewardforge.recipe import RecipeEncoder, ScoringRecipe
from rewardforge.recipe.steps import encode_solution

LONG_PROMPT = "Tom has two apples and buys three more apples at the market today. " * 6
STEPS = ["2 + 3 = 5.", "The answer is 5."]


def pieces(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.fixture(scope="module")
def bert_tokenizer():
    return AutoTokenizer.from_pretrained(resolve_backbone("minilm-l6"))


def process_recipe(tokenizer, is_encoder: bool, max_length: int) -> RecipeEncoder:
    recipe = ScoringRecipe.for_model(tokenizer, is_encoder, max_length)
    return RecipeEncoder(replace(recipe, kind="process"), tokenizer)


@pytest.mark.parametrize("max_length", [24, 40])
def test_an_encoder_with_its_prompt_cut_reads_each_step_at_its_own_end(bert_tokenizer, max_length):
    encoded = encode_solution(process_recipe(bert_tokenizer, True, max_length), LONG_PROMPT, STEPS)
    ids = encoded.input_ids
    assert len(ids) <= max_length and encoded.truncated
    assert all(0 <= end < len(ids) for end in encoded.step_ends)
    # by hand: the solution is the second segment, right before the closing [SEP]
    solution = [pieces(bert_tokenizer, step) for step in STEPS]  # BERT drops the blank lines
    kept = solution[: len(encoded.step_ends)]
    flat = [token for step in kept for token in step]
    start = len(ids) - 1 - len(flat)
    assert ids[start:-1] == flat and ids[-1] == bert_tokenizer.sep_token_id
    expected, position = [], start
    for step in kept:
        position += len(step)
        expected.append(position - 1)
    assert encoded.step_ends == expected


@pytest.mark.parametrize("kind", ["decoder-plain", "decoder-chat", "encoder"])
def test_a_first_step_longer_than_the_length_keeps_its_end(
    kind, tiny_llama_dir, tiny_plain_llama_dir, bert_tokenizer
):
    if kind == "encoder":
        tokenizer, is_encoder = bert_tokenizer, True
    else:
        folder = tiny_llama_dir if kind == "decoder-chat" else tiny_plain_llama_dir
        tokenizer, is_encoder = AutoTokenizer.from_pretrained(folder), False
    long_step = "one two three four five six seven eight nine ten " * 4 + "done."
    assert len(pieces(tokenizer, long_step)) > 32
    encoded = encode_solution(process_recipe(tokenizer, is_encoder, 16), "Count.", [long_step])
    ids = encoded.input_ids
    assert len(ids) <= 16 and encoded.truncated and len(encoded.step_ends) == 1
    end = encoded.step_ends[0]
    if is_encoder:  # the step's last token, then the closing [SEP]
        assert ids[end] == pieces(tokenizer, long_step)[-1] and end == len(ids) - 2
    else:  # the blank line after the step, its last token last
        separator = pieces(tokenizer, "\n\n")
        assert ids[end - len(separator) + 1 : end + 1] == separator and end == len(ids) - 1


@pytest.mark.parametrize("kind", ["decoder", "encoder"])
@pytest.mark.parametrize("answer", ["", "   ", "\n\n"])
def test_an_empty_answer_is_one_empty_step(kind, answer, tiny_plain_llama_dir, bert_tokenizer):
    if kind == "encoder":
        tokenizer, is_encoder = bert_tokenizer, True
    else:
        tokenizer, is_encoder = AutoTokenizer.from_pretrained(tiny_plain_llama_dir), False
    encoder = process_recipe(tokenizer, is_encoder, 64)
    encoded = encode_solution(encoder, "What is 2 + 3?", [answer])
    (end,) = encoded.step_ends
    prompt_alone = encode_solution(encoder, "What is 2 + 3?", ["x"])
    if is_encoder:  # BERT drops the blank line: read where the solution would start
        assert (
            encoded.input_ids[end] == tokenizer.sep_token_id and end == len(encoded.input_ids) - 2
        )
    else:  # the prompt's tokens, the plain recipe's space before a response, the separator
        response = pieces(tokenizer, " ") + pieces(tokenizer, "\n\n")
        prefix = prompt_alone.input_ids[: prompt_alone.prompt_length]
        assert encoded.input_ids == prefix + response and end == len(encoded.input_ids) - 1
