"""The bundled offline backbones, end to end: a few real training steps each."""

import json
from pathlib import Path

import pytest

from rewardforge import TrainConfig, train
from rewardforge.models import resolve_backbone
from rewardforge.models.backbones import cache_dir


def test_minilm_alias_points_at_packaged_files():
    path = Path(resolve_backbone("minilm-l6"))
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()


def test_other_names_pass_through():
    assert resolve_backbone("org/some-model") == "org/some-model"


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path


def short_run(model: str, data: Path, output: Path, **extra) -> dict:
    config = TrainConfig(
        data=[str(data)],
        eval_data=[str(data)],
        model=model,
        output=str(output),
        batch_pairs=2,
        max_steps=1,
        max_length=96,
        **extra,
    )
    train(config)
    return json.loads((output / "metrics.json").read_text())


def test_minilm_trains(hh_file, tmp_path):
    metrics = short_run("minilm-l6", hh_file, tmp_path / "minilm")
    assert metrics["train_pairs"] == 2 and "eval_accuracy" in metrics


@pytest.fixture(scope="module")
def smollm2_dir():
    return Path(resolve_backbone("smollm2-135m"))


def test_smollm2_converts_to_plain_safetensors(smollm2_dir):
    assert (smollm2_dir / "model.safetensors").is_file()
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config


@pytest.mark.parametrize("lora", [False, True])
def test_smollm2_trains_with_and_without_lora(smollm2_dir, hh_file, tmp_path, lora):
    metrics = short_run("smollm2-135m", hh_file, tmp_path / "smol", lora=lora)
    assert metrics["train_pairs"] == 2 and "eval_accuracy" in metrics


def test_a_folder_without_a_model_is_a_one_line_error(tmp_path):
    from rewardforge.errors import UserError

    (tmp_path / "notes.txt").write_text("not a model", encoding="utf-8")
    with pytest.raises(UserError, match="is a folder but holds no model"):
        resolve_backbone(str(tmp_path))


def test_a_full_disk_while_converting_is_a_one_line_error_and_leaves_nothing(monkeypatch, tmp_path):
    import errno

    from transformers import PreTrainedModel

    from rewardforge.errors import UserError

    def full_disk(self, directory, **kwargs):
        (Path(directory) / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full_disk)
    with pytest.raises(UserError, match="is full: converting SmolLM2.* set REWARDFORGE_CACHE"):
        resolve_backbone("smollm2-135m")
    assert list((tmp_path / "cache").iterdir()) == []  # no half-written copy left behind
