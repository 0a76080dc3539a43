"""The critic: a backbone and a one-output head that give a value at every token.

By default it starts as the reward model (InstructGPT's and OpenRLHF's choice): the same network
reads the policy's tokens, so before training its value at a response's last token is the
reward model's score of it. That needs the reward model to read the policy's tokens, so its
vocabulary must be the policy's; otherwise (an encoder, another tokenizer, a `serve` URL) the
critic is the policy's own backbone with a new head.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel

from rewardforge.adoption.resolve import ResolvedRewardModel, resolve_reward_model
from rewardforge.models.backbones import resolve_backbone
from rewardforge.models.reward_head import load_trained_reward_model, quiet_load_report
from rewardforge.recipe import ScoringRecipe
from rewardforge.recipe.families import is_reward_model_folder


class ValueModel(nn.Module):
    """A value for every token of a sequence, from `backbone`'s last hidden states."""

    def __init__(self, backbone: PreTrainedModel, head: nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).last_hidden_state
        return self.head(hidden).squeeze(-1).float()


def value_model_from_reward_model(resolved: ResolvedRewardModel) -> ValueModel:
    """The reward model's backbone and head, to be trained as the critic."""
    classifier = load_trained_reward_model(resolved.folder, key_mapping=resolved.key_mapping)
    backbone = getattr(classifier, classifier.base_model_prefix)
    return ValueModel(backbone, classifier.score)


def value_model_from_backbone(path: str) -> ValueModel:
    """A backbone (the policy's, or `--value-model`'s) with a new head that starts at 0, so the
    first advantages are the rewards themselves."""
    with quiet_load_report():  # a causal LM's unused lm_head is no news
        backbone = AutoModel.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
    head = nn.Linear(backbone.config.hidden_size, 1, bias=False)
    nn.init.zeros_(head.weight)
    return ValueModel(backbone, head)


def reads_the_policys_tokens(recipe: ScoringRecipe, reward_tokenizer, policy_tokenizer) -> bool:
    """Whether the reward model's network can read the policy's token ids: a decoder outcome
    model with the same vocabulary."""
    if recipe.template == "pair" or recipe.kind == "process":
        return False
    return reward_tokenizer.get_vocab() == policy_tokenizer.get_vocab()


def critic_for(
    reward_model: ResolvedRewardModel | None,
    reward_tokenizer,
    value_model: str | None,
    policy_path: str,
    policy_tokenizer,
) -> tuple[ValueModel, str]:
    """The critic `rlhf --algo ppo` trains, and a line that says where it started.
    `reward_model` is the reward model's folder as `resolve_reward_model` found it (None for a
    `serve` URL), `reward_tokenizer` the tokenizer it was loaded with."""
    if value_model is not None:
        if is_reward_model_folder(Path(value_model)):
            resolved = resolve_reward_model(value_model)
            return value_model_from_reward_model(resolved), f"critic: {value_model}"
        path = resolve_backbone(value_model)
        return value_model_from_backbone(path), f"critic: {value_model} with a new head"
    if reward_model is not None and reads_the_policys_tokens(
        reward_model.recipe, reward_tokenizer, policy_tokenizer
    ):
        return value_model_from_reward_model(reward_model), "critic: the reward model"
    return (
        value_model_from_backbone(policy_path),
        "critic: the policy's backbone with a new head (the reward model cannot read the "
        "policy's tokens)",
    )
