import pytest

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
        ({"load_in_8bit": True, "load_in_4bit": True}, "not both"),
    ],
)
def test_invalid_settings_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)
