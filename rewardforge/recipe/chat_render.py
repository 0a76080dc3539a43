"""A conversation through a tokenizer's chat template, split where the assistant's turn begins."""

from __future__ import annotations

from jinja2.exceptions import TemplateError
from transformers import PreTrainedTokenizerBase

from rewardforge.data.conversation import prompt_as_messages
from rewardforge.data.example import Prompt
from rewardforge.errors import UserError
from rewardforge.recipe.tokenizer_probes import common_prefix_length


def render_chat(
    tokenizer: PreTrainedTokenizerBase, prompt: Prompt, response: str
) -> tuple[str, str]:
    """(prompt text, response text): the template over prompt + response, split after the
    generation prompt, so that the two parts join into exactly the rendered conversation.

    A template that fails on text messages, or renders without their text (vision templates
    read content as a list of parts and drop a plain string), is refused in one line: a
    reward read from such a rendering would judge text the model never saw.
    """
    messages = prompt_as_messages(prompt)
    conversation = [*messages, {"role": "assistant", "content": response}]
    try:
        prompt_text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        full = tokenizer.apply_chat_template(conversation, tokenize=False)
    except TemplateError as error:
        raise UserError(
            f"the tokenizer's chat template fails on a text conversation ({error}); score "
            "with --template plain, or give the tokenizer a chat template for text."
        ) from None
    lost = [m["role"] for m in conversation if m["content"].strip() not in full]
    if lost:
        raise UserError(
            f"the tokenizer's chat template renders the {lost[0]} message without its text "
            "(it expects content as a list of parts, as vision templates do); score with "
            "--template plain, or give the tokenizer a chat template for text."
        )
    split = common_prefix_length(prompt_text, full)
    return full[:split], full[split:]
