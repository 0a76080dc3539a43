import pytest
import torch

from rewardforge.models import LoraSettings, load_reward_backbone
from rewardforge.models.reward_head import is_encoder_config


def test_decoder_gets_a_pad_token_distinct_from_eos(tiny_llama_dir):
    model, tokenizer, is_encoder = load_reward_backbone(str(tiny_llama_dir))
    assert not is_encoder
    assert tokenizer.pad_token_id is not None
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert model.config.num_labels == 1


def test_encoder_is_detected(tiny_bert_dir):
    _, tokenizer, is_encoder = load_reward_backbone(str(tiny_bert_dir))
    assert is_encoder and tokenizer.pad_token == "[PAD]"
    assert is_encoder_config("roberta") and not is_encoder_config("llama")


def test_lora_trains_adapters_and_the_head(tiny_llama_dir):
    model, _, _ = load_reward_backbone(str(tiny_llama_dir), lora=LoraSettings(rank=4))
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert any("lora_" in name for name in trainable)
    assert any("score" in name for name in trainable)
    assert not any("embed_tokens" in name for name in trainable)


def test_quantization_without_cuda_is_a_clear_error(tiny_llama_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="CUDA GPU and the bitsandbytes"):
        load_reward_backbone(str(tiny_llama_dir), quantization="4bit")


def test_unknown_dtype_is_a_clear_error(tiny_llama_dir):
    with pytest.raises(ValueError, match="--dtype"):
        load_reward_backbone(str(tiny_llama_dir), dtype="float8")
