"""Saved reward models load in transformers 4.51 (RewardBench's pin) and score the same."""

import json
import subprocess
import sys

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
)

from rewardforge.models.backbones import cache_dir
from tests.conftest import train_tiny_reward_model

OLD_TRANSFORMERS = ["transformers==4.51.3", "tokenizers==0.21.4", "huggingface_hub==0.36.0"]
CONVERSATIONS = [
    [
        {"role": "user", "content": "How do I bake bread?"},
        {"role": "assistant", "content": "Knead."},
    ],
    [
        {"role": "user", "content": "你好，你能帮我吗？"},
        {"role": "assistant", "content": "当然可以。"},
    ],
    [  # long enough that a wrong RoPE theta moves the reward clearly
        {"role": "user", "content": "Tell me about the sea. " * 20},
        {"role": "assistant", "content": "The sea is wide and deep. " * 20},
    ],
]
SCORE = """
import json, sys, torch, transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer
directory, conversations = sys.argv[1], json.loads(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(directory)
model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
texts, rewards = [], []
for messages in conversations:
    text = tokenizer.apply_chat_template(messages, tokenize=False) if tokenizer.chat_template else (
        messages[0]["content"])
    ids = tokenizer(text, add_special_tokens=tokenizer.chat_template is None, return_tensors="pt")
    with torch.no_grad():
        rewards.append(model(**ids).logits[0, 0].item())
    texts.append(text)
print(json.dumps({"version": transformers.__version__, "texts": texts, "rewards": rewards}))
"""


@pytest.fixture(scope="session")
def old_transformers():
    """A directory holding transformers 4.51, put first on PYTHONPATH of a subprocess."""
    target = cache_dir() / "transformers-4.51.3"
    if not (target / "transformers").is_dir():
        install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        done = subprocess.run([*install, "--target", str(target), *OLD_TRANSFORMERS])
        if done.returncode != 0:
            pytest.skip("could not install transformers 4.51 (no package index reachable)")
    return target


def score_with(directory, pythonpath=None) -> dict:
    env = {"PYTHONPATH": str(pythonpath)} if pythonpath else {}
    done = subprocess.run(
        [sys.executable, "-c", SCORE, str(directory), json.dumps(CONVERSATIONS)],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def long_rope_reward_model(tiny_llama_dir, tmp_path_factory):
    """A tiny Llama reward model with a non-default RoPE theta, trained for a step."""
    root = tmp_path_factory.mktemp("rope")
    config = LlamaConfig.from_pretrained(tiny_llama_dir)
    config.rope_parameters = {"rope_type": "default", "rope_theta": 100000.0}
    backbone = root / "backbone"
    model = LlamaForCausalLM.from_pretrained(tiny_llama_dir, config=config)
    model.save_pretrained(backbone)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(backbone)
    return train_tiny_reward_model(backbone, root)


def test_llama_reward_model_scores_the_same_in_transformers_4_51(
    long_rope_reward_model, old_transformers
):
    saved = json.loads((long_rope_reward_model / "config.json").read_text())
    assert saved["rope_theta"] == 100000.0
    new, old = (
        score_with(long_rope_reward_model),
        score_with(long_rope_reward_model, old_transformers),
    )
    assert new["version"].startswith("5.") and old["version"] == "4.51.3"
    assert old["texts"] == new["texts"] and "你好" in old["texts"][1]
    assert old["rewards"] == pytest.approx(new["rewards"], abs=1e-6)


def test_bert_reward_model_scores_the_same_in_transformers_4_51(
    tiny_bert_dir, tmp_path, old_transformers
):
    directory = train_tiny_reward_model(tiny_bert_dir, tmp_path)
    new, old = score_with(directory), score_with(directory, old_transformers)
    assert old["rewards"] == pytest.approx(new["rewards"], abs=1e-6)


def test_legacy_fields_do_not_change_the_model_in_transformers_5(long_rope_reward_model):
    model = AutoModelForSequenceClassification.from_pretrained(long_rope_reward_model)
    assert model.config.rope_parameters["rope_theta"] == 100000.0
    tokenizer = AutoTokenizer.from_pretrained(long_rope_reward_model)
    ids = tokenizer("hello", return_tensors="pt")
    with torch.no_grad():
        assert torch.isfinite(model(**ids).logits).all()
