"""The forward plan: how tokenized preference groups become model calls and rewards.

Two layouts, one interface:

- shared (decoders): a group is one sequence `[prompt][response 1]...[response K]`. Each response
  attends causally to the prompt and to itself only (a 4D boolean attention mask), its position
  ids restart where the prompt ends, and its reward is read at its own last token. The prompt is
  encoded once per group instead of once per response.
- padded (encoders, which read both ways, and architectures that reject custom masks): each
  response is its own right-padded row, and the model's head reads the reward.

Training, evaluation and scoring all use `ForwardPlan.collate` and `ForwardPlan.rewards`, and
batches are length-grouped so that padding stays small.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from rewardforge.data.example import PreferenceExample
from rewardforge.recipe import RecipeEncoder

logger = logging.getLogger(__name__)
Row = dict[str, Any]
_PROBE = PreferenceExample(
    [{"role": "user", "content": "Hello! Can you help me, please?"}],
    ("Of course. What do you need?", "No."),
)


@dataclass(frozen=True)
class ForwardPlan:
    """How rows of tokenized groups are laid out for the model.

    Rows are dicts with `input_ids` (one id list per response, best first), `prompt_length`
    (decoders: leading prompt tokens of each response) or `token_type_ids` (encoders), and an
    optional `margin`.
    """

    pad_token_id: int
    share_prompt: bool

    @classmethod
    def for_model(
        cls, model: torch.nn.Module, encoder: RecipeEncoder, sharded: bool = False
    ) -> ForwardPlan:
        """Share prompts for decoders whose attention accepts the custom mask, else pad.

        The choice is checked with a small probe group: shared and padded rewards must agree,
        otherwise the padded layout is used and one log line says why. `sharded` (FSDP,
        DeepSpeed) also means padded: the shared layout applies the reward head outside the
        model's forward, where sharded parameters are not gathered.
        """
        pad_token_id = encoder.tokenizer.pad_token_id
        padded = cls(pad_token_id, share_prompt=False)
        if encoder.recipe.template == "pair":
            return padded
        if sharded:
            logger.warning("Prompt sharing disabled: parameters are sharded (FSDP/DeepSpeed).")
            return padded
        shared = cls(pad_token_id, share_prompt=True)
        probe = encoder.encode_example(_PROBE).as_row()
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                via_shared = shared.rewards(model, shared.collate([probe]))
                via_padded = padded.rewards(model, padded.collate([probe]))
        except Exception as error:  # any failure of the custom mask means: do not use it
            logger.warning("Prompt sharing disabled: the model rejected a 4D mask (%s).", error)
            return padded
        finally:
            model.train(was_training)
        difference = (via_shared - via_padded).abs().max().item()
        if not difference < 1e-3:
            logger.warning(
                "Prompt sharing disabled: shared and padded rewards differ by %.2g on this "
                "architecture; using the padded layout.",
                difference,
            )
            return padded
        return shared

    def collate(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        """Lay a batch of rows out as model inputs plus the indices that map rewards back."""
        batch = self._collate_shared(rows) if self.share_prompt else self._collate_padded(rows)
        batch["margin"] = torch.tensor([_margin(row) for row in rows], dtype=torch.float32)
        return batch

    def rewards(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Run the model on a collated batch: `(groups, max responses)` rewards, NaN-padded."""
        if "position_ids" in batch:
            hidden = _final_hidden_state(model, batch)
            picked = hidden.reshape(-1, hidden.shape[-1])[batch["reward_index"]]
            flat = reward_head(model)(picked)[:, 0].float()
        else:
            inputs = {
                key: batch[key]
                for key in ("input_ids", "attention_mask", "token_type_ids")
                if key in batch
            }
            flat = model(**inputs).logits[:, 0].float()
        groups = int(batch["group_index"].max()) + 1
        width = int(batch["rank_index"].max()) + 1
        rewards = flat.new_full((groups, width), math.nan)
        return rewards.index_put((batch["group_index"], batch["rank_index"]), flat)

    def sequence_lengths(self, row: Row) -> list[int]:
        """Lengths of the sequences this row becomes under the plan."""
        return [sum(len(ids) for ids in segment) for segment in self._segments(row)]

    @torch.no_grad()
    def score(
        self,
        model: torch.nn.Module,
        rows: Sequence[Row],
        max_tokens_per_batch: int = 16384,
        progress: bool = True,
        description: str = "Scoring",
    ) -> list[list[float]]:
        """Rewards for each row's responses, in input order.

        Rows are sorted by length and packed into batches of at most `max_tokens_per_batch`
        padded tokens, so a batch holds many short groups or a few long ones.
        """
        model.eval()
        device = next(model.parameters()).device
        lengths = [self.sequence_lengths(row) for row in rows]
        order = sorted(range(len(rows)), key=lambda index: -max(lengths[index]))
        results: list[list[float]] = [[] for _ in rows]
        with tqdm(total=len(rows), desc=description, disable=not progress, unit="group") as bar:
            for indices in _token_budget_batches(order, lengths, max_tokens_per_batch):
                batch = self.collate([rows[index] for index in indices])
                batch = {key: value.to(device) for key, value in batch.items()}
                rewards = self.rewards(model, batch).cpu()
                for position, index in enumerate(indices):
                    results[index] = rewards[position, : len(rows[index]["input_ids"])].tolist()
                bar.update(len(indices))
        return results

    def _segments(self, row: Row) -> list[list[list[int]]]:
        """Split a row into sequences: `[prompt, response 1, ...]` when shared, else one each."""
        responses = row["input_ids"]
        if not self.share_prompt:
            return [[ids] for ids in responses]
        prompt_length = row["prompt_length"][0]
        prompt = responses[0][:prompt_length]
        if all(length == prompt_length for length in row["prompt_length"]) and all(
            ids[:prompt_length] == prompt for ids in responses
        ):
            return [[prompt] + [ids[prompt_length:] for ids in responses]]
        # Truncation left these responses with different prompts: they cannot share one.
        return [
            [ids[:length], ids[length:]] for ids, length in zip(responses, row["prompt_length"])
        ]

    def _collate_padded(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        sequences = [ids for row in rows for ids in row["input_ids"]]
        input_ids, attention_mask = _pad(sequences, self.pad_token_id)
        sizes = [len(row["input_ids"]) for row in rows]
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "group_index": torch.repeat_interleave(torch.arange(len(rows)), torch.tensor(sizes)),
            "rank_index": torch.cat([torch.arange(size) for size in sizes]),
        }
        if "token_type_ids" in rows[0]:
            types = [type_ids for row in rows for type_ids in row["token_type_ids"]]
            batch["token_type_ids"] = _pad(types, 0)[0]
        return batch

    def _collate_shared(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        sequences: list[list[int]] = []
        positions: list[list[int]] = []
        blocks: list[list[int]] = []
        reward_at: list[tuple[int, int]] = []  # (sequence, token) of each response's last token
        group_index: list[int] = []
        rank_index: list[int] = []
        for group, row in enumerate(rows):
            rank = 0
            for segment in self._segments(row):
                prompt, responses = segment[0], segment[1:]
                ids, pos, block = list(prompt), list(range(len(prompt))), [0] * len(prompt)
                for number, response in enumerate(responses, start=1):
                    ids += response
                    pos += range(len(prompt), len(prompt) + len(response))
                    block += [number] * len(response)
                    reward_at.append((len(sequences), len(ids) - 1))
                    group_index.append(group)
                    rank_index.append(rank)
                    rank += 1
                sequences.append(ids)
                positions.append(pos)
                blocks.append(block)
        input_ids, _ = _pad(sequences, self.pad_token_id)
        width = input_ids.shape[1]
        position_ids = _pad(positions, 0)[0]
        block_ids = _pad(blocks, -1)[0]
        return {
            "input_ids": input_ids,
            "position_ids": position_ids,
            "attention_mask": _shared_prompt_mask(block_ids),
            "reward_index": torch.tensor([seq * width + tok for seq, tok in reward_at]),
            "group_index": torch.tensor(group_index),
            "rank_index": torch.tensor(rank_index),
        }


def _shared_prompt_mask(block_ids: torch.Tensor) -> torch.Tensor:
    """`(sequences, 1, L, L)` boolean mask: causal, and a response sees the prompt and itself.

    Block 0 is the prompt, blocks 1..K the responses, -1 padding. Padding attends to itself
    only, so that no row of the mask is empty (an empty row makes attention NaN).
    """
    length = block_ids.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    query, key = block_ids[:, :, None], block_ids[:, None, :]
    visible = (key == 0) | (key == query)
    real = (query >= 0) & (key >= 0)
    diagonal = torch.eye(length, dtype=torch.bool)
    return ((causal & visible & real) | diagonal)[:, None]


def _final_hidden_state(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The backbone's last hidden state (after the final norm) for a shared-prompt batch."""
    inputs = {key: batch[key] for key in ("input_ids", "attention_mask", "position_ids")}
    if torch.is_grad_enabled():
        # Training calls the wrapped model, so that DDP sees the forward it must synchronise.
        return model(**inputs, output_hidden_states=True).hidden_states[-1]
    # Scoring calls the backbone alone: no need to keep every layer's output for the batch.
    classifier = _unwrap(model)
    return getattr(classifier, classifier.base_model_prefix)(**inputs).last_hidden_state


def reward_head(model: torch.nn.Module) -> torch.nn.Module:
    """The linear reward head of a (possibly DDP- or PEFT-wrapped) decoder classifier."""
    return _unwrap(model).score


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers classifier inside DistributedDataParallel and peft.PeftModel wrappers."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def _pad(sequences: Sequence[Sequence[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(ids) for ids in sequences)
    padded = torch.full((len(sequences), longest), value, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for index, ids in enumerate(sequences):
        padded[index, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[index, : len(ids)] = 1
    return padded, mask


def _token_budget_batches(
    order: list[int], lengths: list[list[int]], max_tokens: int
) -> list[list[int]]:
    """Consecutive runs of `order` whose padded size (sequences x longest) fits the budget."""
    batches: list[list[int]] = []
    current: list[int] = []
    sequences = longest = 0
    for index in order:
        padded = (sequences + len(lengths[index])) * max(longest, *lengths[index])
        if current and padded > max_tokens:
            batches.append(current)
            current, sequences, longest = [], 0, 0
        current.append(index)
        sequences += len(lengths[index])
        longest = max(longest, *lengths[index])
    if current:
        batches.append(current)
    return batches


def _margin(row: Row) -> float:
    margin = row.get("margin")
    return math.nan if margin is None else float(margin)
