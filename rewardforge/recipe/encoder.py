"""Applying a scoring recipe: a (prompt, response[, reference]) rendered, tokenized and truncated
into the token ids the model reads, with the reward at the recipe's token."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from rewardforge.data.conversation import prompt_as_text
from rewardforge.data.example import PreferenceExample, Prompt
from rewardforge.errors import UserError
from rewardforge.recipe.chat_render import render_chat
from rewardforge.recipe.families import family
from rewardforge.recipe.foreign import ForeignFormat
from rewardforge.recipe.judge_render import pairwise_texts, pointwise_texts
from rewardforge.recipe.scoring_recipe import ScoringRecipe
from rewardforge.recipe.tokenizer_probes import (
    added_specials,
    pair_builder,
    special_token_id,
)
from rewardforge.recipe.truncation import truncate, truncate_with_reference


@dataclass
class EncodedResponse:
    """Token ids for one (prompt, response) and whether truncation was needed.

    For decoders, `input_ids[:prompt_length]` are the prompt's tokens, which responses to the same
    prompt can share; encoders read both ways and never share (`prompt_length` is 0).
    """

    input_ids: list[int]
    token_type_ids: list[int] | None = None
    truncated: bool = False
    prompt_length: int = 0
    step_ends: list[int] | None = None  # process reward models: where each step's reward is read


@dataclass
class EncodedGroup:
    """One preference example, tokenized: its responses best first."""

    responses: list[EncodedResponse]
    margin: float | None = None
    source: str = ""

    @property
    def truncated(self) -> bool:
        return any(response.truncated for response in self.responses)

    def as_row(self) -> dict[str, Any]:
        """A flat dict for a `datasets.Dataset` row (used by the trainer)."""
        row: dict[str, Any] = {
            "input_ids": [response.input_ids for response in self.responses],
            "margin": math.nan if self.margin is None else self.margin,
        }
        if self.responses[0].token_type_ids is not None:
            row["token_type_ids"] = [response.token_type_ids for response in self.responses]
        else:
            row["prompt_length"] = [response.prompt_length for response in self.responses]
        return row


class RecipeEncoder:
    """Applies a `ScoringRecipe` with a tokenizer: renders text, tokenizes and truncates."""

    def __init__(self, recipe: ScoringRecipe, tokenizer: PreTrainedTokenizerBase) -> None:
        if not tokenizer.is_fast:
            raise UserError(
                f"{type(tokenizer).__name__} is a slow tokenizer; rewardforge needs a fast "
                "(tokenizers-backed) one. Load the backbone with its tokenizer.json."
            )
        self.recipe = recipe
        self.tokenizer = tokenizer
        self._pair_builder = pair_builder(tokenizer) if recipe.template == "pair" else None
        self._marker_ids = [special_token_id(tokenizer, token) for token in recipe.added_tokens]
        plain = recipe.template == "plain"
        self._added_specials = added_specials(tokenizer) if plain else ([], [])
        self._turn_end = self._assistant_turn_end()
        self._tail = self._reward_tail()
        whole_text = family(recipe.family).whole_text
        self._foreign = ForeignFormat(recipe, tokenizer) if whole_text else None

    def encode(
        self, prompt: Prompt, response: str, reference: str | None = None
    ) -> EncodedResponse:
        """Token ids for one (prompt, response) under the recipe; reference-based recipes need
        the `reference` answer the response is compared with, others refuse one."""
        self._check_reference(reference)
        if self._foreign is not None:  # a family trained elsewhere: its own text format
            return EncodedResponse(*_as_encoded(self._foreign.encode(prompt, response, reference)))
        if reference is None:
            return self.encode_rendered(*self.render(prompt, response))
        prompt_text, reference_text = self.render(prompt, reference)
        _, response_text = self.render(prompt, response)
        return self._encode_with_reference(prompt_text, reference_text, response_text)

    def encode_rendered(self, prompt_text: str, response_text: str) -> EncodedResponse:
        """Token ids for text already formatted as the model reads it (what `render` returns).

        Truncation and the reward token follow the recipe; the text itself is not templated
        again, so callers that hold rendered conversations (an RLHF trainer's decoded
        sequences) score them as they are.
        """
        if self.recipe.reference_mode:
            raise UserError(
                "this reward model is reference-based: score (prompt, response, reference) "
                "triples, not rendered sequences."
            )
        if self._foreign is not None:
            return EncodedResponse(
                *_as_encoded(self._foreign.encode_rendered(prompt_text, response_text))
            )
        head, prompt_ids, tail = self._prompt_parts(prompt_text)
        response_ids = self._tokenize(response_text, with_specials=False)
        if self.recipe.template == "plain" and self.recipe.judge is None:
            response_ids.append(self.tokenizer.eos_token_id)
        budget = self.recipe.max_length - self._special_count() - len(head) - len(tail)
        prompt_ids, response_ids, truncated = truncate(
            prompt_ids, response_ids, budget, keep_tail=self._tail
        )
        if not prompt_ids and not response_ids:
            raise UserError("nothing to score: the prompt and the response are both empty.")
        if self._pair_builder is None:
            prompt_ids = head + prompt_ids + tail
            return EncodedResponse(prompt_ids + response_ids, None, truncated, len(prompt_ids))
        input_ids, type_ids = self._pair_builder(prompt_ids, response_ids)
        return EncodedResponse(input_ids, type_ids, truncated)

    def encode_example(self, example: PreferenceExample) -> EncodedGroup:
        """Encode every response of a preference example (against its reference, if any)."""
        try:
            responses = [
                self.encode(example.prompt, response, example.reference)
                for response in example.responses
            ]
        except UserError as error:
            raise UserError(
                f"{example.source}: {error}" if example.source else str(error)
            ) from None
        return EncodedGroup(responses, margin=example.margin, source=example.source)

    def _check_reference(self, reference: str | None) -> None:
        if self.recipe.reference_mode and reference is None:
            raise UserError(
                "this reward model is reference-based: every response needs a 'reference' "
                "answer to be scored against."
            )
        if not self.recipe.reference_mode and reference is not None:
            raise UserError(
                "this reward model is not reference-based and cannot use a 'reference'; train "
                "one with --reference-mode, or leave the reference out."
            )

    def _encode_with_reference(
        self, prompt_text: str, reference_text: str, response_text: str
    ) -> EncodedResponse:
        """`{prompt}{reference}<split>{prompt}{response}<reward>` (encoders: a sentence pair).

        Truncation cuts the prompt copies from the left and the answers from the right, keeping
        the end-of-turn tokens; the markers are added afterwards, so they are never cut.
        """
        opening = self._added_specials[0]  # empty unless plain text
        head, prompt_ids, _ = self._prompt_parts(prompt_text)
        copy_head = head[len(opening) :]  # a BOS the chat template writes in each prompt copy
        reference_ids = self._tokenize(reference_text, with_specials=False)
        response_ids = self._tokenize(response_text, with_specials=False)
        self._refuse_markers(prompt_ids + reference_ids + response_ids)
        budget = (
            self.recipe.max_length
            - self._special_count()
            - len(self._marker_ids)
            - len(opening)
            - 2 * len(copy_head)
        )
        tail = self._tail if self.recipe.template == "chat" else 0
        prompt_ids, reference_ids, response_ids, truncated = truncate_with_reference(
            prompt_ids, reference_ids, response_ids, budget, keep_tail=tail
        )
        if self._pair_builder is not None:
            input_ids, type_ids = self._pair_builder(
                prompt_ids + reference_ids, prompt_ids + response_ids
            )
            return EncodedResponse(input_ids, type_ids, truncated)
        split_id, reward_id = self._marker_ids
        prompt_ids = copy_head + prompt_ids
        prefix = opening + prompt_ids + reference_ids + [split_id] + prompt_ids
        return EncodedResponse(prefix + response_ids + [reward_id], None, truncated, len(prefix))

    def _refuse_markers(self, ids: list[int]) -> None:
        for token, token_id in zip(self.recipe.added_tokens, self._marker_ids):
            if token_id in ids:
                raise UserError(
                    f"the text contains {token}, which this reward model reserves as a marker; "
                    "remove it from the prompt, reference and response."
                )

    def render(self, prompt: Prompt, response: str) -> tuple[str, str]:
        """The prompt text and the response text, as the model will read them (a judge: its
        question up to the answer, and the answer with the rest of the question)."""
        if self.recipe.judge is not None:
            head, tail = pointwise_texts(
                self.tokenizer, self.recipe.template == "chat", self.recipe.judge, prompt
            )
            return head, response + tail
        if self.recipe.template == "chat":
            return render_chat(self.tokenizer, prompt, response)
        prompt_text = prompt_as_text(prompt)
        if self.recipe.template == "plain":
            return prompt_text, " " + response
        return prompt_text, response

    def _prompt_parts(self, prompt_text: str) -> tuple[list[int], list[int], list[int]]:
        """The prompt's tokens as (leading special tokens, text tokens, trailing special tokens).

        Leading are the tokens the tokenizer adds itself (plain text: a BOS) and any BOS a chat
        template writes as text. Truncation cuts only the text tokens, so a long prompt keeps
        the BOS that a short one has and training and scoring read one format.
        """
        ids = self._tokenize(prompt_text, with_specials=False)
        head, tail = self._added_specials  # empty unless plain text
        bos = self.tokenizer.bos_token_id
        leading = 0
        while bos is not None and leading < len(ids) and ids[leading] == bos:
            leading += 1
        return head + ids[:leading], ids[leading:], list(tail)

    def _tokenize(self, text: str, with_specials: bool) -> list[int]:
        # verbose=False: the "longer than model_max_length" warning is moot, we truncate next.
        return self.tokenizer(text, add_special_tokens=with_specials, verbose=False)["input_ids"]

    def _special_count(self) -> int:
        if self._pair_builder is None:
            return 0
        return len(self._pair_builder([], [])[0])

    def complete_turn(self, text: str) -> str:
        """`text` with the end of the assistant turn restored where a client cut its whitespace.

        Chat templates end a turn with a marker and whitespace (ChatML: `<|im_end|>` and a
        newline), and the reward is read at the last token. RLHF clients often decode a sequence
        up to the marker without what follows (OpenRLHF does), which would move the reward to
        another token; the missing whitespace is put back so that such text scores as the
        recipe renders it.
        """
        marker = self._turn_end.rstrip()
        if marker and text.endswith(marker) and not text.endswith(self._turn_end):
            return text + self._turn_end[len(marker) :]
        return text

    def _assistant_turn_end(self) -> str:
        """What the chat template writes after an assistant reply (empty for other templates)."""
        if self.recipe.template != "chat" or self._judge_compares_only:
            return ""
        sentinel = "\x00rewardforge\x00"
        _, response_text = self.render("x", sentinel)
        return response_text.split(sentinel, 1)[-1]

    @property
    def _judge_compares_only(self) -> bool:
        """A judge with a pairwise question and no pointwise one (Skywork-Critic)."""
        return self.recipe.judge is not None and self.recipe.judge.pointwise is None

    def encode_pair(self, prompt: Prompt, answer_a: str, answer_b: str) -> EncodedResponse:
        """A judge's pairwise question about two answers, as token ids: the tokens before
        answer A are the shared prompt. Over-long answers lose tokens from their ends, each
        down to an equal share of the room left; the question loses its oldest tokens only
        when it alone does not fit."""
        if self.recipe.judge is None:
            raise UserError("only a judge (a generative reward model) compares two answers.")
        chat = self.recipe.template == "chat"
        head, middle, tail = pairwise_texts(self.tokenizer, chat, self.recipe.judge, prompt)
        opening, head_ids, closing = self._prompt_parts(head)  # as a pointwise question's
        middle_ids, tail_ids = (self._tokenize(text, False) for text in (middle, tail))
        answers = [self._tokenize(answer, False) for answer in (answer_a, answer_b)]
        fixed = len(opening) + len(closing) + len(middle_ids) + len(tail_ids)
        room = self.recipe.max_length - fixed - len(head_ids)
        truncated = sum(map(len, answers)) > room
        if truncated:
            share = max(room, 0) // 2
            longer = max(range(2), key=lambda index: len(answers[index]))
            other = 1 - longer
            answers[other] = answers[other][:share]
            answers[longer] = answers[longer][: max(room - len(answers[other]), 0)]
            overflow = fixed + len(head_ids) + sum(map(len, answers)) - self.recipe.max_length
            head_ids = head_ids[max(overflow, 0) :]
        prefix = opening + head_ids + closing
        ids = prefix + answers[0] + middle_ids + answers[1] + tail_ids
        return EncodedResponse(ids, None, truncated, len(prefix))

    def _reward_tail(self) -> int:
        """How many trailing response tokens mark the end of the turn (kept when truncating)."""
        if self._judge_compares_only:  # no answer is read alone
            return 0
        if self.recipe.judge is not None:  # the rest of the question after the answer
            chat = self.recipe.template == "chat"
            _, tail = pointwise_texts(self.tokenizer, chat, self.recipe.judge, "x")
            return len(self._tokenize(tail, with_specials=False))
        if self.recipe.template == "pair":
            return 0
        if self.recipe.template == "plain":
            return 1
        suffix = self._turn_end
        return len(self._tokenize(suffix, with_specials=False)) if suffix else 0


def _as_encoded(encoded: tuple[list[int], int, bool]) -> tuple[list[int], None, bool, int]:
    """`EncodedResponse` fields from a foreign format's (ids, prompt tokens, truncated)."""
    ids, prompt_length, truncated = encoded
    return ids, None, truncated, prompt_length
