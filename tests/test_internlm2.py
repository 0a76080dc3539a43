"""InternLM2 reward models (POLAR): a checkpoint written here in the published layout (POLAR-7B's
key and config names, sharded pickle weights with an index, `auto_map` code that must never run,
the real InternLM2 tokenizer) converts to native Llama classes whose rewards equal a forward
written here from the InternLM2 architecture, scored in POLAR's client format."""

from __future__ import annotations

import json
import math
import random
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rewardforge import RewardModel, TrainConfig, train
from rewardforge.adoption.internlm2 import internlm2_tokenizer, split_wqkv
from rewardforge.recipe import RecipeEncoder

TOKENIZER = Path(__file__).parent / "data" / "internlm2-tokenizer" / "tokenizer.model"
SPLIT, REWARD = 92397, 92527  # `<|reward|>` and [UNUSED_TOKEN_130] in POLAR's tokenizer
HEADS, KV_HEADS, HEAD_DIM, HIDDEN, LAYERS = 4, 2, 8, 32, 2  # a group of 2 query heads a kv head
CONFIG = {
    "architectures": ["InternLM2ForRewardModel"],
    "auto_map": {
        "AutoConfig": "configuration_internlm2.InternLM2Config",
        "AutoModel": "modeling_internlm2.InternLM2ForRewardModel",
    },
    "model_type": "internlm2",
    "bias": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": HIDDEN,
    "intermediate_size": 64,
    "max_position_embeddings": 262144,
    "num_attention_heads": HEADS,
    "num_hidden_layers": LAYERS,
    "num_key_value_heads": KV_HEADS,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"type": "dynamic", "factor": 2.0},
    "rope_theta": 50000000,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "vocab_size": 92544,
    "reward_token_id": REWARD,
}
TOKENIZER_CONFIG = {
    "added_tokens_decoder": {
        "0": {"content": "<unk>", "special": True},
        "1": {"content": "<s>", "special": True},
        "2": {"content": "</s>", "special": True},
        str(SPLIT): {"content": "<|reward|>", "special": True},
        str(REWARD): {"content": "[UNUSED_TOKEN_130]", "special": True},
    },
    "auto_map": {"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer", None]},
    "tokenizer_class": "InternLM2Tokenizer",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "pad_token": "</s>",
    "unk_token": "<unk>",
    "add_bos_token": True,
    "add_eos_token": False,
}


def sentencepiece_reference():
    """The published tokenizer as sentencepiece runs it. Its piece 354 is a NUL character,
    which sentencepiece 0.2 refuses to load; it is renamed here to text no test contains."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(TOKENIZER.read_bytes())
    for piece in proto.pieces:
        if "\x00" in piece.piece:
            piece.piece = "<nul-piece-never-in-text>"
    return spm.SentencePieceProcessor(model_proto=proto.SerializeToString())


def reference_ids(sp, text: str) -> list[int]:
    """sentencepiece on `text`, the two markers POLAR's tokenizer names matched whole."""
    ids: list[int] = []
    for index, part in enumerate(text.split("<|reward|>")):
        if index:
            ids.append(SPLIT)
        ids += sp.encode(part)
    return ids


def polar_ids(sp, prompt: str, reference: str, output: str) -> list[int]:
    """POLAR's client text, untruncated, as its server tokenizes it (BOS first)."""
    text = f"{prompt}\n{reference}<|reward|>{prompt}\n{output}"
    return [1, *reference_ids(sp, text), REWARD]


def write_checkpoint(
    folder: Path, marker: Path, bias: bool = False, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """A random InternLM2 reward model in POLAR's published layout (with `bias`, attention
    biases as `bias: true` makes them; saved in `dtype`); returns its weights."""
    generator = torch.Generator().manual_seed(0)

    def weight(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    def norm() -> torch.Tensor:
        return 1.0 + weight(HIDDEN, scale=0.1)

    groups = HEADS // KV_HEADS
    state = {"model.tok_embeddings.weight": weight(CONFIG["vocab_size"], HIDDEN, scale=1.0)}
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}."
        state[prefix + "attention.wqkv.weight"] = weight(KV_HEADS * (groups + 2) * HEAD_DIM, HIDDEN)
        state[prefix + "attention.wo.weight"] = weight(HIDDEN, HEADS * HEAD_DIM)
        state[prefix + "feed_forward.w1.weight"] = weight(64, HIDDEN)
        state[prefix + "feed_forward.w3.weight"] = weight(64, HIDDEN)
        state[prefix + "feed_forward.w2.weight"] = weight(HIDDEN, 64)
        state[prefix + "attention_norm.weight"] = norm()
        state[prefix + "ffn_norm.weight"] = norm()
        if bias:
            state[prefix + "attention.wqkv.bias"] = weight(KV_HEADS * (groups + 2) * HEAD_DIM)
            state[prefix + "attention.wo.bias"] = weight(HIDDEN)
    state["model.norm.weight"] = norm()
    state["v_head.weight"] = weight(1, HIDDEN)
    state = {key: value.to(dtype) for key, value in state.items()}
    folder.mkdir(parents=True)
    names = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2]}
    shards["pytorch_model-00002-of-00002.bin"] = names[len(names) // 2 :]
    for shard, keys in shards.items():
        torch.save({key: state[key] for key in keys}, folder / shard)
    weight_map = {key: shard for shard, keys in shards.items() for key in keys}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    saved = str(dtype).removeprefix("torch.")
    (folder / "config.json").write_text(json.dumps(CONFIG | {"bias": bias, "torch_dtype": saved}))
    (folder / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
    shutil.copy(TOKENIZER, folder / "tokenizer.model")
    for code in ("configuration_internlm2", "modeling_internlm2", "tokenization_internlm2"):
        (folder / f"{code}.py").write_text(f"open({str(marker)!r}, 'a').write('{code} ran')\n")
    return state


def internlm2_reward(state: dict[str, torch.Tensor], ids: list[int], naive: bool = False) -> float:
    """InternLM2's forward, written from its architecture: packed wqkv grouped per kv head (or,
    with `naive`, wrongly split as [all q | all k | all v]), rotate-half RoPE, RMSNorm, SwiGLU,
    the reward read by `v_head` at the last token."""
    groups, length = HEADS // KV_HEADS, len(ids)
    state = {key: value.float() for key, value in state.items()}

    def bias(name: str) -> torch.Tensor | float:
        return state.get(name, 0.0)

    def rms(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + CONFIG["rms_norm_eps"]) * weight

    def rope(x: torch.Tensor) -> torch.Tensor:  # (length, heads, dim)
        inverse = 1.0 / CONFIG["rope_theta"] ** (torch.arange(0, HEAD_DIM, 2) / HEAD_DIM)
        angles = torch.outer(torch.arange(length, dtype=torch.float32), inverse)
        cos, sin = (
            torch.cat([angles, angles], -1).cos()[:, None],
            torch.cat([angles] * 2, -1).sin()[:, None],
        )
        half = HEAD_DIM // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated * sin

    x = state["model.tok_embeddings.weight"][torch.tensor(ids)]
    causal = torch.full((length, length), -math.inf).triu(1)
    for layer in range(LAYERS):
        p = f"model.layers.{layer}."
        h = rms(x, state[p + "attention_norm.weight"])
        qkv = h @ state[p + "attention.wqkv.weight"].T + bias(p + "attention.wqkv.bias")
        if naive:
            q, k, v = qkv.split([HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM], -1)
            q = q.view(length, HEADS, HEAD_DIM)
            k, v = (t.view(length, KV_HEADS, HEAD_DIM) for t in (k, v))
        else:
            grouped = qkv.view(length, KV_HEADS, groups + 2, HEAD_DIM)
            q = grouped[:, :, :groups].reshape(length, HEADS, HEAD_DIM)
            k, v = grouped[:, :, groups], grouped[:, :, groups + 1]
        q, k = rope(q), rope(k)
        k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(HEAD_DIM) + causal
        attended = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(length, -1)
        x = x + attended @ state[p + "attention.wo.weight"].T + bias(p + "attention.wo.bias")
        h = rms(x, state[p + "ffn_norm.weight"])
        gate, up = (
            h @ state[p + "feed_forward.w1.weight"].T,
            h @ state[p + "feed_forward.w3.weight"].T,
        )
        x = x + (F.silu(gate) * up) @ state[p + "feed_forward.w2.weight"].T
    x = rms(x, state["model.norm.weight"])
    return (x[-1] @ state["v_head.weight"][0]).item()


@pytest.fixture(scope="module")
def polar(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor], Path]:
    root = tmp_path_factory.mktemp("polar")
    marker = root / "shipped-code-ran"
    state = write_checkpoint(root / "POLAR-tiny", marker)
    return root / "POLAR-tiny", state, marker


@pytest.fixture(scope="module")
def sp():
    return sentencepiece_reference()


CASES = [  # (prompt, reference, output)
    ("北京是哪个国家的首都？", "北京是中国的首都。", "中国。"),
    ("How many 'r's are in 'strawberry'?", "3.", "There are two 'r's."),
    ("  two  spaces\nand a newline", "Reference 123.", "Output 😀!"),
]


def test_a_polar_checkpoint_scores_as_its_architecture_does(polar, sp, tmp_path, monkeypatch):
    folder, state, marker = polar
    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path / "cache"))
    rm = RewardModel.load(folder)
    assert rm.recipe.family == "polar" and rm.reference_mode
    prompts, references, outputs = map(list, zip(*CASES))
    for prompt, reference, output in CASES:  # the text format, token for token
        expected = polar_ids(sp, prompt, reference, output)
        assert rm.encoder.encode(prompt, output, reference).input_ids == expected
    rewards = rm.score(prompts, outputs, references=references)
    expected = [internlm2_reward(state, polar_ids(sp, *case)) for case in CASES]
    assert rewards == pytest.approx(expected, abs=1e-5)
    naive = [internlm2_reward(state, polar_ids(sp, *case), naive=True) for case in CASES]
    assert max(abs(a - b) for a, b in zip(naive, expected)) > 1e-3  # the interleave matters
    assert not marker.exists()  # no shipped code ran


@pytest.mark.parametrize(
    ("bias", "dtype"), [(True, torch.float32), (False, torch.float16), (False, torch.bfloat16)]
)
def test_biases_and_half_precision_checkpoints_score_as_their_architecture_does(
    bias, dtype, sp, tmp_path, monkeypatch
):
    """`bias: true` packs q/k/v biases in `wqkv.bias` (split as the weights are, not left at
    random); a float16 or bfloat16 checkpoint is computed in float32 on a CPU, so its rewards
    are those of its weights, not rounded."""
    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "internlm2"
    state = write_checkpoint(folder, tmp_path / "marker", bias=bias, dtype=dtype)
    rm = RewardModel.load(folder)
    prompts, references, outputs = map(list, zip(*CASES))
    rewards = rm.score(prompts, outputs, references=references)
    expected = [internlm2_reward(state, polar_ids(sp, *case)) for case in CASES]
    assert rewards == pytest.approx(expected, abs=1e-5)
    if bias:
        unbiased = {k: v for k, v in state.items() if not k.endswith(".bias")}
        without = [internlm2_reward(unbiased, polar_ids(sp, *case)) for case in CASES]
        assert max(abs(a - b) for a, b in zip(without, expected)) > 1e-3  # the biases count


def test_wqkv_rows_are_grouped_per_key_value_head():
    groups = HEADS // KV_HEADS
    rows = torch.arange(KV_HEADS * (groups + 2) * HEAD_DIM, dtype=torch.float32)[:, None]
    q, k, v = split_wqkv(rows, HEADS, KV_HEADS, HEAD_DIM)
    block = (groups + 2) * HEAD_DIM  # one kv head's rows: its queries, its key, its value
    assert q[:, 0].tolist() == [*range(0, 16), *range(block, block + 16)]
    assert k[:, 0].tolist() == [*range(16, 24), *range(block + 16, block + 24)]
    assert v[:, 0].tolist() == [*range(24, 32), *range(block + 24, block + 32)]


def test_the_converted_tokenizer_equals_sentencepiece(polar, sp):
    folder, _, _ = polar
    tokenizer = internlm2_tokenizer(folder)
    pool = (
        list("abcXYZ019 \n\t.,!?'\"-") + list("北京中国的首都你好谢谢") + ["😀", "🚀", "ｅ", "——"]
    )
    pool += ["  ", "   ", "\n\n", "<|reward|>", "[UNUSED_TOKEN_130]", "1234567"]
    rng = random.Random(0)
    texts = ["  leading", "trailing  ", "a  b   c", "\n\nx\n", "ｅａｓｙ", "[UNUSED_TOKEN_13]"]
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    for text in texts:
        expected = [
            REWARD if i == sp.piece_to_id("[UNUSED_TOKEN_130]") else i
            for i in reference_ids(sp, text)
        ]
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == expected, repr(text)
        assert tokenizer.decode(expected) == text
    assert tokenizer("x")["input_ids"][0] == 1  # BOS first, as the published tokenizer adds it


def test_polar_truncation_follows_its_client(polar, sp, tmp_path, monkeypatch):
    """The client cuts each answer to `max_response_length` tokens keeping its end (BOS
    counted), the prompt to half of what is left keeping its end, then decodes the parts."""
    folder, _, _ = polar
    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path / "cache"))
    rm = RewardModel.load(folder)
    recipe = replace(rm.recipe, max_length=60, max_response_length=12)
    encoder = RecipeEncoder(recipe, rm.encoder.tokenizer)
    prompt = "Tell me everything about the history of the city of Beijing, please. " * 3
    reference = "Beijing has been a capital for centuries, under many dynasties. " * 2
    output = "It is old."

    def cut(text: str, keep: int) -> str:
        ids = [1, *sp.encode(text)]
        return sp.decode(ids[-keep:] if len(ids) > keep else ids)

    r1, r2 = cut(reference, 12), cut(output, 12)
    budget = (60 - 4 - min(12, 1 + len(sp.encode(reference))) - (1 + len(sp.encode(output)))) // 2
    p = cut(prompt, budget)
    encoded = encoder.encode(prompt, output, reference)
    assert encoded.truncated
    assert encoded.input_ids == [1, *reference_ids(sp, f"{p}\n{r1}<|reward|>{p}\n{r2}"), REWARD]
    assert encoder.encode("short", output, "ref").truncated is False


def test_fine_tuning_a_polar_base_model_keeps_its_format(
    polar, reference_rows_file, tmp_path, monkeypatch
):
    folder, _, marker = polar
    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path / "cache"))
    config = TrainConfig(
        data=[str(reference_rows_file)],
        model=str(folder),
        output=str(tmp_path / "tuned"),
        reference_mode=True,
        max_steps=2,
        batch_pairs=2,
        lr=1e-2,
    )
    output = train(config).output_dir
    tuned, base = RewardModel.load(output), RewardModel.load(folder)
    assert tuned.recipe.family == "polar"
    prompt, reference, answer = CASES[0]
    assert tuned.encoder.encode(prompt, answer, reference).input_ids[-1] == REWARD
    before = base.score([prompt], [answer], references=[reference])[0]
    after = tuned.score([prompt], [answer], references=[reference])[0]
    assert math.isfinite(after) and after != pytest.approx(before, abs=1e-6)
    assert not marker.exists()


INTERNLM2_CHAT = (
    "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_an_internlm2_reward_model_reads_its_chat_template_and_reward_token(
    tmp_path, sp, monkeypatch
):
    """internlm2-*-reward: the chat template, then the reward token it names `<|reward|>`."""
    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "internlm2-tiny-reward"
    state = write_checkpoint(folder, tmp_path / "shipped-code-ran")
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    names = settings["added_tokens_decoder"]
    names[str(REWARD)] = {"content": "<|reward|>", "special": True}
    names.pop(str(SPLIT))
    names["92542"] = {"content": "<|im_end|>", "special": True}
    names["92543"] = {"content": "<|im_start|>", "special": True}
    settings["chat_template"] = INTERNLM2_CHAT
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    rm = RewardModel.load(folder)
    assert rm.recipe.family == "internlm2-reward"
    prompt, answer = "北京是哪个国家的首都？", "中国。"
    expected_ids = [1, 92543, *sp.encode("user\n" + prompt), 92542, *sp.encode("\n")]
    expected_ids += [92543, *sp.encode("assistant\n" + answer), 92542, *sp.encode("\n"), REWARD]
    assert rm.encoder.encode(prompt, answer).input_ids == expected_ids
    expected = internlm2_reward(state, expected_ids)
    assert rm.score([prompt], [answer]) == pytest.approx([expected], abs=1e-5)


def test_adopt_writes_a_polar_model_that_scores_the_same(polar, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rewardforge.cli import app

    folder, _, marker = polar
    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path / "cache"))
    output = tmp_path / "polar-adopted"
    result = CliRunner().invoke(app, ["adopt", "--source", str(folder), "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "POLAR reference-based RM" in result.stdout
    prompts, references, outputs = map(list, zip(*CASES))
    adopted = RewardModel.load(output)
    assert adopted.recipe.family == "polar"
    assert not (output / "tokenizer.model").exists() and (output / "tokenizer.json").is_file()
    original = RewardModel.load(folder).score(prompts, outputs, references=references)
    assert adopted.score(prompts, outputs, references=references) == pytest.approx(
        original, abs=1e-6
    )
    assert not marker.exists()


def _convert_in_a_process(folder: str, log: str, queue) -> None:
    """What every rank under `accelerate launch` does: resolve the model, converting it."""
    import time

    from rewardforge.adoption import resolve

    real = resolve.convert_internlm2

    def slow_convert(source, target):
        with open(log, "a") as out:
            out.write(f"{target}\n")
        time.sleep(1.0)  # long enough for the other process to arrive while this one works
        real(source, target)

    resolve.convert_internlm2 = slow_convert
    queue.put(str(resolve.converted(Path(folder))))


def test_processes_converting_at_once_convert_once(polar, tmp_path, monkeypatch):
    import multiprocessing

    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path / "cache"))
    folder, _, _ = polar
    log = tmp_path / "conversions.log"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(target=_convert_in_a_process, args=(str(folder), str(log), queue))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    targets = {queue.get(timeout=5) for _ in workers}
    assert len(log.read_text().splitlines()) == 1  # one converted; the other waited, then read
    (target,) = targets
    assert (Path(target) / "config.json").is_file()
    assert not list(Path(target).parent.glob("*.partial*"))
