"""OpenRLHF reward models as OpenRLHF 0.11.2 saves them, scored as OpenRLHF scores them.

The folders under tests/data/openrlhf/ were written by OpenRLHF's own code and their expected
rewards computed by its own text rule and forward (`make_openrlhf_rms.py` there): a `RewardModel`
architecture with no `id2label`, the head under `value_head_prefix`, `mean` / `std` in
config.json, bfloat16 weights, pad = EOS.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardforge.adoption.resolve import adopt
from rewardforge.cli import app
from rewardforge.scoring.reward_model import RewardModel

DATA = Path(__file__).resolve().parent / "data" / "openrlhf"
EXPECTED = json.loads((DATA / "expected_rewards.json").read_text(encoding="utf-8"))
PROMPTS, RESPONSES = EXPECTED["prompts"], EXPECTED["responses"]
FOLDERS = sorted(EXPECTED["rewards"])


def test_the_folders_are_what_openrlhf_writes():
    for name in FOLDERS:
        config = json.loads((DATA / name / "config.json").read_text())
        assert config["architectures"] == ["RewardModel"]
        assert "id2label" not in config and config["dtype"] == "bfloat16"
        assert {"value_head_prefix", "mean", "std", "normalize_reward"} <= config.keys()


@pytest.mark.parametrize("name", FOLDERS)
@pytest.mark.parametrize("template", ["plain", "chat"])
def test_openrlhf_rm_scores_as_openrlhf(name, template, capsys):
    rm = RewardModel.load(DATA / name, template=template)
    assert "OpenRLHF RM" in capsys.readouterr().err
    expected = EXPECTED["rewards"][name]
    assert rm.score(PROMPTS, RESPONSES) == pytest.approx(expected[template], abs=1e-4)
    normalized = rm.score(PROMPTS, RESPONSES, normalize=True)
    assert normalized == pytest.approx(expected[f"{template}_normalized"], abs=1e-4)


def test_an_openrlhf_rm_computes_in_float32_on_the_cpu(capsys):
    """The weights are bfloat16; on a CPU the forward is float32 unless asked otherwise."""
    rm = RewardModel.load(DATA / "rm")
    assert next(rm.model.parameters()).dtype.is_floating_point
    assert str(next(rm.model.parameters()).dtype) == "torch.float32"
    assert "float32" in capsys.readouterr().err


def test_adopt_then_score_equals_openrlhf(tmp_path):
    adopted = adopt(DATA / "rm-value-head", tmp_path / "adopted", template="chat")
    rm = RewardModel.load(adopted.folder)
    expected = EXPECTED["rewards"]["rm-value-head"]["chat"]
    assert rm.score(PROMPTS, RESPONSES) == pytest.approx(expected, abs=1e-4)


def test_score_command_reads_an_openrlhf_folder(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"prompt": p, "response": r}, ensure_ascii=False) + "\n"
            for p, r in zip(PROMPTS, RESPONSES)
        ),
        encoding="utf-8",
    )
    folder = tmp_path / "rm"
    shutil.copytree(DATA / "rm", folder)
    out = tmp_path / "scores.jsonl"
    result = CliRunner().invoke(
        app,
        ["score", "--model", str(folder), "--input", str(rows), "--output", str(out)],
    )
    assert result.exit_code == 0, result.output
    rewards = [json.loads(line)["reward"] for line in out.read_text().splitlines()]
    assert rewards == pytest.approx(EXPECTED["rewards"]["rm"]["chat"], abs=1e-4)
