"""A new user's mistakes, on every command: exit code 2, one line on stderr that names the
problem (a bad row's error goes on to list the rows), no traceback and no crash report, no output
left behind, and no model loaded before the refusal (loading one fails the test)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from rewardforge.cli.commands import main
from tests.conftest import write_jsonl

RM = ["--model", "{rm}"]
REWARD_MODEL = ["--reward-model", "{rm}"]
POLICY = ["--policy", "{policy}"]
# (command line, a text the one line holds). `{out}` is where the command would write.
MISTAKES = [
    (["train", "--lr", "-1", "--output", "{out}"], "--lr must be above 0, got -1.0."),
    (["train", "--data", "{missing}", "--output", "{out}"], "{missing}: no such file"),
    (["train", "--data", "{empty}", "--output", "{out}"], "no usable preference examples"),
    (["train", "--model", "minilm", "--output", "{out}"], "not a bundled backbone"),
    (["train", "--model", "/nonexistent/model", "--output", "{out}"], "no such file or folder"),
    (["train", "--data", "{pairs}", "--output", "{file}"], "is a file; give the path of a"),
    (["train", "--config", "{missing}", "--output", "{out}"], "{missing}: no such file."),
    (
        ["train", "--config", "{bad_yaml}", "--output", "{out}"],
        "bad.yaml: not valid YAML at line 2, column 1",
    ),
    (["train", "--warmup-ratio", "1.5", "--output", "{out}"], "--warmup-ratio must be in [0, 1)"),
    (
        ["train", "--kind", "generative", "--data", "{pairs}", "--output", "{out}"],
        "minilm-l6 is an encoder; pick a decoder such as --model smollm2-135m.",
    ),
    (["eval", *RM, "--data", "{pairs}", "--samples", "0"], "--samples must be at least 1"),
    (["eval"], "eval needs --model and --data"),
    (["eval", *RM, "--data", "{missing}"], "{missing}: no such file"),
    (["eval", "--model", "{missing}", "--data", "{pairs}"], "no such model directory"),
    (["eval", *RM, "--data", "{pairs}", "--report", "{file}/report"], "is a file, not a folder"),
    (["eval", *RM, "--data", "{empty}"], "no usable preference examples"),
    (
        ["eval", *RM, "--data", "{pairs}", "--benchmark", "rewardbench2", "--compare", "{rm}"],
        "eval --benchmark rewardbench2 scores one model",
    ),
    (
        ["eval", *RM, "--data", "{pairs}", "--benchmark", "rewardbench2"],
        "rows do not fit RewardBench 2's schema",
    ),
    (["score"], "score needs --model and --input and --output"),
    (["score", *RM, "--input", "{empty}", "--output", "{out}"], "{empty}: no rows; the file is"),
    (["score", *RM, "--input", "{rows}", "--output", "{folder}"], "is a folder"),
    (["score", *RM, "--input", "{rows}", "--output", "{file}/o.jsonl"], "is a file, not a folder"),
    (["score", *RM, "--input", "{missing}", "--output", "{out}"], "{missing}: no such file"),
    (["score", *RM, "--input", "{bad_row}", "--output", "{out}"], "line 1: "),
    (["adopt"], "adopt needs --source and --output"),
    (["adopt", "--source", "{missing}", "--output", "{out}"], "no such model directory"),
    (["adopt", "--source", "{rm}", "--output", "{folder}"], "holds other files and no model"),
    (
        ["adopt", "--source", "{rm}", "--output", "{out}", "--reward-format", "x"],
        "Invalid value for '--reward-format': 'x' is not one of 'auto',",
    ),
    (["verify"], "verify needs --reward-model and --prompt"),
    (["verify", *POLICY, *REWARD_MODEL, "--prompt", "hi"], "verify needs --threshold"),
    (
        ["verify", *POLICY, *REWARD_MODEL, "--prompt", "hi", "--threshold", "0"]
        + ["--max-attempts", "0"],
        "--max-attempts must be at least 1, got 0.",
    ),
    (["best-of-n"], "best-of-n needs --reward-model and --prompts and --output"),
    (
        ["best-of-n", *POLICY, *REWARD_MODEL, "--prompts", "{prompts}", "--n", "1"]
        + ["--output", "{out}"],
        "--n must be at least 2",
    ),
    (
        ["best-of-n", *POLICY, *REWARD_MODEL, "--prompts", "{empty}", "--output", "{out}"],
        "{empty}: no rows; the file is empty.",
    ),
    (
        ["best-of-n", "--policy", "/nonexistent/policy", *REWARD_MODEL]
        + ["--prompts", "{prompts}", "--output", "{out}"],
        "/nonexistent/policy: no such file or folder.",
    ),
    (
        ["best-of-n", *POLICY, *REWARD_MODEL, "--prompts", "{prompts}", "--output", "{folder}"],
        "is a folder",
    ),
    (["polar-data"], "polar-data needs --pool and --prompts and --output"),
    (
        ["polar-data", "--pool", "{hot_pool}", "--prompts", "{prompts}", "--output", "{out}"],
        "policy 1: 'temperature': input should be a valid number",
    ),
    (
        ["polar-data", "--pool", "{pool}", "--prompts", "{empty}", "--output", "{out}"],
        "{empty}: no rows; the file is empty.",
    ),
    (
        ["polar-data", "--pool", "{missing}", "--prompts", "{prompts}", "--output", "{out}"],
        "{missing}: no such file",
    ),
    (["sft", "--output", "{out}"], "sft needs --data FILE."),
    (["sft", "--data", "{answers}", "--lr", "-1", "--output", "{out}"], "--lr must be above 0"),
    (["sft", "--data", "{empty}", "--model", "{policy}", "--output", "{out}"], "no rows"),
    (["sft", "--data", "{answers}", "--model", "minilm", "--output", "{out}"], "bundled backbone"),
    (["dpo", "--output", "{out}"], "dpo needs --data FILE."),
    (["dpo", "--data", "{pairs}", "--beta", "0", "--output", "{out}"], "--beta must be above 0"),
    (["dpo", "--config", "nope.yaml", "--output", "{out}"], "nope.yaml: no such file."),
    (["rlhf", "--output", "{out}"], "rlhf needs --reward-model DIR and --prompts FILE."),
    (
        ["rlhf", *REWARD_MODEL, "--prompts", "{prompts}", *POLICY, "--generations", "1"]
        + ["--output", "{out}"],
        "--generations must be at least 2",
    ),
    (
        ["rlhf", *REWARD_MODEL, "--prompts", "{empty}", *POLICY, "--output", "{out}"],
        "{empty}: no rows; the file is empty.",
    ),
    (
        ["rlhf", *REWARD_MODEL, "--prompts", "{prompts}", "--policy", "/nonexistent/policy"]
        + ["--output", "{out}"],
        "/nonexistent/policy: no such file or folder.",
    ),
    (
        ["score", "--engine", "ray", *RM, "--input", "{rows}", "--output", "{out}"]
        + ["--ray-address", "127.0.0.1:1"],
        "--ray-address 127.0.0.1:1: nothing listens there.",
    ),
    (["export"], "export needs --model"),
    (["export", "--model", "{missing}"], "writes into a model folder on this machine"),
    (["serve"], "serve needs --model DIR"),
    (["serve", *RM, "--port", "99999"], "--port must be between 1 and 65535"),
    (["serve", *RM, "--host", "0.0.0.0"], "lets other machines call the server"),
    (["serve", "--model", "{missing}"], "no such model directory"),
]


@pytest.fixture
def places(tiny_reward_model_dir, tiny_plain_llama_dir, tmp_path) -> dict[str, Path]:
    """The files and folders the command lines name."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("lr: [1\n")
    policy = f"  model: {tiny_plain_llama_dir}\n"
    pool = tmp_path / "pool.yaml"
    pool.write_text(f"- name: plain\n{policy}- name: again\n{policy}")
    hot_pool = tmp_path / "hot.yaml"
    hot_pool.write_text(f"- name: plain\n{policy}  temperature: hot\n- name: again\n{policy}")
    bad_row = tmp_path / "bad.jsonl"
    bad_row.write_text('{"prompt": "p"}\n')
    return {
        "rm": tiny_reward_model_dir,
        "policy": tiny_plain_llama_dir,
        "missing": tmp_path / "missing.jsonl",
        "empty": empty,
        "folder": folder,
        "file": a_file,
        "out": tmp_path / "out",
        "bad_yaml": bad_yaml,
        "pool": pool,
        "hot_pool": hot_pool,
        "bad_row": bad_row,
        "pairs": write_jsonl(tmp_path / "pairs.jsonl", [{"chosen": "a", "rejected": "b"}]),
        "rows": write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "p", "response": "r"}]),
        "prompts": write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "p"}]),
        "answers": write_jsonl(tmp_path / "answers.jsonl", [{"prompt": "p", "answer": "a"}]),
    }


@pytest.fixture
def no_model_loads(monkeypatch) -> list[str]:
    """Loading a model records it and fails: a refusal must come before anything slow."""
    import transformers

    loaded: list[str] = []

    def refuse(cls, name, *args, **kwargs):
        loaded.append(f"{cls.__name__} from {name}")
        raise AssertionError(f"a model was loaded before the refusal: {name}")

    monkeypatch.setattr(transformers.PreTrainedModel, "from_pretrained", classmethod(refuse))
    return loaded


@pytest.mark.parametrize(
    ("command", "message"),
    MISTAKES,
    ids=[f"{command[0]}-{index}" for index, (command, _) in enumerate(MISTAKES)],
)
def test_a_mistake_is_one_line_and_exit_2_before_anything_loads(
    command, message, places, no_model_loads, monkeypatch, capsys, tmp_path
):
    """Through `main()`, as the `rewardforge` command runs, so Click's usage errors count too."""
    monkeypatch.setenv("REWARDFORGE_CACHE", str(tmp_path / "cache"))  # where a crash report goes
    monkeypatch.setattr(os, "environ", dict(os.environ))  # main() sets the command's defaults
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["rewardforge", *[part.format(**places) for part in command]])
    with pytest.raises(SystemExit) as ended:
        main()
    out, err = capsys.readouterr()
    assert no_model_loads == []
    assert ended.value.code == 2, out + err
    first, *rows = err.strip().splitlines()  # a bad row's error lists the rows, indented
    assert first.startswith("error: ") and all(row.startswith("  ") for row in rows), out + err
    assert message.format(**places) in err
    assert "Traceback" not in out + err
    assert not (tmp_path / "cache" / "crash-reports").exists()
    assert not places["out"].exists()
    assert sorted(p.name for p in places["folder"].iterdir()) == ["notes.txt"]
