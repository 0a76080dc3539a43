"""Saved models that older transformers (4.4x-4.5x, which RewardBench pins) load correctly.

transformers 5 writes two things that 4.x misreads: Llama-family tokenizers are recorded as
`"tokenizer_class": "TokenizersBackend"` (4.x: "Tokenizer class TokenizersBackend does not
exist"; as the generic fast tokenizer it would also return `token_type_ids`, which Llama models
reject), and RoPE settings move into `rope_parameters`, which 4.x ignores, silently falling
back to its default `rope_theta` and so computing different rewards. This module adds the 4.x
spelling next to the 5.x one; transformers 5 reads the same files unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOKENIZER_CONFIG = "tokenizer_config.json"
MODEL_CONFIG = "config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"


def add_legacy_fields(directory: str | Path) -> None:
    """Rewrite a saved model directory's configs so that transformers 4.4x+ loads it."""
    directory = Path(directory)
    tokenizer_config = _read(directory / TOKENIZER_CONFIG)
    if tokenizer_config is not None:
        if tokenizer_config.get("tokenizer_class") == "TokenizersBackend":
            tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"  # same class in 5.x
            # 4.x's PreTrainedTokenizerFast would also return token_type_ids, which decoders
            # reject; keep the inputs the 5.x tokenizer gives.
            tokenizer_config.setdefault("model_input_names", ["input_ids", "attention_mask"])
        template = directory / CHAT_TEMPLATE_FILE
        if template.is_file():  # 4.4x reads the chat template from tokenizer_config.json only
            tokenizer_config.setdefault("chat_template", template.read_text(encoding="utf-8"))
        _write(directory / TOKENIZER_CONFIG, tokenizer_config)
    model_config = _read(directory / MODEL_CONFIG)
    if model_config is not None:
        _write(directory / MODEL_CONFIG, _with_legacy_rope(model_config))


def _with_legacy_rope(config: dict[str, Any]) -> dict[str, Any]:
    rope = config.get("rope_parameters")
    if not isinstance(rope, dict) or "rope_theta" not in rope:
        return config
    config.setdefault("rope_theta", rope["rope_theta"])
    if rope.get("rope_type", "default") != "default":
        config.setdefault("rope_scaling", {k: v for k, v in rope.items() if k != "rope_theta"})
    return config


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _write(path: Path, config: dict[str, Any]) -> None:
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
