"""Token ids as reward models trained elsewhere read them.

Each family's own tooling renders a conversation into one text and tokenizes it whole; this
module does the same, then finds the prompt's tokens (the longest shared prefix with the prompt
alone) so that the forward plan can still share them between responses:

- `trl`: TRL's RewardTrainer. Chat: the chat template over prompt + response, no generation
  prompt, no added special tokens. Plain text: prompt + response + EOS, with the tokenizer's
  special tokens. The reward is read at the last token that is not the pad token.
- `skywork`: chat RMs whose cards render with the chat template, strip a leading BOS from the
  text and let the tokenizer add one (Skywork-Reward, FsfairX): one BOS, never two.
- `openrlhf`: `(prompt + response).rstrip("\\n") + " " + EOS`, no added special tokens.
- `internlm2-reward`: the chat template, then the reward token id appended.
- `polar`: POLAR's published client: prompt + "\\n" + reference + `<|reward|>` + prompt + "\\n" +
  output + `[UNUSED_TOKEN_130]`, with the client's truncation, tokenized with BOS first.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from rewardforge.data.conversation import prompt_as_messages, prompt_as_text
from rewardforge.data.example import Prompt
from rewardforge.recipe.chat_render import render_chat
from rewardforge.recipe.scoring_recipe import ScoringRecipe
from rewardforge.recipe.tokenizer_probes import common_prefix_length
from rewardforge.recipe.truncation import truncate

# POLAR's client keeps 4 tokens for the reward token, the separator and two newlines.
POLAR_RESERVED_TOKENS = 4


class ForeignFormat:
    """Encodes (prompt, response[, reference]) in a foreign family's format."""

    def __init__(self, recipe: ScoringRecipe, tokenizer: PreTrainedTokenizerBase) -> None:
        self.recipe = recipe
        self.tokenizer = tokenizer
        self._tail = 0
        self._tail = self._probe_tail()

    def encode(
        self, prompt: Prompt, response: str, reference: str | None = None
    ) -> tuple[list[int], int, bool]:
        """(token ids, prompt tokens, truncated) of one response, the reward at the last id."""
        if self.recipe.family == "polar":
            return self._polar(prompt, response, reference or "")
        return self.encode_rendered(*self.render(prompt, response))

    def render(self, prompt: Prompt, response: str) -> tuple[str, str]:
        """The prompt text and the response text in the family's template."""
        if self.recipe.template != "chat":
            return prompt_as_text(prompt), response
        return render_chat(self.tokenizer, prompt, response)

    def encode_rendered(self, prompt_text: str, response_text: str) -> tuple[list[int], int, bool]:
        """Token ids of text already in the family's template (an RLHF client's decoded text)."""
        family, eos = self.recipe.family, self.tokenizer.eos_token or ""
        full, with_specials = prompt_text + response_text, True
        if family == "trl" and self.recipe.template == "chat":
            with_specials = False  # the template writes every special token itself
        elif family == "trl" and eos and not full.endswith(eos):
            full += eos
        elif family == "skywork":
            prompt_text, full = self._without_bos(prompt_text), self._without_bos(full)
        elif family == "openrlhf":
            with_specials = False
            full = full.rstrip("\n")
            if eos and not full.endswith(eos):
                full += " " + eos
        elif family == "internlm2-reward":
            with_specials = False
        return self._tokenized(full, prompt_text, with_specials)

    def _tokenized(
        self, full: str, prompt_text: str, with_specials: bool
    ) -> tuple[list[int], int, bool]:
        ids = self._ids(full, with_specials)
        shared = common_prefix_length(ids, self._ids(prompt_text, with_specials))
        if self.recipe.reward_token_id is not None:
            ids.append(self.recipe.reward_token_id)
        pad = self.recipe.trailing_pad_id
        while pad is not None and len(ids) > 1 and ids[-1] == pad:
            ids.pop()  # transformers reads the reward at the last token that is not padding
        shared = min(shared, len(ids) - 1)
        if len(ids) <= self.recipe.max_length:
            return ids, shared, False
        head = self._leading_bos(ids)
        prompt, response, _ = truncate(
            ids[head:shared], ids[shared:], self.recipe.max_length - head, keep_tail=self._tail
        )
        return ids[:head] + prompt + response, head + len(prompt), True

    def _polar(self, prompt: Prompt, response: str, reference: str) -> tuple[list[int], int, bool]:
        """POLAR's client: each part is cut by tokens (answers keep their end, the prompt its
        end), decoded, and joined with newlines and the two markers; BOS comes first."""
        prompt_text = "\n".join(m["content"] for m in prompt_as_messages(prompt))
        parts = [self._ids(text, True) for text in (prompt_text, reference, response)]
        limit = self.recipe.max_response_length or self.recipe.max_length
        cut = any(len(ids) > limit for ids in parts[1:])
        parts[1:] = [ids[-limit:] for ids in parts[1:]]
        budget = (
            self.recipe.max_length - POLAR_RESERVED_TOKENS - len(parts[1]) - len(parts[2])
        ) // 2
        if len(parts[0]) > budget:
            parts[0], cut = parts[0][-budget:] if budget > 0 else [], True
        p, r1, r2 = (self.tokenizer.decode(ids, skip_special_tokens=True) for ids in parts)
        split, reward = self.recipe.split_token, self.recipe.reward_marker
        prefix = f"{p}\n{r1}{split}{p}\n"
        ids, shared, _ = self._tokenized(f"{prefix}{r2}{reward}", prefix, with_specials=True)
        return ids, shared, cut

    def _ids(self, text: str, with_specials: bool) -> list[int]:
        return self.tokenizer(text, add_special_tokens=with_specials, verbose=False)["input_ids"]

    def _without_bos(self, text: str) -> str:
        bos = self.tokenizer.bos_token
        return text[len(bos) :] if bos and text.startswith(bos) else text

    def _leading_bos(self, ids: list[int]) -> int:
        bos = self.tokenizer.bos_token_id
        count = 0
        while bos is not None and count < len(ids) and ids[count] == bos:
            count += 1
        return count

    def _probe_tail(self) -> int:
        """How many trailing tokens end every response (the turn's end, EOS, the reward token):
        truncation keeps them. Two probe responses share exactly those."""
        if self.recipe.family == "polar":
            return 1
        ends = []
        for probe in ("a", "b"):
            ids, shared, _ = self.encode_rendered(*self.render("x", probe))
            ends.append(ids[shared:])
        a, b = ends
        length = 0
        while length < min(len(a), len(b)) - 1 and a[-1 - length] == b[-1 - length]:
            length += 1
        return length
