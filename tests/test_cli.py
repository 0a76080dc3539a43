import json

import pytest
from typer.testing import CliRunner

from rewardforge import RewardModel
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
        f"model: {tiny_bert_dir}\nbatch-pairs: 4\nmax-tokens-per-micro-batch: 512\nmax-length: 64\n"
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
    assert "forward plan: packed rows, a segment for each response;" in result.output
    assert "train_runtime" not in result.output  # the Trainer's closing dict stays in the log
    assert "trained 8 pairs in " in result.output.strip().splitlines()[-1]
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


def test_eval_report_and_compare(cli_model, tiny_reward_model_dir, tmp_path):
    from rewardforge.data import load_preferences

    root, _ = cli_model
    model, data = str(root / "rm"), str(root / "train.jsonl")
    args = ["eval", "--model", model, "--data", data, "--report", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, "--compare", str(tiny_reward_model_dir)])
    assert result.exit_code == 0, result.output
    # The pairs that exactly one of the two models orders right, counted here independently.
    examples = load_preferences(data).examples
    right = [
        [chosen > rejected for chosen, rejected in RewardModel.load(path).score_examples(examples)]
        for path in (model, tiny_reward_model_dir)
    ]
    expected = sum(a != b for a, b in zip(*right))
    assert 0 < expected < 8
    assert f"disagreements: {expected} examples" in result.stdout
    lines = (tmp_path / "r" / "disagreements.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == expected
    assert (tmp_path / "r" / "report.html").is_file()


def test_bad_data_exits_with_a_row_numbered_message(cli_model, tmp_path):
    root, _ = cli_model
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": "a"}\n')
    result = runner.invoke(app, ["train", "--data", str(bad), "--output", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert f"{bad}: line 1: chosen and rejected responses are identical" in result.stderr


def test_eval_on_a_directory_without_a_model(cli_model, tmp_path):
    data = str(cli_model[0] / "train.jsonl")
    result = runner.invoke(app, ["eval", "--model", str(tmp_path), "--data", data])
    assert result.exit_code == 2 and "not a model directory" in result.stderr


def test_columns_flag_must_be_pairs(cli_model):
    result = runner.invoke(app, ["train", "--columns", "prompt"])
    assert result.exit_code == 2
    assert "--columns expects canonical=source pairs" in " ".join(result.stderr.split())


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
    expected = RewardModel.load(root / "rm").score(["你好"], ["你好！"])[0]
    assert row["prompt"] == "你好" and row["reward"] == pytest.approx(expected, abs=1e-6)


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
    assert "Verifying:" in verdict.stderr and "1/3" in verdict.stderr  # not silent


def test_a_bug_exits_1_and_writes_its_traceback(monkeypatch, tmp_path, hh_file):
    import rewardforge.training.train

    def crash(config):
        raise RuntimeError("expected mat1 and mat2 to have the same dtype")

    monkeypatch.setattr(rewardforge.training.train, "train", crash)
    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(app, ["train", "--data", str(hh_file), "--output", str(tmp_path)])
    assert result.exit_code == 1
    assert "internal error: RuntimeError: expected mat1 and mat2" in result.output
    reports = list((tmp_path / "cache" / "crash-reports").glob("rewardforge-crash-*.txt"))
    assert len(reports) == 1 and str(reports[0]) in result.output.replace("\n", "")
    trace = reports[0].read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in trace and "in crash" in trace


def test_a_user_mistake_exits_2_on_one_line(tmp_path, hh_file):
    result = runner.invoke(
        app, ["train", "--data", str(hh_file), "--output", str(tmp_path), "--load-in-4bit"]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --load-in-4bit freezes the quantized weights, so there would be nothing to "
        "train; add --lora to train adapters on top of them."
    ]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "rm.example.org"])
def test_serve_refuses_an_open_address_without_a_key(cli_model, host):
    root, _ = cli_model
    result = runner.invoke(app, ["serve", "--model", str(root / "rm"), "--host", host])
    assert result.exit_code == 2
    assert "has no API key" in result.output and "--insecure" in result.output


def test_serve_lets_insecure_through_to_loading(cli_model, tmp_path):
    # --insecure passes the address check; an empty folder then fails as a model, not as host.
    from tests.conftest import free_port

    result = runner.invoke(
        app,
        ["serve", "--model", str(tmp_path), "--host", "0.0.0.0", "--insecure"]
        + ["--port", str(free_port())],
    )
    assert result.exit_code == 2 and "not a model directory" in result.output


@pytest.mark.parametrize("port", ["99999", "0"])
def test_serve_refuses_a_port_out_of_range_in_one_line(tmp_path, port):
    result = runner.invoke(app, ["serve", "--model", str(tmp_path), "--port", port])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --port must be between 1 and 65535, got {port}."


def test_serve_refuses_a_busy_port_before_loading_the_model(cli_model):
    import socket

    root, _ = cli_model
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--model", str(root / "rm"), "--port", str(port)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: port {port} on 127.0.0.1 is in use: stop what listens there, or pick another "
        "--port."
    )  # one line, and the model's loading line never came


def config_classes():
    from rewardforge.evaluation.config import EvalSettings
    from rewardforge.generation.config import BestOfNSettings, PolarDataSettings, VerifySettings
    from rewardforge.policy.rlhf_config import RLHFConfig
    from rewardforge.policy.tuning_config import DPORunConfig, SFTRunConfig
    from rewardforge.scoring.config import ScoreSettings
    from rewardforge.serving.config import ServerSettings
    from rewardforge.training.config import TrainConfig

    return {
        "train": TrainConfig,
        "rlhf": RLHFConfig,
        "sft": SFTRunConfig,
        "dpo": DPORunConfig,
        "serve": ServerSettings,
        "eval": EvalSettings,
        "score": ScoreSettings,
        "best-of-n": BestOfNSettings,
        "verify": VerifySettings,
        "polar-data": PolarDataSettings,
    }


@pytest.mark.parametrize("name", list(config_classes()))
def test_every_setting_is_a_flag_whose_help_states_its_default(name):
    import dataclasses

    import typer

    config_class = config_classes()[name]
    command = typer.main.get_command(app).commands[name]
    options = {param.name: param for param in command.params}
    assert set(options) == {f.name for f in dataclasses.fields(config_class)} | {"config"}
    for field in dataclasses.fields(config_class):
        help_text = options[field.name].help
        assert "(default: " in help_text, f"--{field.name}: no default in its help"
        stated = help_text.split("(default: ")[1].split(")")[0].split(",")[0]
        if isinstance(field.default, str) and field.default:
            shown = field.default if field.default.isprintable() else repr(field.default)
            assert help_text.endswith(f"(default: {shown})"), field.name
        elif isinstance(field.default, (int, float)) and not isinstance(field.default, bool):
            assert float(stated) == field.default, field.name


def test_eval_reads_its_settings_from_yaml_and_names_missing_flags(cli_model, tmp_path):
    root, _ = cli_model
    settings = tmp_path / "eval.yaml"
    settings.write_text(f"model: {root / 'rm'}\ndata: {root / 'train.jsonl'}\njson: true\n")
    result = runner.invoke(app, ["eval", "--config", str(settings)])
    assert result.exit_code == 2 and "Unknown setting(s) json" in result.output
    settings.write_text(f"model: {root / 'rm'}\ndata: {root / 'train.jsonl'}\nas_json: true\n")
    result = runner.invoke(app, ["eval", "--config", str(settings)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_pairs"] == 8
    result = runner.invoke(app, ["score", "--model", str(root / "rm")])
    assert result.exit_code == 2 and "score needs --input and --output" in result.output


def test_an_output_directory_that_cannot_be_written_is_one_line(monkeypatch, tmp_path, hh_file):
    from pathlib import Path

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    result = runner.invoke(app, ["train", "--data", str(hh_file), "--output", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'x'}: permission denied."


def test_reference_mode_end_to_end_in_chinese(tiny_llama_dir, reference_rows_file, tmp_path):
    """polar-data, train --reference-mode, eval --compare and score, all on Chinese text."""
    pool = tmp_path / "pool.yaml"
    pool.write_text(
        f"- name: 简短\n  model: {tiny_llama_dir}\n  system: 简短回答。\n  max_new_tokens: 6\n"
        f"- name: 详细\n  model: {tiny_llama_dir}\n  temperature: 1.2\n  max_new_tokens: 6\n",
        encoding="utf-8",
    )
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"问题{i}？"} for i in range(5)])
    args = ["polar-data", "--pool", str(pool), "--prompts", str(prompts)]
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "pairs")])
    assert result.exit_code == 0, result.output
    assert "5 prompts: 10 answer sets generated, 0 reused" in result.stdout
    assert "简短 vs 详细" in (tmp_path / "pairs" / "train.jsonl").read_text("utf-8")

    def train_args(data, output, *extra):
        return ["train", "--data", str(data), "--output", str(output), "--max-length", "128",
                "--batch-pairs", "4", *extra]  # fmt: skip

    base, tuned = tmp_path / "base", tmp_path / "tuned"
    common = ["--model", str(tiny_llama_dir), "--reference-mode"]
    result = runner.invoke(app, train_args(tmp_path / "pairs" / "train.jsonl", base, *common))
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, train_args(reference_rows_file, tuned, "--model", str(base)))
    assert result.exit_code == 0, result.output

    args = ["eval", "--model", str(base), "--compare", str(tuned), "--data"]
    result = runner.invoke(app, [*args, str(reference_rows_file)])
    assert result.exit_code == 0, result.output
    assert "天气怎么样？" in result.stdout and "今天是晴天，很暖和。" in result.stdout
    assert "reference: 晴。" in result.stdout  # the best ranked answer became the reference
    assert "preferred answer ranked first: base" in result.stdout

    rows = write_jsonl(
        tmp_path / "score.jsonl", [{"prompt": "天气？", "reference": "晴。", "response": "晴天。"}]
    )
    args = ["score", "--model", str(tuned), "--input", str(rows), "--output"]
    result = runner.invoke(app, [*args, str(tmp_path / "scored.jsonl")])
    assert result.exit_code == 0, result.output
    scored = json.loads((tmp_path / "scored.jsonl").read_text("utf-8"))
    expected = RewardModel.load(tuned).score(["天气？"], ["晴天。"], references=["晴。"])[0]
    assert scored["response"] == "晴天。" and scored["reward"] == pytest.approx(expected, abs=1e-6)


def test_references_for_a_plain_model_are_one_line_with_exit_2(cli_model, reference_rows_file):
    root, _ = cli_model
    args = ["eval", "--model", str(root / "rm"), "--data", str(reference_rows_file)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "only a reference-based reward model reads" in result.output


def test_best_of_n_and_verify_with_a_reference_based_model(
    tiny_llama_dir, tiny_reference_model_dir, tmp_path
):
    rows = [{"prompt": "天气？", "reference": "晴。"}, {"prompt": "Egg?", "reference": "9 min."}]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    common = ["--policy", str(tiny_llama_dir), "--reward-model", str(tiny_reference_model_dir)]
    common += ["--max-new-tokens", "6"]
    args = ["best-of-n", *common, "--prompts", str(prompts), "--n", "3", "--output"]
    result = runner.invoke(app, [*args, str(tmp_path / "sft.jsonl")])
    assert result.exit_code == 0, result.output
    sft = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text("utf-8").splitlines()]
    from rewardforge import RewardModel

    judge = RewardModel.load(tiny_reference_model_dir)
    expected = judge.score(["天气？", "Egg?"], [row["response"] for row in sft], ["晴。", "9 min."])
    assert [row["reward"] for row in sft] == pytest.approx(expected, abs=1e-5)

    args = ["verify", *common, "--prompt", "天气？", "--threshold", "-1e9", "--json"]
    verdict = runner.invoke(app, [*args, "--reference", "晴。"])
    assert verdict.exit_code == 0, verdict.output
    assert json.loads(verdict.stdout.strip().splitlines()[-1])["accepted"]
    missing = runner.invoke(app, args)
    assert missing.exit_code == 2 and "needs a 'reference'" in missing.output


def test_the_command_leaves_the_process_group_it_ran_in(monkeypatch, tmp_path):
    # under `accelerate launch`, a group left to the interpreter's exit can abort a finished rank
    import torch.distributed as dist

    from rewardforge.cli import main

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    monkeypatch.setattr("sys.argv", ["rewardforge", "--help"])
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 0
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
