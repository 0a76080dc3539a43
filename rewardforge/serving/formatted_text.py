"""Texts a client formatted itself (OpenRLHF's queries, vLLM's classify inputs), taken apart into
the prompt and response text the recipe reads, without the padding and end tokens around them."""

from __future__ import annotations

from rewardforge.scoring.reward_model import RewardModel


def split_query(query: str, prompt: str, reward_model: RewardModel) -> tuple[str, str]:
    """(prompt text, response text) of a full query, without padding around it.

    Under the plain recipe a trailing EOS is dropped too: `encode_rendered` appends the one
    that carries the reward. Under the chat recipe a turn that ends at its end-of-turn marker
    gets the template's trailing whitespace back (OpenRLHF decodes without it).
    """
    tokenizer = reward_model.encoder.tokenizer
    if tokenizer.pad_token:
        query = strip_token(query, tokenizer.pad_token, from_start=True)
    if reward_model.recipe.template == "plain" and tokenizer.eos_token:
        query = strip_token(query, tokenizer.eos_token, from_start=False)
    query = reward_model.encoder.complete_turn(query)
    if prompt and query.startswith(prompt):
        return prompt, query[len(prompt) :]
    return "", query


def strip_token(text: str, token: str, from_start: bool) -> str:
    while from_start and text.startswith(token):
        text = text[len(token) :]
    while text.endswith(token):
        text = text[: -len(token)]
    return text
