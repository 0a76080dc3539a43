"""Every recipe path against every chat template TRL's wheel ships (`trl/chat_templates/`):
rewardforge's own outcome recipe, its process recipe (steps at their separators), its
reference-mode recipe, a verdict judge's questions, and the families trained elsewhere that
render with a chat template (TRL, Skywork-style, OpenRLHF, InternLM2 reward models). Each
either reads the text the template renders, token for token, with the reward where its tooling
reads it, or is refused in one line that says why (templates that fail on text messages or drop
their text).

The expected text is rendered here with the template itself; the code under test is not called
to make it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import trl
from jinja2.exceptions import TemplateError

from rewardforge.errors import UserError
from rewardforge.recipe import RecipeEncoder, ScoringRecipe
from rewardforge.recipe.steps import encode_solution
from tests.conftest import _tiny_tokenizer

TEMPLATES = sorted((Path(trl.__file__).parent / "chat_templates").glob("*.jinja"))
PROMPT = "What is 2 + 3?"
RESPONSE = "It is 5."
REFERENCE = "2 + 3 = 5."
STEPS = ["2 + 3 = 5.", "The answer is 5."]
SEPARATOR = "\n\n"
REWARD_TOKEN_ID = 7  # an internlm2-reward model's reward token: any id will do here


MARKERS = ["<|split|>", "<|reward|>"]  # the reference-mode recipe's markers


@pytest.fixture(scope="module")
def base_tokenizer():
    tokenizer = _tiny_tokenizer(False)
    tokenizer.add_special_tokens({"additional_special_tokens": MARKERS})
    return tokenizer


@pytest.fixture(params=TEMPLATES, ids=lambda path: path.stem)
def tokenizer(request, base_tokenizer):
    tokenizer = base_tokenizer
    tokenizer.chat_template = request.param.read_text(encoding="utf-8")
    return tokenizer


def rendered(tokenizer, answer: str) -> str | None:
    """The template's rendering of PROMPT and `answer`, or None where it fails on text
    messages or renders them without their text."""
    conversation = [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": answer},
    ]
    try:
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
    except TemplateError:
        return None
    return text if PROMPT in text and answer.strip() in text else None


def decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, clean_up_tokenization_spaces=False)


def refused_in_one_line(call) -> None:
    with pytest.raises(UserError) as error:
        call()
    message = str(error.value)
    assert "chat template" in message and "\n" not in message and "--template plain" in message


def test_every_shipped_template_is_here():
    assert len(TEMPLATES) > 40 and any(p.stem.startswith("llama3") for p in TEMPLATES)


def test_outcome_recipe_reads_the_rendered_conversation(tokenizer):
    recipe = ScoringRecipe("chat", 4096)
    full = rendered(tokenizer, RESPONSE)
    if full is None:  # refused when the model loads, or at the latest when it scores
        return refused_in_one_line(
            lambda: RecipeEncoder(recipe, tokenizer).encode(PROMPT, RESPONSE)
        )
    encoded = RecipeEncoder(recipe, tokenizer).encode(PROMPT, RESPONSE)
    assert decode(tokenizer, encoded.input_ids) == full  # the reward at its last token
    assert full.startswith(decode(tokenizer, encoded.input_ids[: encoded.prompt_length]))


def test_process_recipe_reads_each_step_at_its_separator(tokenizer):
    recipe = replace(ScoringRecipe("chat", 4096), kind="process", step_separator=SEPARATOR)
    solution = SEPARATOR.join(STEPS)
    full = rendered(tokenizer, solution)
    if full is None:
        return refused_in_one_line(
            lambda: encode_solution(RecipeEncoder(recipe, tokenizer), PROMPT, STEPS)
        )
    encoded = encode_solution(RecipeEncoder(recipe, tokenizer), PROMPT, STEPS)
    # the conversation as the template writes it up to the answer, then every step followed
    # by its separator (a template that trims the answer's end would drop the last one)
    before = full[: full.index(solution)]
    text = decode(tokenizer, encoded.input_ids)
    assert text == before + "".join(step + SEPARATOR for step in STEPS)
    for end, count in zip(encoded.step_ends, range(1, len(STEPS) + 1)):
        read = decode(tokenizer, encoded.input_ids[: end + 1])
        assert read == before + "".join(step + SEPARATOR for step in STEPS[:count])


def test_reference_recipe_reads_both_renderings(tokenizer):
    """`{prompt}{reference}<|split|>{prompt}{response}<|reward|>`: the conversation with the
    reference answer, then the one with the response, each as the template renders it."""
    recipe = ScoringRecipe.for_model(tokenizer, False, 4096, True)
    with_reference, with_response = rendered(tokenizer, REFERENCE), rendered(tokenizer, RESPONSE)
    if with_reference is None or with_response is None:
        return refused_in_one_line(
            lambda: RecipeEncoder(recipe, tokenizer).encode(PROMPT, RESPONSE, REFERENCE)
        )
    encoded = RecipeEncoder(recipe, tokenizer).encode(PROMPT, RESPONSE, REFERENCE)
    text = decode(tokenizer, encoded.input_ids)
    assert text == with_reference + MARKERS[0] + with_response + MARKERS[1]


@pytest.mark.parametrize("family", ["trl", "skywork", "openrlhf", "internlm2-reward"])
def test_families_trained_elsewhere_read_the_whole_rendering(tokenizer, family):
    extra = {"reward_token_id": REWARD_TOKEN_ID} if family == "internlm2-reward" else {}
    recipe = ScoringRecipe("chat", 4096, family=family, **extra)
    full = rendered(tokenizer, RESPONSE)
    if full is None:
        return refused_in_one_line(
            lambda: RecipeEncoder(recipe, tokenizer).encode(PROMPT, RESPONSE)
        )

    def ids(text: str, specials: bool) -> list[int]:
        return tokenizer(text, add_special_tokens=specials)["input_ids"]

    eos = tokenizer.eos_token
    expected = {
        "trl": lambda: ids(full, False),  # TRL's RewardTrainer: the template writes all
        "skywork": lambda: ids(full.removeprefix(tokenizer.bos_token), True),
        "openrlhf": lambda: ids(
            full.rstrip("\n") + ("" if full.rstrip("\n").endswith(eos) else " " + eos), False
        ),
        "internlm2-reward": lambda: ids(full, False) + [REWARD_TOKEN_ID],
    }[family]()
    assert RecipeEncoder(recipe, tokenizer).encode(PROMPT, RESPONSE).input_ids == expected


def test_judge_recipe_reads_its_questions_as_the_template_renders_them(tokenizer):
    """A verdict judge's pointwise and pairwise questions: the user message the template
    renders, with the generation prompt at the end (where the verdict is read)."""
    from rewardforge.recipe.judge_prompt import PAIRWISE, POINTWISE, JudgePrompt

    def encoder() -> RecipeEncoder:  # a template that cannot ask is refused as this is made
        return RecipeEncoder(ScoringRecipe("chat", 4096, judge=JudgePrompt()), tokenizer)

    questions = {
        POINTWISE.format(prompt=PROMPT, answer=RESPONSE): lambda: encoder().encode(
            PROMPT, RESPONSE
        ),
        PAIRWISE.format(prompt=PROMPT, answer_a=RESPONSE, answer_b=REFERENCE): lambda: (
            encoder().encode_pair(PROMPT, RESPONSE, REFERENCE)
        ),
    }
    for question, encode in questions.items():
        message = [{"role": "user", "content": question}]
        try:
            full = tokenizer.apply_chat_template(
                message, tokenize=False, add_generation_prompt=True
            )
        except TemplateError:
            full = None
        if full is None or question not in full:
            return refused_in_one_line(encode)
        encoded = encode()
        assert decode(tokenizer, encoded.input_ids) == full
        assert full.startswith(decode(tokenizer, encoded.input_ids[: encoded.prompt_length]))
