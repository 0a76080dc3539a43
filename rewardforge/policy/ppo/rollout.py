"""One PPO rollout: sample responses, then measure them with the policy, the reference, the
critic and the reward model.

Prompts are left-padded together; positions are counted from each row's first real token, as
generation counts them, so the policy's log-probabilities here are those it sampled with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import GenerationConfig


@dataclass
class Rollout:
    """A batch of sampled responses and what was measured on them ([batch, response tokens]
    unless said)."""

    sequences: torch.Tensor  # [batch, prompt + response tokens]
    attention_mask: torch.Tensor  # [batch, prompt + response tokens]
    query_length: int
    response_mask: torch.Tensor
    ended_with_eos: torch.Tensor  # [batch]
    texts: list[str]

    @property
    def responses(self) -> torch.Tensor:
        return self.sequences[:, self.query_length :]

    @property
    def position_ids(self) -> torch.Tensor:
        return (self.attention_mask.cumsum(-1) - 1).clamp(min=0)

    def rows(self, index: torch.Tensor) -> Rollout:
        """The rollout of the rows in `index` (a PPO mini-batch)."""
        return Rollout(
            self.sequences[index],
            self.attention_mask[index],
            self.query_length,
            self.response_mask[index],
            self.ended_with_eos[index],
            [self.texts[i] for i in index.tolist()],
        )


def sample(
    policy, tokenizer, queries: Sequence[str], max_new_tokens: int, temperature: float
) -> Rollout:
    """Sample one response to each rendered query. Sampling is plain (no top-k or top-p), so
    the log-probabilities `token_logprobs` computes are those of the sampling distribution."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generation pads on the left
    try:
        encoded = tokenizer(
            list(queries), return_tensors="pt", padding=True, add_special_tokens=False
        )
    finally:
        tokenizer.padding_side = side  # the tokenizer is saved with the policy as it came
    eos = _eos_ids(policy, tokenizer)
    generation = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos,
    )
    device = next(policy.parameters()).device
    with torch.no_grad():
        sequences = policy.generate(**encoded.to(device), generation_config=generation)
    query_length = encoded["input_ids"].shape[1]
    responses = sequences[:, query_length:]
    is_eos = torch.isin(responses, torch.tensor(eos, device=responses.device))
    ended = is_eos.any(dim=1)
    first_eos = torch.where(ended, is_eos.float().argmax(dim=1), responses.shape[1])
    index = torch.arange(responses.shape[1], device=responses.device)
    response_mask = (index.unsqueeze(0) <= first_eos.unsqueeze(1)).float()
    response_mask[:, 0] = 1.0  # a response has at least its first token
    attention_mask = torch.cat([encoded["attention_mask"].to(device), response_mask.long()], 1)
    texts = [
        tokenizer.decode(row[: int(length)], skip_special_tokens=True)
        for row, length in zip(responses, response_mask.sum(dim=1))
    ]
    return Rollout(sequences, attention_mask, query_length, response_mask, ended, texts)


def _eos_ids(policy, tokenizer) -> list[int]:
    configured = getattr(policy.generation_config, "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    ids = [i for i in ids if i is not None] or [tokenizer.eos_token_id]
    return sorted(set(ids))


def token_logprobs(
    model, rollout: Rollout, temperature: float, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each response token's log-probability under `model` at `temperature`, and (if asked)
    the entropy of the distribution it was drawn from. Only the response's logits are made
    (`logits_to_keep`): a vocabulary-wide row for every prompt token would be most of the
    memory."""
    length = rollout.responses.shape[1]
    logits = model(
        input_ids=rollout.sequences,
        attention_mask=rollout.attention_mask,
        position_ids=rollout.position_ids,
        logits_to_keep=length + 1,
    ).logits[:, :-1]
    logprobs = torch.log_softmax(logits.float() / temperature, dim=-1)
    chosen = logprobs.gather(-1, rollout.responses.unsqueeze(-1)).squeeze(-1)
    entropy = -(logprobs.exp() * logprobs).sum(-1) if with_entropy else None
    return chosen, entropy


def token_values(critic, rollout: Rollout) -> torch.Tensor:
    """The critic's value of the state before each response token."""
    values = critic(rollout.sequences, rollout.attention_mask, rollout.position_ids)
    return values[:, rollout.query_length - 1 : -1]


def step_end_positions(tokenizer, response_ids: Sequence[int], steps: Sequence[str]) -> list[int]:
    """The index of the token that ends each step of a decoded response: the first token
    whose decoded prefix holds the whole step."""
    text = tokenizer.decode(response_ids, skip_special_tokens=True)
    ends, cursor = [], 0
    for step in steps:
        start = text.find(step, cursor)
        cursor = (start if start >= 0 else cursor) + len(step)
        ends.append(cursor)
    decoded = [
        len(tokenizer.decode(response_ids[: i + 1], skip_special_tokens=True))
        for i in range(len(response_ids))
    ]
    last = len(response_ids) - 1
    return [next((i for i, length in enumerate(decoded) if length >= end), last) for end in ends]


def placed_scores(
    rows: list[list[float]], positions: list[list[int]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged rows of scores and their token positions as [batch, most] tensors, padded with
    position -1 (nothing placed)."""
    most = max(len(row) for row in rows)
    scores = torch.zeros(len(rows), most, device=device)
    places = torch.full((len(rows), most), -1, dtype=torch.long, device=device)
    for index, (row, where) in enumerate(zip(rows, positions)):
        scores[index, : len(row)] = torch.tensor(row, dtype=torch.float32)
        places[index, : len(where)] = torch.tensor(where, dtype=torch.long)
    return scores, places
