"""`RewardForward`: the backbone and the reward head in one `nn.Module.forward`.

A collated batch from the forward plan goes in, one reward per response comes out. Because the
whole computation happens inside this module's `forward`, the autocast that the Trainer and
accelerate wrap around `forward` covers the head too, and DDP, FSDP and DeepSpeed ZeRO-3 wrap
it as they wrap any model (no parameter is used outside a wrapped forward).
"""

from __future__ import annotations

import torch

from rewardforge.forward import attention_masks
from rewardforge.forward.architecture import has_bert_style_head
from rewardforge.recipe.model_types import is_encoder_config

# The keyword arguments of `RewardForward.forward`, which a collated batch passes on.
MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "position_ids",
    "segment_ids",
    "subtree_sizes",
    "reward_index",
)


class RewardForward(torch.nn.Module):
    """Wraps a single-output sequence classifier (optionally PEFT-wrapped) for plan batches.

    Two batch layouts arrive here:
    - segments (`segment_ids`, `subtree_sizes`, `position_ids`, `reward_index`): decoders with
      shared prompts, packed or one sequence a row, or packed encoder responses. The backbone
      runs with the plan's mask (causal for decoders) and the head reads the hidden state at
      `reward_index`: each response's last token (decoders) or first token (encoders).
    - padded rows (`attention_mask`): the classifier's own forward and head.
    """

    def __init__(self, classifier: torch.nn.Module, output: int = 0) -> None:
        super().__init__()
        self.classifier = classifier
        self.output = output  # which of the head's outputs is the reward (a judge has two)
        self.is_encoder = is_encoder_config(self.transformers_model.config.model_type)
        self.train(classifier.training)
        # FSDP's default auto-wrap policy reads the layer classes to wrap from here.
        self._no_split_modules = getattr(self.transformers_model, "_no_split_modules", None)

    @property
    def transformers_model(self) -> torch.nn.Module:
        """The transformers classifier inside a peft.PeftModel wrapper (or the model itself)."""
        model = self.classifier
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    @property
    def attention_backend(self) -> str:
        return self.transformers_model.config._attn_implementation

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        subtree_sizes: torch.Tensor | None = None,
        reward_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Rewards of the batch's responses, flat, in collation order, as float32."""
        inputs = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
        inputs = {key: value for key, value in inputs.items() if value is not None}
        if segment_ids is None and self.is_encoder and reward_index is None:
            # padded rows, read by the model's own head
            logits = self.classifier(input_ids=input_ids, **inputs).logits
            return _fresh_float(logits[:, self.output])
        if segment_ids is None:
            # Padded decoder rows: the reward at each row's last real token (or at the given
            # spots: a process reward model's steps). The classifier's own rule (the last token
            # that is not the pad id) misreads a row that ends with EOS when the pad token is
            # EOS, as in many models trained elsewhere.
            hidden = self.backbone(input_ids=input_ids, **inputs).last_hidden_state
            if reward_index is None:
                last = attention_mask.sum(dim=1) - 1
                features = hidden[torch.arange(len(last)), last]
            else:
                features = hidden.reshape(-1, hidden.shape[-1])[reward_index]
            return _fresh_float(self._head(features)[:, self.output])
        features = self.reward_features(
            input_ids, position_ids, segment_ids, subtree_sizes, reward_index, token_type_ids
        )
        return _fresh_float(self._head(features)[:, self.output])

    @property
    def reads_pooled_first_token(self) -> bool:
        """Whether this is an encoder with BERT's head, which packed segments can use."""
        return self.is_encoder and has_bert_style_head(self.transformers_model)

    @property
    def reads_two_labels(self) -> bool:
        """A two-label token classifier (a PRM trained by TRL): the reward is the logit of
        label 1 (correct) minus that of label 0, so its sigmoid is the classifier's softmax."""
        model = self.transformers_model
        return type(model).__name__.endswith("ForTokenClassification")

    def _head(self, features: torch.Tensor) -> torch.Tensor:
        """The classifier's own head over final hidden states, one row per reward."""
        model = self.transformers_model
        if self.reads_two_labels:
            logits = token_head(model, features)
            return logits[:, 1:] - logits[:, :1]
        if not self.is_encoder:
            return model.score(features)  # every decoder *ForSequenceClassification
        return encoder_sequence_head(model, self.backbone, features)

    @staticmethod
    def classifier_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This module's (gathered) state dict with keys as the classifier itself names them."""
        prefix = "classifier."
        return {key.removeprefix(prefix): value for key, value in state_dict.items()}

    @property
    def backbone(self) -> torch.nn.Module:
        """The model without its head (`model.model` for Llama, `transformer` for GPT-2)."""
        return getattr(self.transformers_model, self.transformers_model.base_model_prefix)

    def reward_features(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        segment_ids: torch.Tensor,
        subtree_sizes: torch.Tensor,
        reward_index: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The backbone's final hidden state at each `reward_index` (the head's input)."""
        attention = attention_masks.attention_inputs(
            segment_ids, subtree_sizes, causal=not self.is_encoder, backend=self.attention_backend
        )
        types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.backbone(
            input_ids=input_ids, position_ids=position_ids, **attention, **types
        ).last_hidden_state
        return hidden.reshape(-1, hidden.shape[-1])[reward_index]


def token_head(model: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
    """A `*ForTokenClassification` head: dropout, then a linear layer that Llama-family
    classifiers name `score` and GPT-2, GPT-NeoX, Bloom, Falcon and encoders `classifier`."""
    linear = model.score if hasattr(model, "score") else model.classifier
    dropout = getattr(model, "dropout", None)
    return linear(dropout(features) if dropout is not None else features)


def encoder_sequence_head(
    model: torch.nn.Module, backbone: torch.nn.Module, features: torch.Tensor
) -> torch.Tensor:
    """An encoder `*ForSequenceClassification` head as the architecture's own forward applies
    it to the final hidden states. Each head reads token 0 of the sequence it is given, so it
    gets one-token sequences: the hidden state where each reward is read."""
    first = features[:, None]
    pooler = getattr(backbone, "pooler", None)
    if pooler is not None:  # BERT: the backbone's pooler, dropout, a linear classifier
        return model.classifier(model.dropout(pooler(first)))
    if getattr(model, "pooler", None) is not None:  # DeBERTa: a context pooler on the model
        return model.classifier(model.dropout(model.pooler(first)))
    if hasattr(model, "pre_classifier"):  # DistilBERT
        hidden = torch.nn.functional.relu(model.pre_classifier(features))
        return model.classifier(model.dropout(hidden))
    return model.classifier(first)  # RoBERTa, XLM-R, ELECTRA: a head that reads token 0


def _fresh_float(rewards: torch.Tensor) -> torch.Tensor:
    # A copy, not a view: FSDP2 warns that an in-place op on a returned view skips its hooks.
    return rewards.to(torch.float32, copy=True)
