"""The forward plan: how tokenized preference groups become model calls and rewards.

Two layouts, one interface:

- segments (decoders): a group is one segment `[prompt][response 1]...[response K]`. Each
  response attends causally to the prompt and to itself only, its position ids restart where the
  prompt ends, and its reward is read at its own last token. The prompt is encoded once per
  group instead of once per response. The segments of a micro-batch are packed end to end into
  one row, so nothing is padded: FlexAttention (CUDA) skips the masked blocks, and
  `rewardforge_segment_sdpa` (CPU) runs attention one segment at a time. Under plain SDPA or
  eager attention each segment is its own row, length-sorted so that padding stays small.
- packed encoders (FlexAttention or segment SDPA): every response is its own segment of one row,
  with a block-diagonal mask and position ids restarting per segment, so nothing is padded;
  the reward is read at each segment's first token through the model's pooler and classifier.
  Encoders read both ways, so a prompt cannot be shared.
- padded (encoders elsewhere, and architectures that fail the layout check): each response is
  its own right-padded row, and the model's own head reads the reward.

Training, evaluation and scoring all use `ForwardPlan.collate` and `ForwardPlan.rewards`, which
run one `RewardForward` module (backbone and head in one forward).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, PretrainedConfig

from rewardforge.data.example import PreferenceExample
from rewardforge.models.segment_attention import SEGMENT_SDPA
from rewardforge.recipe import RecipeEncoder
from rewardforge.reward_forward import RewardForward

logger = logging.getLogger(__name__)
Row = dict[str, Any]
MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "position_ids",
    "segment_ids",
    "block_ids",
    "reward_index",
)
# Two groups, so that a packed probe row holds more than one segment.
_PROBES = (
    PreferenceExample(
        [{"role": "user", "content": "Hello! Can you help me, please?"}],
        ("Of course. What do you need?", "No.", "Sure: tell me more about it."),
    ),
    PreferenceExample("What is two plus two?", ("Four.", "Five, I think.")),
)
# In float32 the two layouts' hidden states agree to about 1e-7 (relative); a layout that is wrong
# (ignored position ids or mask) moves them by far more than this.
_LAYOUT_TOLERANCE = 1e-5


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
        pad_token_id = encoder.tokenizer.pad_token_id
        padded = cls(pad_token_id, share_prompt=False)
        forward = model if isinstance(model, RewardForward) else RewardForward(model)
        is_encoder = encoder.recipe.template == "pair"
        if is_encoder and not (_packs(forward) and forward.reads_pooled_first_token):
            return padded
        problem = layout_problem(forward, encoder)
        if problem:
            logger.warning("Using padded rows, not the segment layout: %s", problem)
            return padded
        return _segment_plan(pad_token_id, is_encoder, pack=_packs(forward))

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
        return [sum(len(ids) for ids in segment) for segment in self._segments(row)]

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
    ) -> list[list[float]]:
        """Rewards for each row's responses, in input order, on the model's own device.

        Rows are sorted by length and cut into batches of at most `max_tokens_per_batch`
        tokens fed (padding included), so a batch holds many short groups or a few long ones.
        """
        model.eval()
        device = next(model.parameters()).device
        results: list[list[float]] = [[] for _ in rows]
        batches = self.micro_batches(rows, max_tokens_per_batch)
        with tqdm(total=len(rows), desc=description, disable=not progress, unit="group") as bar:
            for indices in batches:
                batch = self.collate([rows[index] for index in indices])
                batch = {key: value.to(device) for key, value in batch.items()}
                rewards = self.rewards(model, batch).as_lists()
                for position, index in enumerate(indices):
                    results[index] = rewards[position]
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

    def _collate_segments(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        """Segments with position ids restarting after the prompt, block ids and reward spots.

        Packed: all segments end to end in one row, told apart by segment id. Otherwise one
        segment a row, right-padded (segment id -1). Decoders read each response's reward at
        its last token, encoders at its first.
        """
        sequences: list[list[int]] = []
        positions: list[list[int]] = []
        blocks: list[list[int]] = []
        types: list[list[int]] = []  # token type ids (encoders)
        reward_at: list[tuple[int, int]] = []  # (segment, token) where each reward is read
        group_index: list[int] = []
        rank_index: list[int] = []
        for group, row in enumerate(rows):
            rank = 0
            for segment in self._segments(row):
                prompt, responses = (
                    (segment[0], segment[1:]) if self.share_prompt else ([], segment)
                )
                ids, pos, block = list(prompt), list(range(len(prompt))), [0] * len(prompt)
                for number, response in enumerate(responses, start=1):
                    ids += response
                    pos += range(len(prompt), len(prompt) + len(response))
                    block += [number] * len(response)
                    reward_at.append(
                        (len(sequences), len(prompt) if self.encoder else len(ids) - 1)
                    )
                    if "token_type_ids" in row:
                        types.append(row["token_type_ids"][rank])
                    group_index.append(group)
                    rank_index.append(rank)
                    rank += 1
                sequences.append(ids)
                positions.append(pos)
                blocks.append(block)
        if self.pack:
            starts = [0]
            for ids in sequences[:-1]:
                starts.append(starts[-1] + len(ids))
            segment_ids = [[number] * len(ids) for number, ids in enumerate(sequences)]
            sequences, positions, blocks, segment_ids, types = (
                [[token for part in parts for token in part]] if parts else []
                for parts in (sequences, positions, blocks, segment_ids, types)
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
            "block_ids": _pad(blocks, -1)[0],
            "reward_index": torch.tensor(spots),
            "group_index": torch.tensor(group_index),
            "rank_index": torch.tensor(rank_index),
        }
        if types:
            batch["token_type_ids"] = _pad(types, 0)[0]
        return batch


def layout_problem(model: RewardForward, encoder: RecipeEncoder) -> str | None:
    """Why the segment layout would give wrong rewards on this architecture, or None.

    Compares, in float32 and without autocast, the hidden state the reward head reads for each
    response of two probe groups under the segment layout with that of the response run alone.
    """
    examples = [
        replace(probe, reference="Happy to help.") if encoder.recipe.reference_mode else probe
        for probe in _PROBES
    ]
    is_encoder = encoder.recipe.template == "pair"
    probes = [encoder.encode_example(example).as_row() for example in examples]
    if not _is_float32(model):
        try:
            # It runs on the CPU: through the plan's CPU attention when that is the model's own.
            backend = SEGMENT_SDPA if model.attention_backend == SEGMENT_SDPA else "sdpa"
            model = RewardForward(_float32_miniature(model.transformers_model.config, backend))
        except Exception as error:  # an architecture we cannot shrink: test nothing, pad
            return f"no float32 model of this architecture could be built to check it ({error})"
        vocab = model.transformers_model.config.vocab_size
        probes = [
            {**probe, "input_ids": [[i % vocab for i in ids] for ids in probe["input_ids"]]}
            for probe in probes
        ]
    device = next(model.parameters()).device
    plan = _segment_plan(encoder.tokenizer.pad_token_id, is_encoder, pack=_packs(model))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            batch = {key: value.to(device) for key, value in plan.collate(probes).items()}
            keys = ("input_ids", "position_ids", "segment_ids", "block_ids", "reward_index")
            shared = model.reward_features(
                *(batch[key] for key in keys), token_type_ids=batch.get("token_type_ids")
            )
            alone = torch.cat(
                [
                    _features_alone(model, probe, rank, device)
                    for probe in probes
                    for rank in range(len(probe["input_ids"]))
                ]
            )
    except Exception as error:  # any failure of the custom mask means: do not use it
        return f"the model rejected the plan's attention mask ({type(error).__name__}: {error})"
    finally:
        model.train(was_training)
    difference = ((shared - alone).norm() / alone.norm()).item()
    if not difference < _LAYOUT_TOLERANCE:
        return (
            f"in float32, the reward token's hidden state in segments differs from "
            f"separate forwards by {difference:.2g} (relative) on this architecture"
        )
    return None


def _segment_plan(pad_token_id: int, is_encoder: bool, pack: bool) -> ForwardPlan:
    """Decoders: shared prompts (packed when `pack`). Encoders: one packed segment a response."""
    if is_encoder:
        return ForwardPlan(pad_token_id, share_prompt=False, pack=True, encoder=True)
    return ForwardPlan(pad_token_id, share_prompt=True, pack=pack)


def _features_alone(
    model: RewardForward, row: Row, rank: int, device: torch.device
) -> torch.Tensor:
    """The backbone's final hidden state where the reward is read, the response run alone."""
    inputs = {"input_ids": torch.tensor([row["input_ids"][rank]], device=device)}
    if "token_type_ids" in row:
        inputs["token_type_ids"] = torch.tensor([row["token_type_ids"][rank]], device=device)
    hidden = model.backbone(**inputs).last_hidden_state
    return hidden[:, 0] if model.is_encoder else hidden[:, -1]


def _packs(model: RewardForward) -> bool:
    return model.attention_backend in ("flex_attention", SEGMENT_SDPA)


def _is_float32(model: torch.nn.Module) -> bool:
    return all(
        parameter.dtype == torch.float32
        for parameter in model.parameters()
        if parameter.is_floating_point()
    ) and not getattr(model.transformers_model, "is_quantized", False)


def _float32_miniature(config: PretrainedConfig, attention: str) -> torch.nn.Module:
    """A two-layer, narrow, randomly initialised float32 classifier of the same architecture."""
    small = copy.deepcopy(config)
    sizes = {
        "num_hidden_layers": 2,
        "n_layer": 2,
        "hidden_size": 64,
        "n_embd": 64,
        "intermediate_size": 128,
        "n_inner": 128,
        "num_attention_heads": 4,
        "n_head": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 512,
    }
    for name, value in sizes.items():
        if hasattr(small, name) and getattr(small, name) is not None:
            setattr(small, name, value)
    if isinstance(getattr(small, "layer_types", None), list):
        small.layer_types = small.layer_types[:2]
    small.pad_token_id = None  # the reference runs one unpadded response at a time
    small.num_labels = 1
    if hasattr(small, "quantization_config"):
        del small.quantization_config
    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream as it was
        torch.manual_seed(0)
        return AutoModelForSequenceClassification.from_config(
            small, dtype=torch.float32, attn_implementation=attention
        )


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
