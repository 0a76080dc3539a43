"""The forward plan: how tokenized preference groups become model calls and rewards.

Two layouts, one interface:

- segments (decoders): a group is one segment, the prefix tree of its responses laid out
  depth-first (`segments.prefix_tree_segment`): `[prompt][response 1]...[response K]` when the
  responses part right after the prompt, and any leading steps or whole solutions they share
  are fed once too. Each token attends causally to its own prefix only, its position id is its
  depth, and each reward is read at its response's last token (a process reward model's at each
  step's end). The segments of a micro-batch are packed end to end into one row, so nothing is
  padded: FlexAttention (CUDA) skips the masked blocks, and `rewardforge_segment_sdpa` (CPU)
  runs attention one segment at a time. Under plain SDPA or eager attention each segment is its
  own row, length-sorted so that padding stays small.
- packed encoders (FlexAttention or segment SDPA): every distinct response is its own segment of
  one row (identical responses are read once), with a block-diagonal mask and position ids
  restarting per segment, so nothing is padded; the reward is read at each segment's first
  token through the model's pooler and classifier. Encoders read both ways, so a prompt cannot
  be shared.
- padded (encoders elsewhere, and architectures that fail the layout check): each response is
  its own right-padded row, and the model's own head reads the reward.

Training, evaluation and scoring all use `ForwardPlan.collate` and `ForwardPlan.rewards`, which
run one `RewardForward` module (backbone and head in one forward).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from rewardforge.forward.layout_check import layout_problem
from rewardforge.forward.reward_forward import MODEL_INPUTS, RewardForward
from rewardforge.forward.segment_attention import SEGMENT_SDPA
from rewardforge.forward.segments import Segment, distinct_segments, prefix_tree_segment
from rewardforge.forward.steps import padded_steps, step_rewards, with_steps
from rewardforge.recipe import RecipeEncoder

logger = logging.getLogger(__name__)
Row = dict[str, Any]


@dataclass
class GroupRewards:
    """The rewards of a batch of groups, one row a group, best response first.

    `values[g, r]` is the reward of response r of group g; `present[g, r]` is False where group
    g has fewer responses than the widest group (`values` holds 0 there). Padding is marked by
    the mask, never by a value, so a real NaN reward stays visible to the loss and stops a run.
    """

    values: torch.Tensor
    present: torch.Tensor

    def as_lists(self) -> list[list[float]]:
        """Each group's rewards, without the padding."""
        counts = self.present.sum(dim=1).tolist()
        return [row[:count] for row, count in zip(self.values.tolist(), counts)]


@dataclass(frozen=True)
class ForwardPlan:
    """How rows of tokenized groups are laid out for the model.

    Rows are dicts with `input_ids` (one id list per response, best first), `prompt_length`
    (decoders: leading prompt tokens of each response) or `token_type_ids` (encoders), and an
    optional `margin`. `share_prompt` selects the segment layout for decoders, `pack` puts all
    of a batch's segments into one row, and `encoder` marks the packed encoder layout.
    """

    pad_token_id: int
    share_prompt: bool
    pack: bool = False
    encoder: bool = False

    @classmethod
    def for_model(cls, model: torch.nn.Module, encoder: RecipeEncoder) -> ForwardPlan:
        """Share prompts for decoders whose attention honours the plan's mask, else pad.

        Whether an architecture honours the mask and restarted position ids is checked once, in
        float32 so that rounding cannot decide it: on the model itself when its weights are
        float32, else on a small float32 model of the same architecture. Segments are packed
        into one row when the model attends through FlexAttention or segment SDPA; encoders are
        packed there too when their head reads a pooled first token (BERT-style), else padded.
        """
        pad_token_id = padding_id(encoder.tokenizer)
        padded = cls(pad_token_id, share_prompt=False)
        forward = model if isinstance(model, RewardForward) else RewardForward(model)
        is_encoder = encoder.recipe.template == "pair"
        if is_encoder and not (packs_segments(forward) and forward.reads_pooled_first_token):
            return padded
        chosen = segment_plan(pad_token_id, is_encoder, pack=packs_segments(forward))
        problem = layout_problem(forward, encoder, chosen)
        if problem:
            logger.warning("Using padded rows, not the segment layout: %s", problem)
            return padded
        return chosen

    def collate(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        """Lay a batch of rows out as model inputs plus the indices that map rewards back."""
        segments = self.share_prompt or self.pack
        batch = self._collate_segments(rows) if segments else self._collate_padded(rows)
        batch["margin"] = torch.tensor([_margin(row) for row in rows], dtype=torch.float32)
        return batch

    def rewards(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> GroupRewards:
        """Run a `RewardForward` (possibly wrapped) on a collated batch: `(groups, max
        responses)` rewards and the mask of the responses that exist."""
        flat = model(**{key: batch[key] for key in MODEL_INPUTS if key in batch})
        groups = int(batch["group_index"].max()) + 1
        width = int(batch["rank_index"].max()) + 1
        where = (batch["group_index"], batch["rank_index"])
        values = flat.new_zeros((groups, width)).index_put(where, flat)
        present = torch.zeros((groups, width), dtype=torch.bool, device=flat.device)
        return GroupRewards(values, present.index_put(where, torch.ones_like(present[where])))

    def sequence_lengths(self, row: Row) -> list[int]:
        """Lengths of the sequences (segments) this row becomes under the plan."""
        if not (self.share_prompt or self.pack):
            return [len(ids) for ids in row["input_ids"]]
        return [len(segment.ids) for segment in self._segments(row)]

    def batch_tokens(self, lengths: Sequence[int]) -> int:
        """Tokens fed for a batch of sequences of these lengths, padding included."""
        return sum(lengths) if self.pack else len(lengths) * max(lengths)

    def micro_batches(self, rows: Sequence[Row], max_tokens: float) -> list[list[int]]:
        """Indices of `rows`, longest first, cut into runs whose tokens fed fit `max_tokens`.

        Sorting first keeps padding small where rows are padded; a group that alone exceeds
        the budget forms a micro-batch of its own.
        """
        lengths = [self.sequence_lengths(row) for row in rows]
        order = sorted(range(len(rows)), key=lambda index: -max(lengths[index]))
        batches: list[list[int]] = []
        current: list[int] = []
        sequences: list[int] = []
        for index in order:
            if current and self.batch_tokens(sequences + lengths[index]) > max_tokens:
                batches.append(current)
                current, sequences = [], []
            current.append(index)
            sequences += lengths[index]
        if current:
            batches.append(current)
        return batches

    def collate_micro_batches(
        self, rows: Sequence[Row], max_tokens: float
    ) -> dict[str, list[dict[str, torch.Tensor]]]:
        """One optimizer step's rows as collated micro-batches of at most `max_tokens` fed."""
        return {
            "micro_batches": [
                self.collate([rows[index] for index in indices])
                for indices in self.micro_batches(rows, max_tokens)
            ]
        }

    @torch.no_grad()
    def score(
        self,
        model: RewardForward,
        rows: Sequence[Row],
        max_tokens_per_batch: int = 16384,
        progress: bool = True,
        description: str = "Scoring",
        unit: str = "group",
    ) -> list[list[Any]]:
        """Rewards for each row's responses, in input order, on the model's own device; for
        step-labelled rows (a process reward model), each solution's step rewards (logits).

        Rows are sorted by length and cut into batches of at most `max_tokens_per_batch`
        tokens fed (padding included), so a batch holds many short groups or a few long ones.
        The progress bar counts rows as `unit`s (a preference group, a problem), or their
        responses when `unit` is "response".
        """
        model.eval()
        device = next(model.parameters()).device
        results: list[list[Any]] = [[] for _ in rows]
        batches = self.micro_batches(rows, max_tokens_per_batch)
        counts = [len(row["input_ids"]) if unit == "response" else 1 for row in rows]
        with tqdm(total=sum(counts), desc=description, disable=not progress, unit=unit) as bar:
            for indices in batches:
                batch = self.collate([rows[index] for index in indices])
                batch = {key: value.to(device) for key, value in batch.items()}
                if "step_index" in batch:
                    rewards = step_rewards(model, batch).as_lists(len(indices))
                else:
                    rewards = self.rewards(model, batch).as_lists()
                for position, index in enumerate(indices):
                    results[index] = rewards[position]
                bar.update(sum(counts[index] for index in indices))
        return results

    def _segments(self, row: Row) -> list[Segment]:
        """The sequences this row becomes: decoders one (the prefix tree of its responses),
        packed encoders one per distinct response."""
        if self.share_prompt:
            return [prefix_tree_segment(row["input_ids"])]
        return distinct_segments(row["input_ids"], row.get("token_type_ids"))

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
        return padded_steps(batch, rows) if "step_ends" in rows[0] else batch

    def _collate_segments(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        """Segments (`_segments`) with their position ids, subtree sizes and reward spots.

        Packed: all segments end to end in one row, told apart by segment id. Otherwise one
        segment a row, right-padded (segment id -1). Decoders read each response's reward at
        its last token, encoders at its first; a process reward model's at each step's end.
        """
        segments: list[Segment] = []
        reward_at: list[tuple[int, int]] = []  # (segment, token) where each reward is read
        group_index: list[int] = []
        rank_index: list[int] = []
        step_index: list[int] = []
        for group, row in enumerate(rows):
            spots_of_rank: dict[int, list[tuple[int, int]]] = {}
            for segment in self._segments(row):
                number = len(segments)
                segments.append(segment)
                for rank, where in zip(segment.ranks, segment.where):
                    if "step_ends" in row:  # a process reward model: a reward per step
                        read = [where[end] for end in row["step_ends"][rank]]
                    else:
                        read = [where[0] if self.encoder else where[-1]]
                    spots_of_rank[rank] = [(number, token) for token in read]
            for rank in range(len(row["input_ids"])):  # rewards in response order
                spots = spots_of_rank[rank]
                reward_at += spots
                step_index += range(len(spots))
                group_index += [group] * len(spots)
                rank_index += [rank] * len(spots)
        sequences = [segment.ids for segment in segments]
        positions = [segment.positions for segment in segments]
        sizes = [segment.subtree_sizes for segment in segments]
        types = [segment.token_type_ids for segment in segments if segment.token_type_ids]
        if self.pack:
            starts = [0]
            for ids in sequences[:-1]:
                starts.append(starts[-1] + len(ids))
            segment_ids = [[number] * len(ids) for number, ids in enumerate(sequences)]
            sequences, positions, sizes, segment_ids, types = (
                [[token for part in parts for token in part]] if parts else []
                for parts in (sequences, positions, sizes, segment_ids, types)
            )
            spots = [starts[segment] + token for segment, token in reward_at]
        else:
            segment_ids = [[0] * len(ids) for ids in sequences]
            width = max(len(ids) for ids in sequences)
            spots = [segment * width + token for segment, token in reward_at]
        batch = {
            "input_ids": _pad(sequences, self.pad_token_id)[0],
            "position_ids": _pad(positions, 0)[0],
            "segment_ids": _pad(segment_ids, -1)[0],
            "subtree_sizes": _pad(sizes, 1)[0],
            "reward_index": torch.tensor(spots),
            "group_index": torch.tensor(group_index),
            "rank_index": torch.tensor(rank_index),
        }
        if types:
            batch["token_type_ids"] = _pad(types, 0)[0]
        return with_steps(batch, rows, step_index)


@dataclass
class TokenCount:
    """Tokens in the rows a model was given (`in_rows`) and tokens it was fed under its plan
    (`fed`, padding aside): what sharing prompts saved."""

    in_rows: int = 0
    fed: int = 0

    def add(self, plan: ForwardPlan, rows: Sequence[Row]) -> None:
        self.in_rows += sum(len(ids) for row in rows for ids in row["input_ids"])
        self.fed += sum(sum(plan.sequence_lengths(row)) for row in rows)


def padding_id(tokenizer: Any) -> int:
    """The id that pads rows: the pad token, else EOS (a model trained elsewhere may have no
    pad token); masks hide it, and rewards are never read there."""
    ids = (tokenizer.pad_token_id, tokenizer.eos_token_id)
    return next((i for i in ids if i is not None), 0)


def segment_plan(pad_token_id: int, is_encoder: bool, pack: bool) -> ForwardPlan:
    """Decoders: shared prompts (packed when `pack`). Encoders: one packed segment a response."""
    if is_encoder:
        return ForwardPlan(pad_token_id, share_prompt=False, pack=True, encoder=True)
    return ForwardPlan(pad_token_id, share_prompt=True, pack=pack)


def packs_segments(model: RewardForward) -> bool:
    return model.attention_backend in ("flex_attention", SEGMENT_SDPA)


def _pad(sequences: Sequence[Sequence[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(ids) for ids in sequences)
    padded = torch.full((len(sequences), longest), value, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for index, ids in enumerate(sequences):
        padded[index, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[index, : len(ids)] = 1
    return padded, mask


def _margin(row: Row) -> float:
    margin = row.get("margin")
    return math.nan if margin is None else float(margin)
