"""Step-labelled solutions under a process reward model's recipe: each step followed by the
recipe's separator, the whole solution rendered as the response, and the reward read at the
last token of each step (its separator).

Solutions to one problem share the problem's tokens, as a preference group's responses share
its prompt, so the forward plan reads every step of every solution in one forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rewardforge.data.conversation import prompt_as_text
from rewardforge.data.example import Prompt
from rewardforge.data.steps import StepExample
from rewardforge.errors import UserError
from rewardforge.recipe.encoder import EncodedResponse, RecipeEncoder


@dataclass
class EncodedSolutions:
    """A problem's solutions, tokenized, with each step's reward position and label."""

    solutions: list[EncodedResponse]
    labels: list[list[float]]  # one list per solution; empty lists when unlabelled
    source: str = ""

    @property
    def truncated(self) -> bool:
        return any(solution.truncated for solution in self.solutions)

    def as_row(self) -> dict[str, Any]:
        """A flat dict for a `datasets.Dataset` row: the plan reads `step_ends`."""
        row: dict[str, Any] = {
            "input_ids": [solution.input_ids for solution in self.solutions],
            "step_ends": [solution.step_ends for solution in self.solutions],
            "step_labels": self.labels,
            "margin": math.nan,
        }
        if self.solutions[0].token_type_ids is not None:
            row["token_type_ids"] = [solution.token_type_ids for solution in self.solutions]
        else:
            row["prompt_length"] = [solution.prompt_length for solution in self.solutions]
        return row


def encode_solution(encoder: RecipeEncoder, prompt: Prompt, steps: list[str]) -> EncodedResponse:
    """Token ids of one solution and the position of each step's reward. Steps that do not
    fit the recipe's length are left out whole (and the solution marked truncated); when not
    even the first fits, the prompt loses its start, and a first step longer than the whole
    length keeps its end (its separator, where its reward is read).

    An empty or blank solution (a policy that stopped at once) is one empty step: its reward is
    read at the separator that follows it (or, where the tokenizer drops the separator, as
    BERT's drops a blank line, at the token before where the solution would start), so it is
    judged like any other answer."""
    recipe, tokenizer = encoder.recipe, encoder.tokenizer
    separator = recipe.step_separator
    if len(steps) == 1 and not steps[0].strip():
        steps = [""]
    elif not steps or any(not step.strip() for step in steps):
        raise UserError("a solution needs steps, and none of them may be empty.")
    if recipe.family == "trl-prm":
        return _trl_solution(encoder, prompt, steps)
    if recipe.step_tokens == "whole":
        prompt_text, ids, all_ends = _whole_text_ends(encoder, prompt, steps, separator)
    else:
        prompt_text, lead = _solution_lead(encoder, prompt)
        ids, all_ends = _piece_ends(tokenizer, lead, steps, separator)
    head, prompt_ids, tail = encoder._prompt_parts(prompt_text)
    build = encoder._pair_builder
    if build is not None:  # an encoder: (prompt, solution) as a sentence pair
        room = recipe.max_length - len(build([], [])[0])
        prompt_ids, response, ends, truncated = _cut(prompt_ids, ids, all_ends, room)
        full, types = build(prompt_ids, response)
        offset = build(prompt_ids, [-1])[0].index(-1)  # where the solution starts
        return EncodedResponse(full, types, truncated, 0, [offset + end for end in ends])
    room = recipe.max_length - len(head) - len(tail)
    prompt_ids, response, ends, truncated = _cut(prompt_ids, ids, all_ends, room)
    prefix = head + prompt_ids + tail
    return EncodedResponse(
        prefix + response, None, truncated, len(prefix), [len(prefix) + e for e in ends]
    )


def _cut(
    prompt_ids: list[int], ids: list[int], ends: list[int], room: int
) -> tuple[list[int], list[int], list[int], bool]:
    """Prompt and solution ids in `room` tokens: (prompt ids, solution ids, step ends, cut).

    Whole steps are kept from the first while they fit after the whole prompt. When not even
    the first does, the prompt loses its start; when the first step alone is longer than
    `room`, it loses its start too and the prompt goes, so that its end, where its reward is
    read, stays."""
    if room < 1:
        raise UserError(f"the model's length leaves {room} tokens for the solution.")
    kept = [end for end in ends if end < room - len(prompt_ids)]
    if kept:
        return prompt_ids, ids[: kept[-1] + 1], kept, len(kept) < len(ends)
    first = ids[: ends[0] + 1][-room:] if ends[0] >= 0 else []
    keep = room - len(first)
    prompt_ids = prompt_ids[len(prompt_ids) - keep :] if keep > 0 else []
    return prompt_ids, first, [len(first) - 1], True


def _piece_ends(
    tokenizer: Any, lead: str, steps: list[str], separator: str
) -> tuple[list[int], list[int]]:
    """The response's ids with each step and its separator tokenized apart (`lead`, what the
    template writes before the steps, with the first), and the index of each step's separator's
    last token.
    Apart, every separator is the same tokens, so every step's reward is read at the same token;
    tokenized as one text, a separator can merge differently at the end than between steps."""

    def tokens(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"] if text else []

    separator_ids = tokens(separator)
    ids: list[int] = []
    ends = []
    for number, step in enumerate(steps, start=1):
        piece = tokens(lead + step if number == 1 else step) + separator_ids
        if not piece and step:
            raise UserError(f"step {number} is no tokens at all under this tokenizer.")
        ids += piece
        ends.append(len(ids) - 1)
    return ids, ends


# A stand-in answer: where the template writes it is where a solution's steps begin.
_ANSWER_MARK = "rewardforge-solution-here"


def _solution_lead(encoder: RecipeEncoder, prompt: Prompt) -> tuple[str, str]:
    """(prompt text, lead): what the template writes before an answer's text in the
    response part (a chat template's thinking block, or the plain recipe's space). Found with
    a stand-in answer, so that a template that trims the answer's end (Llama 3, Gemma) or an
    empty answer changes nothing: the steps and separators are tokenized here, and what the
    template writes after the answer is not read."""
    prompt_text, response_text, start = _rendered_answer(encoder, prompt, _ANSWER_MARK)
    return prompt_text, response_text[:start]


def _rendered_answer(encoder: RecipeEncoder, prompt: Prompt, answer: str) -> tuple[str, str, int]:
    """(prompt text, response text, where `answer` starts in it) under the recipe."""
    prompt_text, response_text = encoder.render(prompt, answer)
    start = response_text.find(answer)
    if start < 0:
        raise UserError(
            "the chat template rewrites the answer's text, so its steps cannot be placed; "
            "score this model with --template plain."
        )
    return prompt_text, response_text, start


def _whole_text_ends(
    encoder: RecipeEncoder, prompt: Prompt, steps: list[str], separator: str
) -> tuple[str, list[int], list[int]]:
    """The prompt text, the response tokenized as one text, and the last token of each step's
    separator (PRMs saved before `step_tokens` was recorded read their steps this way)."""
    text = "".join(step + separator for step in steps)
    prompt_text, response_text, start = _rendered_answer(encoder, prompt, text)
    char_ends, position = [], start
    for step in steps:
        position += len(step) + len(separator)
        char_ends.append(position)
    encoded = encoder.tokenizer(
        response_text, add_special_tokens=False, return_offsets_mapping=True
    )
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    ends = [max(i for i, (_, stop) in enumerate(offsets) if stop <= end) for end in char_ends]
    return prompt_text, ids, ends


def encode_step_example(encoder: RecipeEncoder, example: StepExample) -> EncodedSolutions:
    """Every solution of a step-labelled example, with its labels (those of steps that fit)."""
    try:
        solutions = [
            encode_solution(encoder, example.prompt, list(s.steps)) for s in example.solutions
        ]
    except UserError as error:
        raise UserError(f"{example.source}: {error}" if example.source else str(error)) from None
    labels = [
        list(s.labels[: len(encoded.step_ends)]) if s.labels is not None else []
        for s, encoded in zip(example.solutions, solutions)
    ]
    return EncodedSolutions(solutions, labels, example.source)


def _trl_solution(encoder: RecipeEncoder, prompt: Prompt, steps: list[str]) -> EncodedResponse:
    """TRL's PRMTrainer's tokenization: BOS (where the tokenizer has one) and the prompt, then
    each step and the separator, every piece tokenized on its own without special tokens; the
    step's reward is read at its separator's last token."""
    tokenizer, recipe = encoder.tokenizer, encoder.recipe
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt_ids = tokenizer(prompt_as_text(prompt), add_special_tokens=False, verbose=False)
    response, ends = _piece_ends(tokenizer, "", steps, recipe.step_separator)
    prompt_ids, response, ends, truncated = _cut(
        prompt_ids["input_ids"], response, ends, recipe.max_length - len(bos)
    )
    prefix = bos + prompt_ids
    return EncodedResponse(
        prefix + response, None, truncated, len(prefix), [len(prefix) + e for e in ends]
    )
