"""Row formats: detect which one a file uses and parse its rows into `PreferenceExample`s.

Supported formats (after `--columns` renaming):

- explicit:        {"prompt": str | messages, "chosen": str, "rejected": str}
- implicit:        {"chosen": str, "rejected": str} holding whole transcripts (HH-RLHF style)
- conversational:  {"chosen": messages, "rejected": messages[, "prompt": messages]}
- ranked:          {"prompt": ..., "responses": [str, ...], "rank": [int, ...]}  (1 = best)
- ordered:         {"prompt": ..., "responses": [str, ...]}  (already best to worst)

Every format also accepts the optional fields `margin`, `chosen_score`/`rejected_score` and
`category`.

Reference-based (POLAR-style) reward models read rows with a `reference` answer as well. In
reference mode a ranked or ordered row of three or more responses without one uses its best
response as the reference and the rest as the group to rank.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from rewardforge.data.conversation import ASSISTANT_TURN, transcript_to_messages
from rewardforge.data.example import Message, PreferenceExample, Prompt


class RowError(ValueError):
    """A problem with one row. `reason` is a short category used to count skipped rows."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def detect_format(row: dict[str, Any]) -> str:
    """Name the format of a row from its keys, or raise `RowError` if none fits."""
    if "responses" in row:
        return "ranked" if "rank" in row else "ordered"
    if "chosen" in row and "rejected" in row:
        if isinstance(row["chosen"], list):
            return "conversational"
        return "explicit" if "prompt" in row else "implicit"
    raise RowError(
        "unknown format",
        f"unknown format: keys {sorted(row)} match no supported format. Expected 'prompt'/'chosen'/"
        "'rejected', 'chosen'/'rejected', or 'prompt'/'responses'[/'rank']; use --columns to map "
        "other key names, e.g. --columns prompt=question,chosen=good,rejected=bad.",
    )


def parse_row(
    row: dict[str, Any], fmt: str, source: str, reference_mode: bool = False
) -> PreferenceExample:
    """Parse one row of a known format into a `PreferenceExample`.

    With `reference_mode` every example gets a reference answer (see the module docstring);
    without it a row that has one is refused, since a plain reward model cannot use it.
    """
    prompt, responses = _PARSERS[fmt](row)
    # A transcript whose last assistant turn is empty is a real choice (the assistant said
    # nothing, and HH-RLHF raters sometimes preferred that); elsewhere an empty field is a mistake.
    if fmt != "implicit" and any(not response.strip() for response in responses):
        raise RowError("empty response", "a response is empty.")
    if len(set(responses)) < len(responses):
        raise RowError("identical responses", "chosen and rejected responses are identical.")
    reference, responses = _place_reference(
        _optional_str(row, "reference"), responses, reference_mode
    )
    return PreferenceExample(
        prompt=prompt,
        responses=tuple(responses),
        margin=_optional_float(row, "margin"),
        category=_optional_str(row, "category"),
        source=source,
        reference=reference,
    )


def _place_reference(
    reference: str | None, responses: list[str], reference_mode: bool
) -> tuple[str | None, list[str]]:
    """The example's reference and the responses left to rank."""
    if not reference_mode:
        if reference is not None:
            raise RowError(
                "reference in plain mode",
                "the row has a 'reference', which only a reference-based reward model reads: "
                "train one with --reference-mode, or remove the field.",
            )
        return None, responses
    if reference is not None:
        if not reference.strip():
            raise RowError("empty reference", "'reference' is empty.")
        return reference, responses
    if len(responses) >= 3:
        return responses[0], responses[1:]
    raise RowError(
        "no reference",
        "reference mode needs a 'reference' field, or a ranked or ordered row of at least three "
        "responses (the best one becomes the reference).",
    )


def score_gap(row: dict[str, Any]) -> float | None:
    """`chosen_score - rejected_score` when both are present, else None."""
    if "chosen_score" not in row or "rejected_score" not in row:
        return None
    return _optional_float(row, "chosen_score") - _optional_float(row, "rejected_score")


def _parse_explicit(row: dict[str, Any]) -> tuple[Prompt, list[str]]:
    return parse_prompt(row["prompt"]), [_text(row, "chosen"), _text(row, "rejected")]


def _parse_implicit(row: dict[str, Any]) -> tuple[Prompt, list[str]]:
    chosen, rejected = _text(row, "chosen"), _text(row, "rejected")
    if chosen == rejected:
        raise RowError("identical responses", "chosen and rejected are identical.")
    shared = os.path.commonprefix([chosen, rejected])
    boundary = shared.rfind(ASSISTANT_TURN)
    if boundary < 0:
        raise RowError(
            "no shared prompt",
            "chosen and rejected share no prompt ending in '\\n\\nAssistant:'. Add a 'prompt' "
            "field (explicit format) so the prompt is not guessed.",
        )
    end = boundary + len(ASSISTANT_TURN)
    prompt_text = chosen[:end]
    prompt = transcript_to_messages(prompt_text) or prompt_text
    return prompt, [chosen[end:].strip(), rejected[end:].strip()]


def _parse_conversational(row: dict[str, Any]) -> tuple[Prompt, list[str]]:
    chosen, rejected = (
        parse_messages(row["chosen"], "chosen"),
        parse_messages(row["rejected"], "rejected"),
    )
    if "prompt" in row:
        prompt = parse_messages(row["prompt"], "prompt")
        return prompt, [_final_reply(chosen, "chosen"), _final_reply(rejected, "rejected")]
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise RowError(
            "no shared prompt",
            "chosen and rejected conversations share no opening messages; add a 'prompt' field.",
        )
    return chosen[:shared], [
        _final_reply(chosen[shared:], "chosen"),
        _final_reply(rejected[shared:], "rejected"),
    ]


def _parse_ranked(row: dict[str, Any]) -> tuple[Prompt, list[str]]:
    responses = _responses(row)
    ranks = row["rank"]
    if not isinstance(ranks, list) or len(ranks) != len(responses):
        raise RowError("wrong type", "'rank' must be a list with one rank per response (1 = best).")
    if not all(isinstance(rank, int | float) and not isinstance(rank, bool) for rank in ranks):
        raise RowError("wrong type", "'rank' must hold numbers (1 = best).")
    if len(set(ranks)) < len(ranks):
        raise RowError("tied ranks", "'rank' has ties; each response needs its own rank.")
    ordered = [response for _, response in sorted(zip(ranks, responses))]
    return parse_prompt(row["prompt"]), ordered


def _parse_ordered(row: dict[str, Any]) -> tuple[Prompt, list[str]]:
    return parse_prompt(row["prompt"]), _responses(row)


_PARSERS: dict[str, Callable[[dict[str, Any]], tuple[Prompt, list[str]]]] = {
    "explicit": _parse_explicit,
    "implicit": _parse_implicit,
    "conversational": _parse_conversational,
    "ranked": _parse_ranked,
    "ordered": _parse_ordered,
}
REQUIRED_KEYS = {
    "explicit": ("prompt", "chosen", "rejected"),
    "implicit": ("chosen", "rejected"),
    "conversational": ("chosen", "rejected"),
    "ranked": ("prompt", "responses", "rank"),
    "ordered": ("prompt", "responses"),
}


def check_keys(row: dict[str, Any], fmt: str) -> None:
    """Raise `RowError` if the row lacks a key its file's format needs."""
    missing = [key for key in REQUIRED_KEYS[fmt] if key not in row or row[key] is None]
    if missing:
        raise RowError("missing key", f"missing key {missing[0]!r} (file format: {fmt}).")


def _text(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise RowError("wrong type", f"{key!r} must be a string, got {type(value).__name__}.")
    return value


def parse_prompt(value: Any) -> Prompt:
    """A prompt: text, or a non-empty list of chat messages."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return parse_messages(value, "prompt")
    raise RowError(
        "wrong type",
        f"'prompt' must be a string or a list of messages, got {type(value).__name__}.",
    )


def parse_messages(value: Any, key: str) -> list[Message]:
    """A non-empty list of `{"role", "content"}` messages; `key` names the field in errors."""
    if not isinstance(value, list) or not value:
        raise RowError("wrong type", f"{key!r} must be a non-empty list of messages.")
    for message in value:
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            raise RowError(
                "wrong type",
                f"{key!r} must hold messages like {{'role': 'user', 'content': '...'}}.",
            )
    return [{"role": message["role"], "content": message["content"]} for message in value]


def _final_reply(messages: list[Message], key: str) -> str:
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        raise RowError(
            "wrong type",
            f"{key!r} must end with exactly one assistant message after the shared prompt.",
        )
    return messages[0]["content"]


def _responses(row: dict[str, Any]) -> list[str]:
    responses = row["responses"]
    if not isinstance(responses, list) or len(responses) < 2:
        raise RowError("wrong type", "'responses' must be a list of at least two strings.")
    if not all(isinstance(response, str) for response in responses):
        raise RowError("wrong type", "'responses' must hold strings only.")
    return responses


def _optional_float(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RowError("wrong type", f"{key!r} must be a number, got {type(value).__name__}.")
    return float(value)


def _optional_str(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowError("wrong type", f"{key!r} must be a string, got {type(value).__name__}.")
    return value
