"""The forward plan: how tokenized preference groups become model calls and rewards.

Each response of each group is one padded row; a group's rewards come back as one row of a
`(groups, max responses)` tensor, with NaN where a group has fewer responses. Training,
evaluation and scoring all go through `collate_groups` and `group_rewards`, so they feed the
model the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel


def collate_groups(rows: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad every response of every group into one batch, remembering which group it came from.

    `rows` are dicts with `input_ids` (one id list per response, best first), an optional
    `token_type_ids` and an optional `margin`.
    """
    sequences = [ids for row in rows for ids in row["input_ids"]]
    longest = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for index, ids in enumerate(sequences):
        input_ids[index, : len(ids)] = torch.tensor(ids)
        attention_mask[index, : len(ids)] = 1
    group_sizes = [len(row["input_ids"]) for row in rows]
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "group_index": torch.repeat_interleave(torch.arange(len(rows)), torch.tensor(group_sizes)),
        "rank_index": torch.cat([torch.arange(size) for size in group_sizes]),
        "margin": torch.tensor([_margin(row) for row in rows], dtype=torch.float32),
    }
    if "token_type_ids" in rows[0]:
        token_types = torch.zeros_like(input_ids)
        flat_types = [types for row in rows for types in row["token_type_ids"]]
        for index, types in enumerate(flat_types):
            token_types[index, : len(types)] = torch.tensor(types)
        batch["token_type_ids"] = token_types
    return batch


def group_rewards(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Run the model on a collated batch; return `(groups, max responses)` rewards, NaN-padded."""
    model_inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if "token_type_ids" in batch:
        model_inputs["token_type_ids"] = batch["token_type_ids"]
    flat = model(**model_inputs).logits[:, 0].float()
    groups = int(batch["group_index"].max()) + 1
    width = int(batch["rank_index"].max()) + 1
    rewards = flat.new_full((groups, width), math.nan)
    return rewards.index_put((batch["group_index"], batch["rank_index"]), flat)


@torch.no_grad()
def score_groups(
    model: PreTrainedModel,
    rows: Sequence[dict[str, Any]],
    pad_token_id: int,
    max_tokens_per_batch: int = 16384,
    progress: bool = True,
    description: str = "Scoring",
) -> list[list[float]]:
    """Rewards for each group's responses, in input order, batching similar lengths together.

    Batches are filled by token budget: a batch holds as many groups as fit in
    `max_tokens_per_batch` padded tokens.
    """
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda index: -_longest(rows[index]))
    results: list[list[float]] = [[] for _ in rows]
    with tqdm(total=len(rows), desc=description, disable=not progress, unit="group") as bar:
        for batch_indices in _token_budget_batches(order, rows, max_tokens_per_batch):
            batch = collate_groups([rows[index] for index in batch_indices], pad_token_id)
            batch = {key: value.to(device) for key, value in batch.items()}
            rewards = group_rewards(model, batch).cpu()
            for row_in_batch, index in enumerate(batch_indices):
                size = len(rows[index]["input_ids"])
                results[index] = rewards[row_in_batch, :size].tolist()
            bar.update(len(batch_indices))
    return results


def _token_budget_batches(
    order: list[int], rows: Sequence[dict[str, Any]], max_tokens: int
) -> list[list[int]]:
    batches: list[list[int]] = []
    current: list[int] = []
    sequences = 0
    longest = 0
    for index in order:
        row_sequences = len(rows[index]["input_ids"])
        row_longest = _longest(rows[index])
        padded = (sequences + row_sequences) * max(longest, row_longest)
        if current and padded > max_tokens:
            batches.append(current)
            current, sequences, longest = [], 0, 0
        current.append(index)
        sequences += row_sequences
        longest = max(longest, row_longest)
    if current:
        batches.append(current)
    return batches


def _longest(row: dict[str, Any]) -> int:
    return max(len(ids) for ids in row["input_ids"])


def _margin(row: dict[str, Any]) -> float:
    margin = row.get("margin")
    return math.nan if margin is None else float(margin)
