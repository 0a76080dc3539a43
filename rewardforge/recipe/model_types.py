"""Which transformers model types are bidirectional encoders (BERT, RoBERTa, DeBERTa, ...): they
read a response as a sentence pair and carry the reward at the first token."""

from __future__ import annotations


def is_encoder_config(model_type: str) -> bool:
    """True for bidirectional encoders (BERT, RoBERTa, DeBERTa, ...): they read the first token."""
    # imported here: transformers' auto mappings take seconds to import, and the CLI reads the
    # family registry (which uses this) to build its flags
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES
