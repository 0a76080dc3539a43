"""The two forms of a prompt, text and chat messages, and the one way to turn each into the other.

A text prompt becomes one user message; messages become an HH-style transcript
(`\\n\\nHuman: ...\\n\\nAssistant:`), and such a transcript parses back into messages.
"""

from __future__ import annotations

import re

from rewardforge.data.example import Message, Prompt

HUMAN_TURN = "\n\nHuman:"
ASSISTANT_TURN = "\n\nAssistant:"
_TURN_SPLIT = re.compile(r"\n\n(Human|Assistant):")
_SPEAKERS = {"user": "Human", "assistant": "Assistant", "system": "System"}


def prompt_as_messages(prompt: Prompt) -> list[Message]:
    """The prompt as chat messages: a text prompt is one user message."""
    return prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]


def prompt_as_text(prompt: Prompt) -> str:
    """The prompt as text: messages become an HH-style transcript (see `messages_to_transcript`)."""
    return prompt if isinstance(prompt, str) else messages_to_transcript(prompt)


def prompt_as_question(prompt: Prompt) -> str:
    """The prompt as a judge quotes it: the text of a text prompt or of a lone user message
    (so the two read the same), else the conversation's transcript."""
    if isinstance(prompt, list) and len(prompt) == 1 and prompt[0]["role"] == "user":
        return prompt[0]["content"]
    return prompt_as_text(prompt)


def messages_to_transcript(messages: list[Message]) -> str:
    """Render chat messages as an HH-style transcript ending with an open assistant turn."""
    turns = [f"\n\n{_SPEAKERS.get(m['role'], m['role'])}: {m['content']}" for m in messages]
    return "".join(turns) + ASSISTANT_TURN


def transcript_to_messages(text: str) -> list[Message] | None:
    """Split an HH-style transcript (`\\n\\nHuman: ...\\n\\nAssistant: ...`) into chat messages.

    Returns None when the text is not such a transcript. A trailing empty assistant turn (the
    generation prompt) is dropped.
    """
    if not text.startswith(HUMAN_TURN):
        return None
    parts = _TURN_SPLIT.split(text)[1:]
    messages = [
        {"role": "user" if speaker == "Human" else "assistant", "content": content.strip()}
        for speaker, content in zip(parts[::2], parts[1::2])
    ]
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages
