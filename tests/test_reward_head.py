import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    DebertaV2Config,
    LlamaConfig,
    RobertaConfig,
)

from rewardforge.errors import UserError
from rewardforge.forward.architecture import has_bert_style_head, use_plan_attention
from rewardforge.forward.plan import ForwardPlan
from rewardforge.forward.segment_attention import SEGMENT_SDPA
from rewardforge.models import LoraSettings, load_reward_backbone
from rewardforge.models.reward_head import switch_off_dropout
from rewardforge.recipe.model_types import is_encoder_config
from rewardforge.training.losses import preference_loss
from tests.test_forward_plan import build
from tests.test_trainer import gradient


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
    with pytest.raises(UserError, match="CUDA GPU and the bitsandbytes"):
        load_reward_backbone(str(tiny_llama_dir), quantization="4bit")


def test_unknown_dtype_is_a_clear_error(tiny_llama_dir):
    with pytest.raises(ValueError, match="--dtype"):
        load_reward_backbone(str(tiny_llama_dir), dtype="float8")


def _train_mode_rewards_twice(model: torch.nn.Module, input_ids: torch.Tensor) -> tuple:
    model.train()
    with torch.no_grad():
        return model(input_ids=input_ids).logits, model(input_ids=input_ids).logits


@pytest.mark.parametrize("disable_dropout", [True, False])
def test_encoder_dropout_is_switched_off_on_request(tiny_bert_dir, disable_dropout):
    model, _, _ = load_reward_backbone(str(tiny_bert_dir), disable_dropout=disable_dropout)
    first, second = _train_mode_rewards_twice(model, torch.arange(5, 25)[None])
    assert torch.equal(first, second) == disable_dropout


def test_decoder_attention_dropout_is_switched_off(tiny_llama_dir):
    model, _, _ = load_reward_backbone(str(tiny_llama_dir))
    for layer in model.model.layers:  # Llama keeps attention dropout as a float, not a module
        layer.self_attn.attention_dropout = 0.5
    first, second = _train_mode_rewards_twice(model, torch.arange(1, 21)[None])
    assert not torch.equal(first, second)
    switch_off_dropout(model)
    first, second = _train_mode_rewards_twice(model, torch.arange(1, 21)[None])
    assert torch.equal(first, second)


def test_lora_keeps_its_own_dropout(tiny_bert_dir):
    lora = LoraSettings(rank=4, dropout=0.05)
    model, _, _ = load_reward_backbone(str(tiny_bert_dir), lora=lora, disable_dropout=True)
    dropouts = [(name, m.p) for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert {p for name, p in dropouts if "lora_dropout" in name} == {0.05}
    assert {p for name, p in dropouts if "lora_dropout" not in name} == {0.0}


def test_pickle_weights_load_only_when_allowed(tiny_llama_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_llama_dir, pickled)
    state = load_file(str(pickled / "model.safetensors"))
    (pickled / "model.safetensors").unlink()
    torch.save(state, pickled / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors"):
        load_reward_backbone(str(pickled))
    model, _, _ = load_reward_backbone(str(pickled), allow_pickle_weights=True)
    assert torch.equal(model.model.embed_tokens.weight, state["model.embed_tokens.weight"])


def test_code_shipped_with_a_model_never_runs(tiny_llama_dir, tmp_path):
    import json
    import shutil

    folder = tmp_path / "remote-code"
    shutil.copytree(tiny_llama_dir, folder)
    marker = tmp_path / "code-ran"
    (folder / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import LlamaConfig\n"
        "class EvilConfig(LlamaConfig):\n    model_type = 'evil'\n",
        encoding="utf-8",
    )
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="evil", auto_map={"AutoConfig": "evil.EvilConfig"})
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="trust_remote_code"):
        load_reward_backbone(str(folder))
    assert not marker.exists()


TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


@pytest.mark.parametrize(
    ("config", "device", "backend"),
    [
        (LlamaConfig(num_labels=1, **TINY), "cpu", SEGMENT_SDPA),  # no Flex backward on CPU
        (BertConfig(num_labels=1, **TINY), "cpu", SEGMENT_SDPA),  # packed: BERT's head
        (RobertaConfig(num_labels=1, **TINY), "cpu", "sdpa"),  # no pooler: padded rows
        (DebertaV2Config(num_labels=1, **TINY), "cpu", "eager"),  # no SDPA at all
        (LlamaConfig(num_labels=1, **TINY), "cuda", "flex_attention"),
        (BertConfig(num_labels=1, **TINY), "cuda", "flex_attention"),
        (RobertaConfig(num_labels=1, **TINY), "cuda", "sdpa"),
        (DebertaV2Config(num_labels=1, **TINY), "cuda", "eager"),  # neither Flex nor SDPA
    ],
)
def test_packed_row_attention_where_the_plan_packs(config, device, backend):
    model = AutoModelForSequenceClassification.from_config(config)  # as loading does
    use_plan_attention(model, is_encoder_config(config.model_type), device)
    assert model.config._attn_implementation == backend


def test_only_bert_style_encoders_have_a_head_for_packed_segments():
    bert = AutoModelForSequenceClassification.from_config(BertConfig(num_labels=1, **TINY))
    roberta = AutoModelForSequenceClassification.from_config(RobertaConfig(num_labels=1, **TINY))
    assert has_bert_style_head(bert)
    assert not has_bert_style_head(roberta)  # its head reads token 0 itself, no pooler


@pytest.mark.parametrize("directory", ["tiny_llama_dir", "tiny_bert_dir"])
def test_gradient_checkpointing_gives_the_same_gradient(request, directory):
    """`--gradient-checkpointing` recomputes activations in backward; the gradient is unchanged."""
    model_dir = str(request.getfixturevalue(directory))
    plain, encoder, rows = build(model_dir, disable_dropout=True)
    checkpointed, _, _ = build(model_dir, gradient_checkpointing=True, disable_dropout=True)
    checkpointed.load_state_dict(plain.state_dict())  # the same new reward head in both
    assert checkpointed.transformers_model.is_activation_checkpointing
    assert not plain.transformers_model.is_activation_checkpointing
    plan = ForwardPlan.for_model(plain, encoder)
    batch = plan.collate(rows)
    gradients = []
    for model in (plain, checkpointed):
        model.train()
        preference_loss(plan.rewards(model, batch), batch["margin"]).loss.backward()
        gradients.append(gradient(model))
    torch.testing.assert_close(gradients[1], gradients[0], rtol=1e-4, atol=1e-6)


def test_a_new_head_is_said_in_one_plain_line_not_a_load_report(tiny_llama_dir, capsys, caplog):
    from rewardforge.models import load_reward_backbone

    load_reward_backbone(str(tiny_llama_dir))
    assert "LOAD REPORT" not in caplog.text and "MISSING" not in caplog.text
    assert "not sharded" not in caplog.text  # nor the tensor-parallel check's warning
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "reward head: score.weight new, starting at random (training learns it); not used from "
        f"{tiny_llama_dir}: lm_head.weight."
    ]


def test_backbone_weights_missing_from_a_checkpoint_are_a_warning():
    from rewardforge.models.reward_head import describe_loading

    loading = {
        "missing_keys": {"classifier.weight", "encoder.layer.0.attention.self.query.weight"},
        "unexpected_keys": set(),
        "mismatched_keys": {("embeddings.word_embeddings.weight", (10, 4), (12, 4))},
    }
    assert describe_loading(loading, "ckpt") == [
        "reward head: classifier.weight new, starting at random (training learns it).",
        "warning: 1 backbone weight(s) are not in ckpt and start at random: "
        "encoder.layer.0.attention.self.query.weight. Is this the model you meant?",
        "warning: 1 weight(s) of ckpt have another shape than this architecture and start at "
        "random: embeddings.word_embeddings.weight.",
    ]
