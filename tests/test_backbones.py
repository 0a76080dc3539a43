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


def test_a_hub_id_passes_through_online(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert resolve_backbone("org/some-model") == "org/some-model"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("minilm", "minilm: no such folder, and not a bundled backbone (minilm-l6, smollm2-135m)"),
        ("/nonexistent/model", "/nonexistent/model: no such file or folder."),
        ("./runs/typo", "./runs/typo: no such file or folder."),
        ("org/not-cached", "org/not-cached: no such folder, and not in the local Hugging Face"),
    ],
)
def test_a_name_that_cannot_be_found_offline_is_one_line(name, message):
    from rewardforge.errors import UserError

    with pytest.raises(UserError) as error:
        resolve_backbone(name)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--model", "minilm", "--data", "{data}"],
        ["sft", "--model", "/nonexistent/policy", "--data", "{data}"],
    ],
)
def test_the_cli_says_a_missing_backbone_in_one_line(command, hh_file, tmp_path):
    from typer.testing import CliRunner

    from rewardforge.cli import app

    command = [part.format(data=hh_file) for part in command]
    result = CliRunner().invoke(app, [*command, "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(f"error: {command[2]}: no such")
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


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
