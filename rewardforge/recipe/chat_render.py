"""A conversation through a tokenizer's chat template, split where the assistant's turn begins."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from rewardforge.data.conversation import prompt_as_messages
from rewardforge.data.example import Prompt
from rewardforge.recipe.tokenizer_probes import common_prefix_length


def render_chat(
    tokenizer: PreTrainedTokenizerBase, prompt: Prompt, response: str
) -> tuple[str, str]:
    """(prompt text, response text): the template over prompt + response, split after the
    generation prompt, so that the two parts join into exactly the rendered conversation."""
    messages = prompt_as_messages(prompt)
    prompt_text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": response}], tokenize=False
    )
    split = common_prefix_length(prompt_text, full)
    return full[:split], full[split:]
