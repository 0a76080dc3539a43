"""The one canonical preference example that every input format is parsed into."""

from __future__ import annotations

from dataclasses import dataclass

Message = dict[str, str]
Prompt = str | list[Message]


@dataclass(frozen=True)
class PreferenceExample:
    """A prompt and two or more responses, best first.

    A preference pair is a group of two. `prompt` is plain text or a list of chat messages
    (`{"role": ..., "content": ...}`). `reference` is the answer that reference-based (POLAR-style)
    reward models compare each response with; None for plain reward models. `source` says where
    the row came from (`file:row`) so that later errors can point back at it.
    """

    prompt: Prompt
    responses: tuple[str, ...]
    margin: float | None = None
    category: str | None = None
    source: str = ""
    reference: str | None = None

    @property
    def chosen(self) -> str:
        return self.responses[0]

    @property
    def rejected(self) -> str:
        return self.responses[-1]
