import json

import pytest
from typer.testing import CliRunner

from rewardforge.cli import app
from tests.conftest import write_jsonl

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_model(tiny_bert_dir, tmp_path_factory):
    from tests.conftest import sample_rows

    root = tmp_path_factory.mktemp("cli")
    data = write_jsonl(root / "train.jsonl", sample_rows("train", 8))
    config = root / "run.yaml"
    config.write_text(
        f"model: {tiny_bert_dir}\nbatch-pairs: 4\nmicro-batch-pairs: 4\nmax-length: 64\n"
        "max-steps: 50\nlr: 0.001\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(config),
            "--data",
            str(data),
            "--max-steps",
            "2",
            "--keep-dropout",
            "--output",
            str(root / "rm"),
        ],
    )
    assert result.exit_code == 0, result.output
    return root, result


def test_train_prints_account_and_applies_flag_over_yaml(cli_model):
    root, result = cli_model
    assert "detected format 'implicit'" in result.output
    assert "rows read: 8; examples used: 8; pairs: 8; truncated: " in result.output
    saved = (root / "rm" / "train_config.yaml").read_text()
    assert "max_steps: 2" in saved and "lr: 0.001" in saved
    assert "disable_dropout: false" in saved


def test_eval_json_prints_one_object(cli_model):
    root, _ = cli_model
    data = root / "train.jsonl"
    result = runner.invoke(
        app, ["eval", "--model", str(root / "rm"), "--data", str(data), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n_pairs"] == 8 and 0 <= metrics["accuracy"] <= 1
    assert {"mean_margin", "loss"} <= set(metrics)


def test_eval_summary_is_readable(cli_model):
    root, _ = cli_model
    result = runner.invoke(
        app, ["eval", "--model", str(root / "rm"), "--data", str(root / "train.jsonl")]
    )
    assert result.exit_code == 0 and "accuracy (ties wrong)" in result.stdout


def test_eval_report_and_compare(cli_model, tmp_path):
    root, _ = cli_model
    model, data = str(root / "rm"), str(root / "train.jsonl")
    args = ["eval", "--model", model, "--data", data, "--report", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, "--compare", model])
    assert result.exit_code == 0, result.output
    assert "disagreements: 0 examples" in result.stdout and "A: rm" in result.stdout
    assert (tmp_path / "r" / "report.html").is_file()


def test_bad_data_exits_with_a_row_numbered_message(cli_model, tmp_path):
    root, _ = cli_model
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": "a"}\n')
    result = runner.invoke(app, ["train", "--data", str(bad), "--output", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert f"{bad}: row 1: chosen and rejected responses are identical" in result.stderr


def test_eval_on_a_directory_without_a_model(cli_model, tmp_path):
    data = str(cli_model[0] / "train.jsonl")
    result = runner.invoke(app, ["eval", "--model", str(tmp_path), "--data", data])
    assert result.exit_code == 2 and "not a model directory" in result.stderr


def test_columns_flag_must_be_pairs(cli_model):
    result = runner.invoke(app, ["train", "--columns", "prompt"])
    assert result.exit_code != 0


def test_score_adds_rewards_and_reports_rejects(cli_model, tmp_path):
    root, _ = cli_model
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "你好", "response": "你好！"}\n{"prompt": "p"}\n', "utf-8")
    args = ["score", "--model", str(root / "rm"), "--input", str(source)]
    failed = runner.invoke(app, [*args, "--output", str(tmp_path / "out.jsonl")])
    assert failed.exit_code == 2 and f"{source}: line 2: missing key 'response'" in failed.stderr
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "out.jsonl"), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert "scored 1 rows" in result.stdout and "rejected 1 rows" in result.stdout
    row = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8"))
    assert row["prompt"] == "你好" and isinstance(row["reward"], float)


def test_best_of_n_and_verify(tiny_llama_dir, tiny_reward_model_dir, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "你好"}\n', encoding="utf-8")
    common = [
        "--policy",
        str(tiny_llama_dir),
        "--reward-model",
        str(tiny_reward_model_dir),
        "--max-new-tokens",
        "6",
    ]
    result = runner.invoke(
        app,
        [
            "best-of-n",
            *common,
            "--prompts",
            str(prompts),
            "--n",
            "3",
            "--output",
            str(tmp_path / "sft.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 prompts done (0 already in" in result.stdout
    verdict = runner.invoke(
        app, ["verify", *common, "--prompt", "Hi", "--threshold", "-1e9", "--json"]
    )
    assert verdict.exit_code == 0, verdict.output
    payload = json.loads(verdict.stdout.strip().splitlines()[-1])
    assert payload["accepted"] and len(payload["attempts"]) == 1
