import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardforge import RewardModel, TrainConfig, train
from rewardforge.errors import UserError
from rewardforge.models.adapters import merge_into_plain_backbone
from rewardforge.recipe import ScoringRecipe
from tests.conftest import accelerate_launch

# bf16 keeps 8 bits of mantissa (relative rounding about 0.4%). Three steps of the tiny Llama at
# lr 1e-3 in bf16 and in float32 give rewards of 0.04 to 0.08 that differ by at most 1.7e-3
# (measured); a model that trained differently or wrongly is far outside this.
BF16_TOLERANCE = 5e-3


def tiny_config(model_dir, data, output, **overrides) -> TrainConfig:
    settings = dict(
        data=[str(data)],
        model=str(model_dir),
        output=str(output),
        batch_pairs=4,
        max_tokens_per_micro_batch=256,
        max_steps=3,
        lr=1e-3,
        max_length=128,
        logging_steps=1,
        save_steps=100,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def trained(tiny_llama_dir, tmp_path_factory):
    from tests.conftest import sample_rows, write_jsonl

    root = tmp_path_factory.mktemp("trained")
    data = write_jsonl(root / "train.jsonl", sample_rows("train", 16))
    dev = write_jsonl(root / "dev.jsonl", sample_rows("dev", 8))
    config = tiny_config(tiny_llama_dir, data, root / "rm", eval_data=[str(dev)], eval_steps=2)
    return train(config)


def test_output_directory_is_complete(trained):
    out = trained.output_dir
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "rewardforge_recipe.json",
        "train_config.yaml",
        "metrics.json",
        "log.jsonl",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_pairs"] == 12  # 3 steps x 4 pairs
    assert metrics["train_tokens"] > 0 and metrics["train_runtime_s"] > 0
    assert metrics["pairs_per_s"] == pytest.approx(12 / metrics["train_runtime_s"])
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and metrics["eval_n_pairs"] == 8


def test_log_has_pair_statistics_and_eval_points(trained):
    records = [json.loads(line) for line in (trained.output_dir / "log.jsonl").open()]
    train_logs = [r for r in records if "loss" in r]
    assert [r["step"] for r in train_logs] == [1, 2, 3]
    assert {"accuracy", "margin", "chosen_reward", "rejected_reward"} <= set(train_logs[0])
    assert any("eval_accuracy" in r and r["step"] == 2 for r in records)


def test_saved_model_loads_with_plain_transformers(trained):
    out = trained.output_dir
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.num_labels == 1
    assert model.config.pad_token_id == tokenizer.pad_token_id != tokenizer.eos_token_id
    reward_model = RewardModel.load(out)
    prompt, response = "你好，你能帮我吗？", "当然可以。"
    prompt_text, response_text = reward_model.encoder.render(prompt, response)
    ids = tokenizer(prompt_text + response_text, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        plain = model(**ids).logits[0, 0].item()
    assert reward_model.score([prompt], [response])[0] == pytest.approx(plain, abs=1e-5)


def test_normalisation_stats_are_stored(trained):
    recipe = ScoringRecipe.load(trained.output_dir)
    assert recipe.template == "chat" and recipe.max_length == 128
    assert recipe.reward_std > 0
    assert trained.metrics["reward_mean"] == pytest.approx(recipe.reward_mean)


@pytest.mark.parametrize(
    ("variable", "name"),
    [("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")],
)
def test_lora_under_a_sharded_launch_is_refused_before_loading(
    tiny_llama_dir, hh_file, tmp_path, monkeypatch, variable, name
):
    monkeypatch.setenv(variable, "true")  # what `accelerate launch --use_fsdp/--use_deepspeed` sets
    config = tiny_config(tiny_llama_dir, hh_file, tmp_path / "out", lora=True, max_steps=1)
    with pytest.raises(UserError, match=f"--lora under {name} is not supported yet.*--multi_gpu"):
        train(config)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_lora_run_saves_merged_model_and_adapter(tiny_llama_dir, hh_file, tmp_path):
    from peft import PeftModel

    config = tiny_config(
        tiny_llama_dir,
        hh_file,
        tmp_path / "lora",
        lora=True,
        lora_rank=4,
        save_adapter=True,
        max_steps=2,
    )
    out = train(config).output_dir
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        assert not any("lora" in key for key in weights.keys())  # noqa: SIM118 (not a dict)
    assert (out / "adapter" / "adapter_config.json").is_file()

    merged = RewardModel.load(out)
    base = AutoModelForSequenceClassification.from_pretrained(
        tiny_llama_dir, num_labels=1, pad_token_id=merged.encoder.tokenizer.pad_token_id
    )
    adapted = PeftModel.from_pretrained(base, out / "adapter").eval()
    prompts, responses = ["Hi there", "How are you?"], ["Hello!", "Fine, thanks, and you?"]
    from_adapter = RewardModel(adapted, merged.encoder).score(prompts, responses)
    assert merged.score(prompts, responses) == pytest.approx(from_adapter, abs=1e-4)
    # the path a quantized base takes: the adapter merged into a float32 copy of the backbone
    plain = merge_into_plain_backbone(str(tiny_llama_dir), out / "adapter")
    from_plain = RewardModel(plain, merged.encoder).score(prompts, responses)
    assert merged.score(prompts, responses) == pytest.approx(from_plain, abs=1e-5)


def test_resume_continues_from_the_last_checkpoint(tiny_bert_dir, hh_file, tmp_path):
    first = tiny_config(tiny_bert_dir, hh_file, tmp_path / "rm", max_steps=2, save_steps=2)
    train(first)
    assert (tmp_path / "rm" / "checkpoints" / "checkpoint-2").is_dir()
    second = tiny_config(
        tiny_bert_dir, hh_file, tmp_path / "rm", max_steps=4, save_steps=2, resume=True
    )
    train(second)
    records = [json.loads(line) for line in (tmp_path / "rm" / "log.jsonl").open()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("loss", "pairs", "trained", "counted"),
    [
        ("bt", "all", 24, "all pairs"),  # 2 steps x 4 groups x 3 pairs of 3 responses
        ("hinge", "adjacent", 16, "adjacent pairs"),  # 2 steps x 4 groups x 2 adjacent pairs
        ("listwise", "all", 16, "adjacent pairs"),  # Plackett-Luce: K-1 choices a group
    ],
)
def test_ranked_groups_count_the_pairs_they_train(
    tiny_bert_dir, tmp_path, loss, pairs, trained, counted
):
    from tests.conftest import write_jsonl

    rows = [
        {
            "prompt": f"question {i}",
            "responses": ["a good answer", "an ok one", "bad"],
            "rank": [1, 2, 3],
            "category": "demo",
        }
        for i in range(8)
    ]
    data = write_jsonl(tmp_path / "ranked.jsonl", rows)
    config = tiny_config(tiny_bert_dir, data, tmp_path / loss, loss=loss, pairs=pairs, max_steps=2)
    result = train(config)
    assert result.metrics["train_pairs"] == trained
    assert result.metrics["train_pairs_counted"].startswith(counted)
    runtime = result.metrics["train_runtime_s"]
    assert result.metrics["pairs_per_s"] == pytest.approx(trained / runtime)


def launch_two_processes(mode_flags: str, data: Path, model: Path, output: Path) -> str:
    """`accelerate launch` a two-process CPU training run; returns its standard output."""
    train_flags = (
        f"--data {data} --model {model} --output {output} "
        # budget 1: each process runs its 2 pairs a step as 2 micro-batches (no_sync, then sync)
        "--batch-pairs 4 --max-tokens-per-micro-batch 1 --max-steps 2 --max-length 64"
    )
    return accelerate_launch(f"{mode_flags} --dynamo_backend no", f"train {train_flags}")


@pytest.fixture(scope="module")
def ddp_run(tiny_llama_dir, tmp_path_factory) -> tuple[Path, str]:
    from tests.conftest import sample_rows, write_jsonl

    root = tmp_path_factory.mktemp("ddp")
    data = write_jsonl(root / "hh.jsonl", sample_rows("train", 24))
    return data, launch_two_processes("--multi_gpu", data, tiny_llama_dir, root / "ddp")


def test_two_process_ddp_on_cpu(ddp_run, tiny_llama_dir):
    data, stdout = ddp_run
    output = data.parent / "ddp"
    assert "distributed: MULTI_CPU over 2 processes" in stdout
    assert "micro-batch token budget 1" in stdout
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["train_pairs"] == 8  # 2 steps x 2 processes x 2 pairs, summed over processes
    # The same two steps in one process give the same model.
    alone = train(
        TrainConfig(
            data=[str(data)],
            model=str(tiny_llama_dir),
            output=str(data.parent / "alone"),
            batch_pairs=4,
            max_tokens_per_micro_batch=1,
            max_steps=2,
            max_length=64,
        )
    ).output_dir
    prompts, responses = ["q", "你好"], ["a", "你好！"]
    together = RewardModel.load(output).score(prompts, responses)
    assert all(math.isfinite(reward) for reward in together)
    assert together == pytest.approx(RewardModel.load(alone).score(prompts, responses), abs=1e-5)


def test_no_data_is_a_clear_error(tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match="--data"):
        train(TrainConfig(model=str(tiny_bert_dir), output=str(tmp_path)))


def test_a_batch_that_does_not_divide_among_the_processes_is_refused():
    from rewardforge.training.arguments import per_process_batch

    with pytest.raises(UserError) as refused:
        per_process_batch(16, 3)
    assert str(refused.value) == (
        "--batch-pairs 16 does not divide among 3 processes; give a multiple of 3 (such as 15 "
        "or 18), so that every step trains exactly that many examples."
    )
    assert per_process_batch(18, 3) == 6 and per_process_batch(16, 2) == 8


def test_a_nan_reward_stops_the_run_before_the_weights_change(
    tiny_bert_dir, hh_file, tmp_path, monkeypatch
):
    from rewardforge.forward.plan import ForwardPlan, GroupRewards
    from rewardforge.training.callbacks import TrainingDiverged

    real = ForwardPlan.rewards
    calls = []

    def one_nan(self, model, batch):  # the third forward pass has one NaN reward
        rewards = real(self, model, batch)
        calls.append(1)
        if len(calls) == 3:
            values = rewards.values.clone()
            values[0, 0] = float("nan")
            return GroupRewards(values, rewards.present)
        return rewards

    monkeypatch.setattr(ForwardPlan, "rewards", one_nan)
    config = tiny_config(tiny_bert_dir, hh_file, tmp_path / "rm", max_steps=4)
    config.max_tokens_per_micro_batch = 1  # one group a forward pass: 4 a step
    with pytest.raises(TrainingDiverged, match="At step 1 the reward became non-finite"):
        train(config)
    assert not (tmp_path / "rm" / "model.safetensors").exists()


def test_a_step_is_one_batch_per_process_in_random_order(tmp_path):
    from rewardforge.training.arguments import training_arguments

    arguments = training_arguments(TrainConfig(batch_pairs=8), tmp_path, has_eval=False)
    assert arguments.train_sampling_strategy == "random"
    assert arguments.per_device_train_batch_size == 8
    assert arguments.gradient_accumulation_steps == 1


def log_steps(output: Path) -> list[int]:
    records = [json.loads(line) for line in (output / "log.jsonl").open()]
    return [record["step"] for record in records if "loss" in record]


def test_resume_without_a_checkpoint_starts_from_the_beginning(tiny_bert_dir, hh_file, tmp_path):
    config = tiny_config(tiny_bert_dir, hh_file, tmp_path / "rm", max_steps=2, resume=True)
    result = train(config)
    assert result.metrics["train_pairs"] == 8
    assert log_steps(tmp_path / "rm") == [1, 2]


def test_resume_skips_a_checkpoint_cut_short_and_logs_each_step_once(
    tiny_bert_dir, hh_file, tmp_path, capsys
):
    output = tmp_path / "rm"
    train(tiny_config(tiny_bert_dir, hh_file, output, max_steps=4, save_steps=2))
    (output / "checkpoints" / "checkpoint-4" / "trainer_state.json").unlink()  # killed mid-save
    train(tiny_config(tiny_bert_dir, hh_file, output, max_steps=4, save_steps=2, resume=True))
    assert "skipping checkpoint-4" in capsys.readouterr().out
    assert log_steps(output) == [1, 2, 3, 4]
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 2 and metrics["train_pairs"] == 8  # steps 3 and 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="the tip is for CPU runs")
@pytest.mark.parametrize(
    ("backbone", "native", "requested", "tip_given"),
    [
        ("tiny_llama_dir", True, "auto", True),
        ("tiny_llama_dir", False, "auto", False),
        ("tiny_llama_dir", True, "no", False),
        ("tiny_bert_dir", True, "auto", False),  # measured on a decoder only
    ],
)
def test_an_fp32_decoder_run_on_a_cpu_with_native_bf16_prints_how_to_use_it(
    backbone, native, requested, tip_given, request, monkeypatch, hh_file, tmp_path, capsys
):
    import rewardforge.training.train

    monkeypatch.setattr(rewardforge.training.train, "cpu_has_native_bf16", lambda: native)
    model = request.getfixturevalue(backbone)
    output = tmp_path / "rm"
    train(tiny_config(model, hh_file, output, max_steps=1, mixed_precision=requested))
    tip = "tip: this CPU multiplies bf16 in hardware; --mixed-precision bf16"
    assert (tip in capsys.readouterr().out) == tip_given


@pytest.mark.parametrize("huge_pages", [None, "1"])
def test_cpu_training_without_huge_pages_prints_how_to_set_them(
    huge_pages, monkeypatch, tiny_bert_dir, hh_file, tmp_path, capsys
):
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    if huge_pages:
        monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", huge_pages)
    train(tiny_config(tiny_bert_dir, hh_file, tmp_path / "rm", max_steps=1))
    tip = "tip: CPU training runs faster with THP_MEM_ALLOC_ENABLE=1"
    assert (tip in capsys.readouterr().out) == (huge_pages is None)


KILL_AT_STEP_3 = """
import os, signal, sys
from rewardforge import TrainConfig, train
from rewardforge.training.trainer import RewardTrainer
step = RewardTrainer.training_step
def killed_at_step_3(self, *args, **kwargs):
    if self.state.global_step == 2:  # checkpoint-2 is on disk; step 3 is under way
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self, *args, **kwargs)
RewardTrainer.training_step = killed_at_step_3
train(TrainConfig(**eval(sys.argv[1])))
"""


@pytest.mark.parametrize("lora", [False, True])
def test_kill_9_then_resume_reaches_the_uninterrupted_weights(
    tiny_llama_dir, hh_file, tmp_path, lora
):
    straight = tiny_config(
        tiny_llama_dir, hh_file, tmp_path / "straight", max_steps=4, save_steps=2, lora=lora
    )
    train(straight)
    with safe_open(
        str(tmp_path / "straight" / "checkpoints" / "checkpoint-4" / "model.safetensors"), "pt"
    ) as checkpoint:
        saved = set(checkpoint.keys())
    # LoRA checkpoints leave the frozen backbone out; resume reloads it from --model
    assert any("lora_" in key for key in saved) == lora
    frozen_weight = ("q_proj.base_layer.weight", "q_proj.weight")  # under LoRA, and without
    assert any(key.endswith(frozen_weight) for key in saved) != lora
    killed = dataclasses.asdict(dataclasses.replace(straight, output=str(tmp_path / "killed")))
    done = subprocess.run(
        [sys.executable, "-c", KILL_AT_STEP_3, repr(killed)], capture_output=True, text=True
    )
    assert done.returncode == -9, done.stderr[-2000:]
    assert not (tmp_path / "killed" / "rewardforge_recipe.json").exists()
    resumed = train(TrainConfig(**{**killed, "resume": True})).output_dir
    assert log_steps(resumed) == [1, 2, 3, 4]
    with (
        safe_open(str(tmp_path / "straight" / "model.safetensors"), "pt") as expected,
        safe_open(str(resumed / "model.safetensors"), "pt") as got,
    ):
        for key in expected.keys():  # noqa: SIM118 (not a dict)
            torch.testing.assert_close(got.get_tensor(key), expected.get_tensor(key))


def test_a_loss_that_turns_nan_stops_the_run_and_keeps_checkpoints(
    tiny_llama_dir, hh_file, tmp_path
):
    from rewardforge.training.callbacks import TrainingDiverged

    config = tiny_config(tiny_llama_dir, hh_file, tmp_path / "rm", lr=1e30, save_steps=1)
    with pytest.raises(TrainingDiverged, match="At step 3 the reward became non-finite"):
        train(config)
    assert (tmp_path / "rm" / "checkpoints" / "checkpoint-2").is_dir()  # the last good step
    assert not (tmp_path / "rm" / "rewardforge_recipe.json").exists()


def test_a_crash_while_saving_leaves_the_previous_model_whole(
    tiny_bert_dir, hh_file, tmp_path, monkeypatch
):
    import rewardforge.training.train

    output = train(tiny_config(tiny_bert_dir, hh_file, tmp_path / "rm", max_steps=1)).output_dir
    before = RewardModel.load(output).score(["q"], ["a"])

    def full_disk(directory):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rewardforge.training.train, "add_legacy_fields", full_disk)
    with pytest.raises(OSError, match="No space left"):
        train(tiny_config(tiny_bert_dir, hh_file, output, max_steps=2, lr=0.5, resume=True))
    assert RewardModel.load(output).score(["q"], ["a"]) == before
    assert not (output / ".saving" / "rewardforge_recipe.json").exists()


def test_an_output_directory_with_a_different_run_is_refused(tiny_bert_dir, hh_file, tmp_path):
    output = train(tiny_config(tiny_bert_dir, hh_file, tmp_path / "rm", max_steps=1)).output_dir
    with pytest.raises(UserError, match=r"already holds a run trained with other settings \(lr"):
        train(tiny_config(tiny_bert_dir, hh_file, output, max_steps=1, lr=0.5))
    train(tiny_config(tiny_bert_dir, hh_file, output, max_steps=1))  # the same run again is fine


@pytest.mark.parametrize(("dtype", "mixed_precision"), [("bfloat16", "no"), ("float32", "bf16")])
def test_bf16_runs_end_to_end_on_cpu(tiny_llama_dir, hh_file, tmp_path, dtype, mixed_precision):
    """Pure bf16 weights, and bf16 autocast over float32 weights, both through train()."""
    config = tiny_config(
        tiny_llama_dir, hh_file, tmp_path / "rm", dtype=dtype, mixed_precision=mixed_precision
    )
    result = train(config)
    assert result.metrics["train_pairs"] == 12 and result.metrics["train_loss"] > 0
    saved = json.loads((result.output_dir / "config.json").read_text())
    assert saved["dtype"] == dtype
    # Against the same run in float32: bf16 rounding moves rewards by a little, not the model.
    fp32 = train(tiny_config(tiny_llama_dir, hh_file, tmp_path / "fp32")).output_dir
    prompts, responses = (
        ["你好", "q", "How do I bake bread?"],
        ["你好！", "a", "Knead, rise, bake."],
    )
    in_bf16 = RewardModel.load(result.output_dir).score(prompts, responses)
    in_fp32 = RewardModel.load(fp32).score(prompts, responses)
    assert all(math.isfinite(reward) for reward in in_bf16)
    assert in_bf16 == pytest.approx(in_fp32, abs=BF16_TOLERANCE)


CONCISE_TRAIN = [
    {"prompt": f"Question {i}?", "responses": [short, short + " Indeed.", short + " Well" * 12]}
    for i, short in enumerate(
        ["Yes.", "No.", "Six.", "Red.", "是的。", "不是。", "六个。", "红色。"]
    )
]
CONCISE_VERIFY = [
    {
        "prompt": f"Other question {i}?",
        "reference": "Sure.",
        "responses": [a, a + " So" * 3, a + " Hm" * 12],
    }
    for i, a in enumerate(["Maybe.", "Blue.", "可以。", "蓝色。"])
]


@pytest.fixture
def concise_files(tmp_path):
    return (
        write_rows(tmp_path / "concise.jsonl", CONCISE_TRAIN),
        write_rows(tmp_path / "verify.jsonl", CONCISE_VERIFY),
    )


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")
    return path


def test_reference_mode_training_moves_the_ranking_and_reloads(
    tiny_llama_dir, concise_files, tmp_path
):
    from rewardforge.evaluation.evaluate import compare

    train_file, verify_file = concise_files
    base = train(
        tiny_config(
            tiny_llama_dir, train_file, tmp_path / "base", reference_mode=True, max_steps=1, lr=1e-7
        )
    ).output_dir
    tuned = train(
        tiny_config(
            tiny_llama_dir, train_file, tmp_path / "tuned", reference_mode=True, max_steps=24
        )
    ).output_dir
    result = compare(base, tuned, verify_file, progress=False)
    before, after = result["preferred_first"].values()
    assert after > before and after == 1.0
    assert len(result["rank_changes"]) == 4
    first = result["rank_changes"][0]
    assert first["reference"] == "Sure." and first["candidates"][0]["ranks"]["tuned"] == 1

    reloaded = RewardModel.load(tuned)
    assert reloaded.recipe.reference_mode and reloaded.recipe.split_token == "<|split|>"
    assert "<|reward|>" in reloaded.encoder.tokenizer.get_vocab()
    triple = (["Q?"], ["Yes."], ["Sure."])
    assert reloaded.score(*triple) == RewardModel.load(tuned).score(*triple)
    with pytest.raises(UserError, match="every response needs a 'reference'"):
        reloaded.score(["Q?"], ["Yes."])


def test_fine_tuning_a_reference_model_keeps_its_recipe_with_lora_in_bf16(
    tiny_llama_dir, concise_files, tmp_path
):
    train_file, _ = concise_files
    base = train(
        tiny_config(tiny_llama_dir, train_file, tmp_path / "base", reference_mode=True, max_steps=1)
    ).output_dir
    config = tiny_config(
        base,
        train_file,
        tmp_path / "lora",
        lora=True,
        lora_rank=4,
        save_adapter=True,
        mixed_precision="bf16",  # the CPU autocast path, as bf16 runs on a GPU take it
    )
    out = train(config).output_dir  # no --reference-mode: the base model's mode carries over
    tuned = RewardModel.load(out)
    assert tuned.recipe.reference_mode
    markers = tuned.encoder.tokenizer.convert_tokens_to_ids(["<|split|>", "<|reward|>"])
    embeddings = tuned.model.get_input_embeddings().weight
    base_embeddings = RewardModel.load(base).model.get_input_embeddings().weight
    assert not torch.equal(embeddings[markers], base_embeddings[markers])  # trained under LoRA
    others = [i for i in range(len(embeddings)) if i not in markers]
    assert torch.equal(embeddings[others], base_embeddings[others])
    plain = merge_into_plain_backbone(str(base), out / "adapter", ["<|split|>", "<|reward|>"])
    triple = (["Q?", "问题？"], ["Yes.", "是的。"], ["Sure.", "好的。"])
    from_plain = RewardModel(plain, tuned.encoder).score(*triple)
    assert tuned.score(*triple) == pytest.approx(from_plain, abs=1e-5)


def test_reference_markers_are_configurable_and_kept_by_fine_tuning(
    tiny_llama_dir, concise_files, tmp_path
):
    train_file, _ = concise_files
    markers = {"split_token": "[[REF END]]", "reward_marker": "[[SCORE]]"}
    config = tiny_config(
        tiny_llama_dir, train_file, tmp_path / "rm", reference_mode=True, max_steps=1, **markers
    )
    model = RewardModel.load(train(config).output_dir)
    assert model.recipe.added_tokens == ["[[REF END]]", "[[SCORE]]"]
    encoded = model.encoder.encode("Q?", "Yes.", reference="Sure.")
    assert model.encoder.tokenizer.decode(encoded.input_ids).endswith("[[SCORE]]")
    other = {"split_token": "<|split|>", "reward_marker": "<|end|>"}
    with pytest.raises(UserError, match="fine-tuning keeps them"):
        train(tiny_config(tmp_path / "rm", train_file, tmp_path / "again", **other))
    with pytest.raises(UserError, match="must differ"):
        tiny_config(
            tiny_llama_dir, train_file, tmp_path / "x", split_token="[[A]]", reward_marker="[[A]]"
        )


@pytest.fixture(scope="module")
def worsening_run(tiny_bert_dir, tmp_path_factory):
    """Six steps trained on the dev pairs with chosen and rejected swapped, evaluated on the
    dev pairs at every step, with --load-best: dev accuracy falls as the run goes on."""
    from tests.conftest import sample_rows, write_jsonl

    root = tmp_path_factory.mktemp("worsening")
    dev_rows = sample_rows("dev", 12)
    dev = write_jsonl(root / "dev.jsonl", dev_rows)
    swapped = [{"chosen": row["rejected"], "rejected": row["chosen"]} for row in dev_rows]
    flipped = write_jsonl(root / "flipped.jsonl", swapped)
    settings = dict(eval_data=[str(dev)], eval_steps=1, max_steps=6, warmup_ratio=0.0, lr=1e-2)
    config = tiny_config(tiny_bert_dir, flipped, root / "best", load_best=True, **settings)
    return root, dev, train(config), settings


def eval_accuracies(output: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (output / "log.jsonl").open()]
    return {r["step"]: r["eval_accuracy"] for r in records if "eval_accuracy" in r}


def test_load_best_keeps_the_best_checkpoint_of_a_run_that_gets_worse(worsening_run):
    from rewardforge.evaluation.evaluate import evaluate

    root, dev, result, _ = worsening_run
    accuracies = eval_accuracies(result.output_dir)
    assert sorted(accuracies) == [1, 2, 3, 4, 5, 6]
    best = max(accuracies.values())
    best_step = min(step for step, accuracy in accuracies.items() if accuracy == best)
    assert accuracies[6] < best  # the run got worse
    metrics = result.metrics
    assert (metrics["best_step"], metrics["best_eval_accuracy"], metrics["last_step"]) == (
        best_step,
        best,
        6,
    )
    # The model saved is the best step's: its weights are that checkpoint's, and `eval` of it
    # reports the accuracy the trainer logged for that step.
    saved = safe_open(str(result.output_dir / "model.safetensors"), "pt")
    checkpoint = root / "best" / "checkpoints" / f"checkpoint-{best_step}" / "model.safetensors"
    kept = safe_open(str(checkpoint), "pt")
    for name in kept.keys():  # noqa: SIM118 (a safetensors file, not a dict); the checkpoint holds RewardForward's names
        plain = RewardForward_name(name)
        assert torch.equal(saved.get_tensor(plain), kept.get_tensor(name)), name
    assert metrics["eval_accuracy"] == best
    assert evaluate(result.output_dir, dev, progress=False)["accuracy"] == best


def RewardForward_name(name: str) -> str:  # noqa: N802
    return name.removeprefix("classifier.")


def test_early_stopping_ends_the_run_after_patience_evaluations(worsening_run, tiny_bert_dir):
    root, _, result, settings = worsening_run
    best_step = result.metrics["best_step"]
    flipped = root / "flipped.jsonl"
    config = tiny_config(tiny_bert_dir, flipped, root / "early", early_stopping=2, **settings)
    stopped = train(config)
    assert stopped.metrics["best_step"] == best_step
    assert stopped.metrics["last_step"] == min(best_step + 2, 6)
    assert max(eval_accuracies(root / "early")) == min(best_step + 2, 6)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(load_best=True), "--load-best compares evaluations made during training; give"),
        (dict(early_stopping=3), "--early-stopping compares evaluations"),
        (dict(early_stopping=0, eval_steps=5), "--early-stopping must be at least 1, got 0."),
    ],
)
def test_keeping_the_best_needs_evaluations(settings, message):
    with pytest.raises(UserError, match=message):
        TrainConfig(**settings)
    if "eval_steps" not in settings:
        with pytest.raises(UserError, match="choose by eval accuracy; give --eval-data FILE"):
            train(TrainConfig(data=["x.jsonl"], eval_steps=5, **settings))


def test_load_best_with_lora_saves_the_best_steps_merged_model(worsening_run, tiny_llama_dir):
    """A LoRA checkpoint holds only the adapter and head; the best one is loaded over the frozen
    base, merged, and saved, and it scores as the trainer said."""
    from rewardforge.evaluation.evaluate import evaluate

    root, dev, _, settings = worsening_run
    flipped = root / "flipped.jsonl"
    config = tiny_config(
        tiny_llama_dir, flipped, root / "lora", lora=True, load_best=True, **settings
    )
    result = train(config)
    accuracies = eval_accuracies(root / "lora")
    best = max(accuracies.values())
    assert result.metrics["best_eval_accuracy"] == best
    assert result.metrics["best_step"] == min(s for s, a in accuracies.items() if a == best)
    assert evaluate(result.output_dir, dev, progress=False)["accuracy"] == best


def test_the_final_evaluation_shows_a_bar(tiny_bert_dir, hh_file, hh_dev_file, tmp_path, capfd):
    """Scoring the dev set after training took a while with nothing on the screen."""
    config = tiny_config(tiny_bert_dir, hh_file, tmp_path / "rm", eval_data=[str(hh_dev_file)])
    train(config)
    assert "Evaluating: 100%" in capfd.readouterr().err
