"""InternLM2 reward models (POLAR-1.8B/7B and their -Base models, internlm2-*-reward) converted
once to native transformers Llama classes, so that the code shipped with them never runs.

The architecture is Llama's with other names, except that InternLM2 packs the query, key and
value projections into one `wqkv` matrix whose rows are grouped per key-value head: for each
of them, its G query heads, then its key head, then its value head. The reward head `v_head`
becomes the sequence classifier's `score`. Pickle shards are read only with
`torch.load(weights_only=True)`. The tokenizer is rebuilt from `tokenizer.model` (sentencepiece
BPE with byte fallback and no dummy prefix) with the added tokens the folder names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
from transformers import LlamaConfig, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import import_protobuf
from transformers.tokenization_utils_base import generate_merges

from rewardforge.errors import UserError

CONTROL, USER_DEFINED = 3, 4  # sentencepiece piece types
_RENAMES = [
    (r"^model\.tok_embeddings\.", "model.embed_tokens."),
    (r"\.attention\.wo\.", ".self_attn.o_proj."),
    (r"\.feed_forward\.w1\.", ".mlp.gate_proj."),
    (r"\.feed_forward\.w3\.", ".mlp.up_proj."),
    (r"\.feed_forward\.w2\.", ".mlp.down_proj."),
    (r"\.attention_norm\.", ".input_layernorm."),
    (r"\.ffn_norm\.", ".post_attention_layernorm."),
    (r"^v_head\.", "score."),
]


def convert_internlm2(source: Path, target: Path) -> None:
    """Write `source`'s InternLM2 reward model to `target` as a Llama sequence classifier with
    safetensors weights and a fast tokenizer."""
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    llama = llama_config(config)
    target.mkdir(parents=True, exist_ok=True)
    heads = (llama.num_attention_heads, llama.num_key_value_heads, llama.head_dim)
    shards = weight_files(source)
    index: dict[str, str] = {}
    for number, shard in enumerate(shards, start=1):
        name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        converted = convert_weights(read_weights(shard), *heads)
        save_file(converted, str(target / name), metadata={"format": "pt"})
        index.update(dict.fromkeys(converted, name))
    if "score.weight" not in index:
        raise UserError(f"{source} has no reward head (v_head.weight): it is not a reward model.")
    (target / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": index}, indent=2), encoding="utf-8"
    )
    llama.save_pretrained(target)
    internlm2_tokenizer(source).save_pretrained(target)


def llama_config(config: dict[str, Any]) -> LlamaConfig:
    """The Llama config of an InternLM2 config, one reward output."""
    return LlamaConfig(
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_size"],
        intermediate_size=config["intermediate_size"],
        num_hidden_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        num_key_value_heads=config.get("num_key_value_heads", config["num_attention_heads"]),
        hidden_act=config.get("hidden_act", "silu"),
        max_position_embeddings=config["max_position_embeddings"],
        rms_norm_eps=config.get("rms_norm_eps", 1e-6),
        rope_theta=config.get("rope_theta", 10000.0),
        rope_scaling=config.get("rope_scaling"),
        attention_bias=config.get("bias", False),
        tie_word_embeddings=False,
        pad_token_id=config.get("pad_token_id"),
        bos_token_id=config.get("bos_token_id", 1),
        eos_token_id=config.get("eos_token_id", 2),
        num_labels=1,
        architectures=["LlamaForSequenceClassification"],
        reward_token_id=config.get("reward_token_id"),
    )


def weight_files(source: Path) -> list[Path]:
    """The folder's weight shards, safetensors first, else pickle `.bin` (read safely)."""
    for index_name, single in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        index = source / index_name
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            return [source / name for name in sorted(set(weight_map.values()))]
        if (source / single).is_file():
            return [source / single]
    raise UserError(f"{source} holds no model weights (safetensors or pytorch_model.bin).")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)  # no code runs


def convert_weights(
    state: dict[str, torch.Tensor], heads: int, kv_heads: int, head_dim: int
) -> dict[str, torch.Tensor]:
    """InternLM2 names and packed `wqkv` to Llama names and q/k/v projections. The causal LM's
    output layer, if any, is left out: a reward model reads `score`."""
    converted = {}
    for name, tensor in state.items():
        if name.startswith("output."):
            continue
        packed = re.fullmatch(r"(.*\.)attention\.wqkv\.(weight|bias)", name)
        if packed:  # a checkpoint with `bias: true` packs its q/k/v biases the same way
            prefix, kind = packed.groups()
            q, k, v = split_wqkv(tensor, heads, kv_heads, head_dim)
            converted[f"{prefix}self_attn.q_proj.{kind}"] = q
            converted[f"{prefix}self_attn.k_proj.{kind}"] = k
            converted[f"{prefix}self_attn.v_proj.{kind}"] = v
            continue
        for pattern, replacement in _RENAMES:
            name = re.sub(pattern, replacement, name)
        converted[name] = tensor.contiguous()
    return converted


def split_wqkv(
    wqkv: torch.Tensor, heads: int, kv_heads: int, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows grouped per key-value head as [G query heads, key, value] -> (q, k, v) weights, or
    biases (one value a row)."""
    group, columns = heads // kv_heads, wqkv.shape[1:]
    rows = wqkv.reshape(kv_heads, group + 2, head_dim, *columns)
    q = rows[:, :group].reshape(heads * head_dim, *columns)
    k = rows[:, group].reshape(kv_heads * head_dim, *columns)
    v = rows[:, group + 1].reshape(kv_heads * head_dim, *columns)
    return q.contiguous(), k.contiguous(), v.contiguous()


def internlm2_tokenizer(source: Path) -> PreTrainedTokenizerFast:
    """A fast tokenizer equal to the folder's sentencepiece model, its added tokens named as
    `tokenizer_config.json` names them (POLAR: id 92397 is `<|reward|>`)."""
    model_file = source / "tokenizer.model"
    if not model_file.is_file():
        raise UserError(f"{source} has no tokenizer.model, which InternLM2 models tokenize with.")
    proto = import_protobuf().ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    settings = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    names = {
        int(index): (token["content"], token.get("special", True))
        for index, token in settings.get("added_tokens_decoder", {}).items()
    }
    pieces = [piece.piece for piece in proto.pieces]
    atomic = {i for i, piece in enumerate(proto.pieces) if piece.type in (CONTROL, USER_DEFINED)}
    vocab = {piece: index for index, piece in enumerate(pieces)}
    merges = generate_merges(vocab, skip_tokens={pieces[i] for i in atomic})
    for index, (content, _) in names.items():
        del vocab[pieces[index]]
        pieces[index] = content
        vocab[content] = index
    backend = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    )
    backend.normalizer = normalizers.Replace(" ", "▁")  # whitespace escaped, no dummy prefix
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    backend.add_special_tokens(
        [
            AddedToken(pieces[i], special=names.get(i, ("", True))[1], normalized=False)
            for i in sorted(atomic)
            if proto.pieces[i].type == CONTROL or names.get(i, ("", False))[1]
        ]
    )
    backend.add_tokens(
        [
            AddedToken(pieces[i], special=False, normalized=False)
            for i in sorted(atomic)
            if proto.pieces[i].type == USER_DEFINED and not names.get(i, ("", False))[1]
        ]
    )
    bos = settings.get("bos_token") or "<s>"
    if settings.get("add_bos_token", True):
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=settings.get("eos_token") or "</s>",
        unk_token=settings.get("unk_token") or "<unk>",
        pad_token=settings.get("pad_token") or settings.get("eos_token") or "</s>",
        chat_template=settings.get("chat_template"),
        model_max_length=settings.get("model_max_length", 32768),
    )
