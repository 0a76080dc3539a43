"""The check that an architecture honours the forward plan's layout: in float32, each response's
reward-token hidden state in a shared, packed row must equal that of the response run alone.

`ForwardPlan.for_model` runs it once per model; a layout that fails it is replaced by padded
rows, with a warning that says why.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoModelForSequenceClassification, PretrainedConfig

from rewardforge.data.example import PreferenceExample
from rewardforge.forward.reward_forward import RewardForward
from rewardforge.forward.segment_attention import SEGMENT_SDPA
from rewardforge.recipe import RecipeEncoder
from rewardforge.recipe.encoder import EncodedGroup

if TYPE_CHECKING:  # the plan imports this module to choose itself
    from rewardforge.forward.plan import ForwardPlan

Row = dict[str, Any]

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


def layout_problem(model: RewardForward, encoder: RecipeEncoder, plan: ForwardPlan) -> str | None:
    """Why the segment layout `plan` would give wrong rewards on this architecture, or None.

    Compares, in float32 and without autocast, the hidden state the reward head reads for each
    response of two probe groups under the segment layout with that of the response run alone
    under the architecture's SDPA (or eager) attention: a trusted reference, since the plan's
    own backend may be what is broken (FlexAttention's CPU kernel in torch 2.13 gives NaN
    without a block mask on AVX2-only CPUs, while its masked packed rows are right).
    """
    examples = [
        replace(probe, reference="Happy to help.") if encoder.recipe.reference_mode else probe
        for probe in _PROBES
    ]
    probes = [_probe_row(encoder, example) for example in examples]
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
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            batch = {key: value.to(device) for key, value in plan.collate(probes).items()}
            keys = ("input_ids", "position_ids", "segment_ids", "subtree_sizes", "reward_index")
            shared = model.reward_features(
                *(batch[key] for key in keys), token_type_ids=batch.get("token_type_ids")
            )
            with _reference_attention(model.transformers_model):
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


@contextlib.contextmanager
def _reference_attention(model: torch.nn.Module) -> Iterator[None]:
    """The model switched to SDPA (eager where it has none) for the duration."""
    original = model.config._attn_implementation
    reference = "sdpa" if model._supports_sdpa else "eager"
    if original == reference:
        yield
        return
    model.set_attn_implementation(reference)
    try:
        yield
    finally:
        model.set_attn_implementation(original)


def _features_alone(
    model: RewardForward, row: Row, rank: int, device: torch.device
) -> torch.Tensor:
    """The backbone's final hidden state where the reward is read, the response run alone."""
    inputs = {"input_ids": torch.tensor([row["input_ids"][rank]], device=device)}
    if "token_type_ids" in row:
        inputs["token_type_ids"] = torch.tensor([row["token_type_ids"][rank]], device=device)
    hidden = model.backbone(**inputs).last_hidden_state
    return hidden[:, 0] if model.is_encoder else hidden[:, -1]


def _probe_row(encoder: RecipeEncoder, example: PreferenceExample) -> Row:
    """A probe group's row: its responses, or for a judge that rates no single answer (only
    compares two) its first two asked in both orders."""
    judge = encoder.recipe.judge
    if judge is None or judge.pointwise is not None:
        return encoder.encode_example(example).as_row()
    prompt, (first, second) = example.prompt, example.responses[:2]
    pairs = [encoder.encode_pair(prompt, first, second), encoder.encode_pair(prompt, second, first)]
    return EncodedGroup(pairs).as_row()


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
