"""Shared fixtures: tiny randomly initialised backbones built offline, and small data files."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

SAMPLE = Path(__file__).resolve().parent.parent / "rewardforge" / "sample_data"
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def free_port() -> int:
    """A loopback port no one listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accelerate_launch(launch_flags: str, command: str) -> str:
    """Run `rewardforge COMMAND` in two CPU processes under `accelerate launch`; its stdout."""
    done = launch_processes(launch_flags, f"-m rewardforge.cli {command}")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def launch_processes(
    launch_flags: str, program: str, processes: int = 2, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`accelerate launch` PROGRAM (a script and its arguments, or `-m module ...`) in CPU
    processes; the finished run, whatever its exit code.

    The processes meet on a free port, not accelerate's fixed default (29500), so that a
    second test run on the same machine cannot collide with this one."""
    accelerate = Path(sys.executable).parent / "accelerate"
    launch = f"{accelerate} launch --num_processes {processes} --num_machines 1"
    launch += f" --mixed_precision no --main_process_port {free_port()}"
    line = f"{launch} {launch_flags} {program}"
    return subprocess.run(line.split(), capture_output=True, text=True, timeout=timeout)


def moved_weights(trained: Path, start: Path) -> list[str]:
    """Names of the causal LM weights that differ between two saved models; also checks that
    the trained one reloads with the same weight names and only finite values."""
    import torch
    from transformers import AutoModelForCausalLM

    after = AutoModelForCausalLM.from_pretrained(trained).state_dict()
    before = AutoModelForCausalLM.from_pretrained(start).state_dict()
    assert after.keys() == before.keys()
    assert all(torch.isfinite(weight).all() for weight in after.values())
    return [name for name in before if not torch.equal(after[name], before[name])]


@contextlib.contextmanager
def running_server(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a free loopback port; yields its URL."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def sample_rows(split: str, count: int) -> list[dict]:
    with (SAMPLE / f"{split}.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for _, line in zip(range(count), lines)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")
    return path


def _tiny_tokenizer(chat_template: bool, adds_bos: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    texts = [row["chosen"] for row in sample_rows("train", 200)] + ["你好，世界。谢谢！"]
    backend.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    if adds_bos:  # as Llama-3: the tokenizer puts a BOS first, and the template writes one
        from tokenizers import processors

        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)]
        )
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
        )
    if chat_template:
        tokenizer.chat_template = ("{{ bos_token }}" if adds_bos else "") + CHATML
    return tokenizer


@pytest.fixture
def bos_tokenizers():
    """Tokenizers that start every text with a BOS, as Llama-3's: (plain, chat template)."""
    return _tiny_tokenizer(False, adds_bos=True), _tiny_tokenizer(True, adds_bos=True)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama with a ChatML template and a BPE tokenizer, randomly initialised."""
    return _save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), chat_template=True)


@pytest.fixture(scope="session")
def tiny_plain_llama_dir(tmp_path_factory) -> Path:
    """The same tiny Llama without a chat template (plain-text recipe)."""
    return _save_tiny_llama(tmp_path_factory.mktemp("tiny-plain-llama"), chat_template=False)


def _save_tiny_llama(directory: Path, chat_template: bool) -> Path:
    return save_tiny_decoder(directory, "llama", chat_template)


# Two-layer configurations of each decoder family the forward plan must lay out correctly.
TINY_DECODERS = {
    "llama": dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    "qwen2": dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    "mistral": dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    "gemma": dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=8),
    "gpt2": dict(n_layer=2, n_head=4, n_embd=32, n_inner=64, n_positions=1024),
}


def save_tiny_decoder(
    directory: Path, model_type: str, chat_template: bool = True, shape: dict | None = None
) -> Path:
    """Save a randomly initialised two-layer causal LM of `model_type` with the tiny tokenizer
    (`shape`: its configuration's layer and head counts, for a type not in TINY_DECODERS)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = _tiny_tokenizer(chat_template)
    torch.manual_seed(0)
    sizes = {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 1024}
    if model_type == "gpt2":
        sizes = {}
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **sizes,
        **(shape if shape is not None else TINY_DECODERS[model_type]),
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_decoder_dirs(tmp_path_factory) -> dict[str, Path]:
    """One tiny randomly initialised model directory per decoder family in TINY_DECODERS."""
    return {
        model_type: save_tiny_decoder(tmp_path_factory.mktemp(f"tiny-{model_type}"), model_type)
        for model_type in TINY_DECODERS
    }


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer BERT with the bundled MiniLM tokenizer, randomly initialised."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rewardforge.models import resolve_backbone

    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("minilm-l6"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def hh_file(tmp_path) -> Path:
    """24 real HH-RLHF pairs (implicit-prompt transcripts)."""
    return write_jsonl(tmp_path / "hh.jsonl", sample_rows("train", 24))


@pytest.fixture
def hh_dev_file(tmp_path) -> Path:
    """12 real held-out HH-RLHF pairs."""
    return write_jsonl(tmp_path / "hh_dev.jsonl", sample_rows("dev", 12))


def train_tiny_reward_model(backbone: Path, root: Path) -> Path:
    """Train a reward model for one step on 8 real pairs; returns its output directory."""
    from rewardforge import TrainConfig, train

    data = write_jsonl(root / "train.jsonl", sample_rows("train", 8))
    config = TrainConfig(
        data=[str(data)],
        model=str(backbone),
        output=str(root / "rm"),
        batch_pairs=4,
        max_steps=1,
        max_length=64,
    )
    return train(config).output_dir


@pytest.fixture(scope="session")
def tiny_reward_model_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    """A reward model trained for one step on 8 real pairs from the tiny Llama."""
    return train_tiny_reward_model(tiny_llama_dir, tmp_path_factory.mktemp("tiny-reward-model"))


@pytest.fixture(scope="session")
def tiny_prm_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    """A process reward model trained for one step on 16 bundled step-labelled solutions."""
    from rewardforge import TrainConfig, train
    from rewardforge.data.sample import prm_sample_paths

    root = tmp_path_factory.mktemp("tiny-prm")
    lines = Path(prm_sample_paths()[0]).read_text(encoding="utf-8").splitlines(True)[:16]
    (root / "train.jsonl").write_text("".join(lines), encoding="utf-8")
    config = TrainConfig(
        data=[str(root / "train.jsonl")],
        model=str(tiny_llama_dir),
        output=str(root / "prm"),
        max_steps=1,
        batch_pairs=4,
    )
    return train(config).output_dir


REFERENCE_ROWS = [
    {
        "prompt": "天气怎么样？",
        "responses": ["晴。", "今天是晴天，很暖和。", "您好！今天天气晴朗，" * 4],
    },
    {
        "prompt": "How long to boil an egg?",
        "responses": ["9 minutes.", "About nine minutes.", "Well, " * 12],
    },
    {
        "prompt": "附近有地铁吗？",
        "reference": "有。",
        "responses": ["有，很近。", "有的，步行五分钟。"],
    },
    {
        "prompt": "Capital of Australia?",
        "reference": "Canberra.",
        "responses": ["It is Canberra.", "Sydney, I think."],
    },
]


@pytest.fixture(scope="session")
def reference_rows_file(tmp_path_factory) -> Path:
    """Reference-based preference rows, Chinese and English: ranked triples (the best is the
    reference) and rows with their own reference."""
    return write_jsonl(tmp_path_factory.mktemp("reference-rows") / "rows.jsonl", REFERENCE_ROWS)


@pytest.fixture(scope="session")
def tiny_reference_model_dir(tiny_llama_dir, reference_rows_file, tmp_path_factory) -> Path:
    """A reference-based reward model trained for one step from the tiny Llama."""
    from rewardforge import TrainConfig, train

    config = TrainConfig(
        data=[str(reference_rows_file)],
        model=str(tiny_llama_dir),
        output=str(tmp_path_factory.mktemp("tiny-reference-model") / "rm"),
        reference_mode=True,
        batch_pairs=4,
        max_steps=1,
        max_length=128,
    )
    return train(config).output_dir


@pytest.fixture
def live_server(tiny_reward_model_dir, monkeypatch):
    """`rewardforge serve` of the tiny reward model on a loopback port, with an API key."""
    from rewardforge import RewardModel
    from rewardforge.serving.app import create_app

    monkeypatch.setenv("RM_KEY", "s3cret")
    app = create_app(RewardModel.load(tiny_reward_model_dir), api_key="s3cret")
    with running_server(app) as url:
        yield url
