"""The policy side of best-of-N and verification: a causal LM that samples answers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from rewardforge.data.conversation import prompt_as_messages, prompt_as_text
from rewardforge.data.example import Prompt
from rewardforge.models.backbones import resolve_backbone


@dataclass(frozen=True)
class SamplingSettings:
    """How answers are sampled (passed to `model.generate`)."""

    max_new_tokens: int = 128
    temperature: float = 0.8
    top_p: float = 0.95
    seed: int = 0


class Policy:
    """A Hugging Face causal LM that answers prompts (text or chat messages)."""

    def __init__(self, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # prompts generated together end where answers begin

    @classmethod
    def load(cls, name: str = "smollm2-135m") -> Policy:
        """Load a policy by bundled alias, hub id (offline cache), directory or `.gguf` file."""
        path = resolve_backbone(name)
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True)  # no pickle
        return cls(model, AutoTokenizer.from_pretrained(path))

    def sample(self, prompt: Prompt, n: int, settings: SamplingSettings) -> list[str]:
        """`n` sampled answers to `prompt`, special tokens removed."""
        return self.sample_batch([prompt], n, settings)[0]

    def sample_batch(
        self, prompts: list[Prompt], n: int, settings: SamplingSettings
    ) -> list[list[str]]:
        """`n` sampled answers to each prompt, generated together (left-padded) in one call."""
        inputs = self.tokenizer(
            [self._prompt_text(prompt) for prompt in prompts],
            return_tensors="pt",
            padding=True,
            add_special_tokens=self.tokenizer.chat_template is None,
        )
        inputs = inputs.to(self.model.device)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(settings.seed)
        try:
            with torch.no_grad():
                output = self.model.generate(
                    **inputs,
                    do_sample=True,
                    temperature=settings.temperature,
                    top_p=settings.top_p,
                    max_new_tokens=settings.max_new_tokens,
                    num_return_sequences=n,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
        finally:
            torch.random.set_rng_state(generator_state)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = [
            text.strip()
            for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        ]
        return [texts[index * n : (index + 1) * n] for index in range(len(prompts))]

    def _prompt_text(self, prompt: Prompt) -> str:
        if self.tokenizer.chat_template is None:
            return prompt_as_text(prompt)
        messages = prompt_as_messages(prompt)
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
