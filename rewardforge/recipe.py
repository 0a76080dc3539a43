"""The scoring recipe: how a (prompt, response) becomes token ids, decided once and saved.

Training writes `rewardforge_recipe.json` next to the weights; evaluation, scoring and serving
read it back, so a response is always formatted the same way it was during training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from transformers import PreTrainedTokenizerBase

from rewardforge.data.example import Message, PreferenceExample, Prompt
from rewardforge.errors import UserError

RECIPE_FILE = "rewardforge_recipe.json"
DEFAULT_SPLIT_TOKEN = "<|split|>"
DEFAULT_REWARD_MARKER = "<|reward|>"
Template = Literal["chat", "plain", "pair"]


@dataclass(frozen=True)
class ScoringRecipe:
    """Formatting and normalisation settings that travel with a trained reward model.

    `template` is `chat` (the tokenizer's chat template; reward at the last token), `plain`
    (prompt text + " " + response + EOS; reward at EOS) or `pair` (encoders: prompt and response
    as a sentence pair; reward at the first token). Over-long inputs lose prompt tokens from the
    left (oldest turns first) and response tokens from the right, keeping the end-of-turn tokens
    that carry the reward.

    With `reference_mode` (POLAR-style reward models) a response is scored against a reference
    answer. Decoders read `{prompt}{reference}<split>{prompt}{response}<reward>`, both markers
    special tokens added to the tokenizer, and the reward at the `<reward>` token; the prompt is
    rendered by the template both times. Encoders read the sentence pair (prompt + reference,
    prompt + response) with the reward at the first token, and need no added tokens.
    """

    template: Template
    max_length: int = 1024
    prompt_truncation: Literal["left"] = "left"
    response_truncation: Literal["right"] = "right"
    reward_token: Literal["last", "first"] = "last"
    reward_mean: float = 0.0
    reward_std: float = 1.0
    reference_mode: bool = False
    split_token: str | None = None
    reward_marker: str | None = None
    format_version: int = 1

    @classmethod
    def for_model(
        cls,
        tokenizer: PreTrainedTokenizerBase,
        is_encoder: bool,
        max_length: int,
        reference_mode: bool = False,
        markers: tuple[str, str] = (DEFAULT_SPLIT_TOKEN, DEFAULT_REWARD_MARKER),
    ) -> ScoringRecipe:
        """Choose the recipe for a backbone: pair for encoders, chat if a template exists.

        `markers` are the split and reward tokens of a reference-mode decoder recipe.
        """
        if is_encoder:
            return cls("pair", max_length, reward_token="first", reference_mode=reference_mode)
        template: Template = "chat" if tokenizer.chat_template else "plain"
        if not reference_mode:
            return cls(template=template, max_length=max_length, reward_token="last")
        return cls(
            template,
            max_length,
            reward_token="last",
            reference_mode=True,
            split_token=markers[0],
            reward_marker=markers[1],
        )

    @property
    def added_tokens(self) -> list[str]:
        """Special tokens this recipe needs in the tokenizer (the reference-mode markers)."""
        return [token for token in (self.split_token, self.reward_marker) if token is not None]

    def with_reward_stats(self, mean: float, std: float) -> ScoringRecipe:
        """Return a copy that normalises rewards with these statistics."""
        return replace(self, reward_mean=mean, reward_std=std if std > 0 else 1.0)

    def normalize(self, reward: float) -> float:
        """Map a raw reward to `(reward - mean) / std` with the stored statistics."""
        return (reward - self.reward_mean) / self.reward_std

    def save(self, directory: str | Path) -> None:
        """Write the recipe as JSON into a model directory."""
        path = Path(directory) / RECIPE_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> ScoringRecipe:
        """Read the recipe saved in a model directory."""
        path = Path(directory) / RECIPE_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{directory} has no {RECIPE_FILE}; it was not trained by rewardforge. Train it "
                "with `rewardforge train`, or load it with transformers directly."
            )
        values = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            **{key: value for key, value in values.items() if key in cls.__dataclass_fields__}
        )


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
        self._pair_builder = _pair_builder(tokenizer) if recipe.template == "pair" else None
        self._marker_ids = [_special_token_id(tokenizer, token) for token in recipe.added_tokens]
        plain = recipe.template == "plain"
        self._added_specials = _added_specials(tokenizer) if plain else ([], [])
        self._turn_end = self._assistant_turn_end()
        self._tail = self._reward_tail()

    def encode(
        self, prompt: Prompt, response: str, reference: str | None = None
    ) -> EncodedResponse:
        """Token ids for one (prompt, response) under the recipe; reference-based recipes need
        the `reference` answer the response is compared with, others refuse one."""
        self._check_reference(reference)
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
        head, prompt_ids, tail = self._prompt_parts(prompt_text)
        response_ids = self._tokenize(response_text, with_specials=False)
        if self.recipe.template == "plain":
            response_ids.append(self.tokenizer.eos_token_id)
        budget = self.recipe.max_length - self._special_count() - len(head) - len(tail)
        prompt_ids, response_ids, truncated = _truncate(
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
        prompt_ids, reference_ids, response_ids, truncated = _truncate_with_reference(
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
        """The prompt text and the response text, as the model will read them."""
        if self.recipe.template == "chat":
            messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            prompt_text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            full = self.tokenizer.apply_chat_template(
                [*messages, {"role": "assistant", "content": response}], tokenize=False
            )
            split = _common_prefix_length(prompt_text, full)
            return full[:split], full[split:]
        prompt_text = prompt if isinstance(prompt, str) else messages_to_transcript(prompt)
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
        if self.recipe.template != "chat":
            return ""
        sentinel = "\x00rewardforge\x00"
        _, response_text = self.render("x", sentinel)
        return response_text.split(sentinel, 1)[-1]

    def _reward_tail(self) -> int:
        """How many trailing response tokens mark the end of the turn (kept when truncating)."""
        if self.recipe.template == "pair":
            return 0
        if self.recipe.template == "plain":
            return 1
        suffix = self._turn_end
        return len(self._tokenize(suffix, with_specials=False)) if suffix else 0


def messages_to_transcript(messages: list[Message]) -> str:
    """Render chat messages as an HH-style transcript ending with an open assistant turn."""
    speakers = {"user": "Human", "assistant": "Assistant", "system": "System"}
    turns = [f"\n\n{speakers.get(m['role'], m['role'])}: {m['content']}" for m in messages]
    return "".join(turns) + "\n\nAssistant:"


def _truncate(
    prompt: list[int], response: list[int], budget: int, keep_tail: int
) -> tuple[list[int], list[int], bool]:
    """Fit prompt + response into `budget` tokens: prompt loses its start, response its end."""
    if len(prompt) + len(response) <= budget:
        return prompt, response, False
    keep_prompt = min(len(prompt), max(budget - len(response), budget // 2))
    prompt = prompt[len(prompt) - keep_prompt :]
    return prompt, _cut_end(response, budget - keep_prompt, keep_tail), True


def _truncate_with_reference(
    prompt: list[int], reference: list[int], response: list[int], budget: int, keep_tail: int
) -> tuple[list[int], list[int], list[int], bool]:
    """Fit two copies of the prompt, the reference and the response into `budget` tokens.

    The prompt loses its start (keeping at least an eighth of the budget a copy), then the
    reference and the response share what is left, each losing its end but not its last
    `keep_tail` tokens.
    """
    if 2 * len(prompt) + len(reference) + len(response) <= budget:
        return prompt, reference, response, False
    answers = len(reference) + len(response)
    keep_prompt = min(len(prompt), max((budget - answers) // 2, budget // 8))
    rest = budget - 2 * keep_prompt
    keep_response = min(len(response), max(rest - len(reference), rest // 2))
    keep_reference = min(len(reference), rest - keep_response)
    keep_response = min(len(response), rest - keep_reference)
    return (
        prompt[len(prompt) - keep_prompt :],
        _cut_end(reference, keep_reference, keep_tail),
        _cut_end(response, keep_response, keep_tail),
        True,
    )


def _cut_end(ids: list[int], keep: int, keep_tail: int) -> list[int]:
    """The first `keep` tokens of `ids`, of which the last `keep_tail` are the end of `ids`."""
    if len(ids) <= keep:
        return ids
    tail = ids[len(ids) - keep_tail :] if keep_tail else []
    return ids[: max(keep - len(tail), 0)] + tail


def _common_prefix_length(a: str, b: str) -> int:
    length = 0
    for char_a, char_b in zip(a, b):
        if char_a != char_b:
            break
        length += 1
    return length


def _added_specials(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer adds before and after one text (a BOS, an EOS), from a
    probe."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    start = _find(full, bare, 0)
    return full[:start], full[start + len(bare) :]


def _pair_builder(tokenizer: PreTrainedTokenizerBase) -> PairBuilder:
    """Learn how an encoder's tokenizer wraps a sentence pair in special tokens, from a probe."""
    first = tokenizer("a", add_special_tokens=False)["input_ids"]
    second = tokenizer("b", add_special_tokens=False)["input_ids"]
    probe = tokenizer("a", "b")
    ids = probe["input_ids"]
    types = probe.get("token_type_ids") or [0] * len(ids)
    start_first = _find(ids, first, 0)
    start_second = _find(ids, second, start_first + len(first))
    end_first, end_second = start_first + len(first), start_second + len(second)

    def build(prompt_ids: list[int], response_ids: list[int]) -> tuple[list[int], list[int]]:
        input_ids = (
            ids[:start_first]
            + prompt_ids
            + ids[end_first:start_second]
            + response_ids
            + ids[end_second:]
        )
        type_ids = (
            types[:start_first]
            + [types[start_first]] * len(prompt_ids)
            + types[end_first:start_second]
            + [types[start_second]] * len(response_ids)
            + types[end_second:]
        )
        return input_ids, type_ids

    return build


PairBuilder = Callable[[list[int], list[int]], tuple[list[int], list[int]]]


def _special_token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """The id of one of the recipe's added special tokens, which the tokenizer must hold."""
    if token not in tokenizer.get_vocab():
        raise UserError(
            f"the tokenizer has no {token} token, which this reference-based recipe needs. Load "
            "the model directory that `rewardforge train --reference-mode` wrote."
        )
    return tokenizer.convert_tokens_to_ids(token)


def _find(haystack: list[int], needle: list[int], start: int) -> int:
    for index in range(start, len(haystack) - len(needle) + 1):
        if haystack[index : index + len(needle)] == needle:
            return index
    raise UserError("could not find how this tokenizer joins a sentence pair.")
