"""Reward heads are read as each architecture's own classifier reads them: encoder sequence
classifiers other than BERT (RoBERTa, DeBERTa-v2, ELECTRA, DistilBERT), and token-classifier
PRMs on decoders whose head is `classifier` rather than `score` (GPT-2, GPT-NeoX, Bloom, Falcon).
The oracle is the transformers model's own forward."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from rewardforge import RewardModel
from rewardforge.forward.reward_forward import RewardForward
from rewardforge.models import resolve_backbone
from rewardforge.recipe import RecipeEncoder, ScoringRecipe
from tests.conftest import save_tiny_decoder
from tests.test_trl_prm import save_trl_prm, trl_probabilities

ENCODERS = {
    "bert": {},
    "roberta": {},
    "deberta-v2": {"pooler_hidden_size": 32},
    "electra": {"embedding_size": 32},
    "distilbert": {"dim": 32, "hidden_dim": 64, "n_layers": 2, "n_heads": 4},
}
TOKEN_CLASSIFIER_DECODERS = {
    "gpt2": dict(n_layer=2, n_head=4, n_embd=32, n_inner=64, n_positions=1024),
    "gpt_neox": dict(num_hidden_layers=2, num_attention_heads=4),
    "bloom": dict(n_layer=2, n_head=4),
    "falcon": dict(num_hidden_layers=2, num_attention_heads=4),
}
PROMPT = "Tom has 2 apples and buys 3 more. How many apples?"
SOLUTIONS = [["2 + 3 = 5.", "The answer is 5."], ["2 + 3 = 6.", "So 6 apples.", "It is 6."]]


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return AutoTokenizer.from_pretrained(resolve_backbone("minilm-l6"))


def tiny_encoder_classifier(model_type: str, tokenizer) -> torch.nn.Module:
    torch.manual_seed(0)
    sizes = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    sizes |= {"num_attention_heads": 4, "max_position_embeddings": 512}
    if model_type == "distilbert":
        sizes = {"max_position_embeddings": 512}
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        **sizes,
        **ENCODERS[model_type],
    )
    if model_type == "roberta":
        config.type_vocab_size = 2  # the MiniLM tokenizer writes token types 0 and 1
    return AutoModelForSequenceClassification.from_config(config).eval()


@pytest.mark.parametrize("model_type", sorted(ENCODERS))
def test_encoder_heads_equal_the_classifiers_own_forward(model_type, minilm_tokenizer):
    model = tiny_encoder_classifier(model_type, minilm_tokenizer)
    forward = RewardForward(model)
    pair = minilm_tokenizer(["Is the sky blue?", "你好"], ["Yes, it is.", "谢谢"], padding=True)
    inputs = {key: torch.tensor(value) for key, value in pair.items()}
    if model_type == "distilbert":
        inputs.pop("token_type_ids")
    with torch.no_grad():
        own = model(**inputs).logits[:, 0]
        hidden = forward.backbone(**inputs).last_hidden_state
        read = forward._head(hidden[:, 0])[:, 0]
    assert read == pytest.approx(own.tolist(), abs=1e-6)


@pytest.mark.parametrize("model_type", ["roberta", "deberta-v2"])
def test_a_non_bert_encoder_prm_scores_its_steps(model_type, minilm_tokenizer):
    """Each step's reward is the classifier's head at the last token of the step's separator,
    found here by hand in the sentence pair the tokenizer makes."""
    model = tiny_encoder_classifier(model_type, minilm_tokenizer)
    recipe = replace(ScoringRecipe.for_model(minilm_tokenizer, True, 128), kind="process")
    rm = RewardModel(model, RecipeEncoder(recipe, minilm_tokenizer))
    got = rm.score_steps([PROMPT, PROMPT], SOLUTIONS)
    forward = RewardForward(model)
    for steps, probabilities in zip(SOLUTIONS, got):
        ids = minilm_tokenizer(PROMPT, "\n\n".join(steps) + "\n\n")
        tokens = minilm_tokenizer.convert_ids_to_tokens(ids["input_ids"])
        # BERT's tokenizer drops the blank lines: each step ends at its final ".", the last
        # step also before the closing [SEP]
        second = ids["token_type_ids"].index(1)
        ends = [i for i, token in enumerate(tokens) if token == "." and i >= second]
        inputs = {key: torch.tensor([value]) for key, value in ids.items()}
        with torch.no_grad():
            hidden = forward.backbone(**inputs).last_hidden_state[0]
            expected = torch.sigmoid(forward._head(hidden[ends])[:, 0])
        assert probabilities == pytest.approx(expected.tolist(), abs=1e-5)


@pytest.mark.parametrize("model_type", sorted(TOKEN_CLASSIFIER_DECODERS))
def test_a_trl_prm_on_a_classifier_named_head_scores_as_trl(model_type, tmp_path, capsys):
    base = save_tiny_decoder(
        tmp_path / "base", model_type, shape=TOKEN_CLASSIFIER_DECODERS[model_type]
    )
    folder = save_trl_prm(base, tmp_path / "prm")
    rm = RewardModel.load(folder)
    assert "TRL-trained PRM" in capsys.readouterr().err
    got = rm.score_steps([PROMPT, PROMPT], SOLUTIONS)
    for steps, probabilities in zip(SOLUTIONS, got):
        assert probabilities == pytest.approx(trl_probabilities(folder, PROMPT, steps), abs=1e-5)
