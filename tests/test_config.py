import pytest

from rewardforge.errors import UserError
from rewardforge.training.config import TrainConfig


def test_flags_override_yaml_which_overrides_defaults(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("lr: 0.001\nbatch-pairs: 4\ndata: a.jsonl\n", encoding="utf-8")
    config = TrainConfig.from_sources(config_file, lr=0.5, epochs=None)
    assert config.lr == 0.5  # flag wins
    assert config.batch_pairs == 4  # from YAML
    assert config.data == ["a.jsonl"]  # a single path becomes a list
    assert config.epochs == 1.0  # default (None means "flag not given")


def test_saved_config_loads_back(tmp_path):
    original = TrainConfig(data=["x.jsonl"], loss="hinge", columns={"prompt": "问题"})
    original.save(tmp_path / "resolved.yaml")
    assert "问题" in (tmp_path / "resolved.yaml").read_text(encoding="utf-8")
    assert TrainConfig.from_sources(tmp_path / "resolved.yaml") == original


def test_unknown_setting_names_the_file(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("learning_rate: 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"learning_rate in .*run.yaml"):
        TrainConfig.from_sources(config_file)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"loss": "dpo"}, "--loss"),
        ({"pairs": "some"}, "--pairs"),
        ({"batch_pairs": 0}, "--batch-pairs"),
        ({"load_in_8bit": True, "load_in_4bit": True, "lora": True}, "not both"),
        ({"load_in_4bit": True}, "add --lora"),
        ({"dtype": "float16"}, "--mixed-precision bf16 or fp16"),
        ({"mixed_precision": "fp8"}, "--mixed-precision must be one of"),
        ({"max_length": 0}, "--max-length must be at least 16, got 0"),
        ({"max_length": -5}, "--max-length must be at least 16, got -5"),
        ({"epochs": 0}, "--epochs must be above 0"),
        ({"lr": 0}, "--lr must be above 0"),
        ({"eval_steps": 0}, "--eval-steps must be at least 1"),
    ],
)
def test_invalid_settings_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_epochs_zero_is_fine_when_max_steps_says_how_long():
    assert TrainConfig(epochs=0, max_steps=3).max_steps == 3


def test_yaml_numbers_written_as_text_are_read_as_numbers(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("lr: 1e-4\nbatch-pairs: '8'\n", encoding="utf-8")
    config = TrainConfig.from_sources(config_file)
    assert config.lr == 1e-4 and config.batch_pairs == 8


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("lr: fast\n", "run.yaml: lr must be a number, got 'fast'."),
        ("batch-pairs: 2.5\n", "run.yaml: batch-pairs must be a whole number, got 2.5."),
        ("lora: yes please\n", "run.yaml: lora must be true or false, got 'yes please'."),
        ("epochs: true\n", "run.yaml: epochs must be a number, got True."),
        ("data: [1, 2]\n", "run.yaml: data must be a list of strings, got [1, 2]."),
    ],
)
def test_wrong_types_in_yaml_are_one_line_errors(tmp_path, yaml_text, message):
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        TrainConfig.from_sources(config_file)
    assert str(caught.value) == f"{config_file.parent}/{message}"


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("lr: 0.1\nbatch-pairs: [4\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"run.yaml: not valid YAML at line 3, column 1"):
        TrainConfig.from_sources(config_file)


def test_any_annotated_type_is_validated_with_a_one_line_error(tmp_path):
    """Literal and Path fields (and any other type pydantic knows) validate like the rest."""
    import dataclasses
    from pathlib import Path
    from typing import Literal

    from rewardforge.config_fields import setting, settings_from_sources

    @dataclasses.dataclass
    class Settings:
        mode: Literal["fast", "exact"] = setting("fast", "How.")
        folder: Path | None = setting(None, "Where.")
        ratio: float = setting(0.5, "How much.")

    read = settings_from_sources(Settings, None, {"mode": "exact", "folder": "runs/a", "ratio": 1})
    assert read == {"mode": "exact", "folder": Path("runs/a"), "ratio": 1.0}
    assert isinstance(read["ratio"], float)
    with pytest.raises(UserError) as wrong:
        settings_from_sources(Settings, None, {"mode": "slow"})
    assert str(wrong.value) == "mode must be one of 'fast', 'exact', got 'slow'."
    with pytest.raises(UserError) as wrong:
        settings_from_sources(Settings, None, {"folder": 3})
    assert str(wrong.value) == "folder must be a path, got 3."
