"""Two CPU processes (DDP over gloo) against one: the same step, the same evaluation, and one
process's divergence stopping both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.conftest import launch_processes, sample_rows, write_jsonl

SCRIPT = Path(__file__).resolve().parent / "launched_training.py"


def launched_train(record: Path, processes: int, flags: str, options: str = "", timeout=600):
    record.mkdir()
    launch = ("--multi_gpu " if processes > 1 else "") + "--dynamo_backend no"
    program = f"{SCRIPT} {record} {options} -- train {flags}"
    return launch_processes(launch, program, processes, timeout=timeout)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("distributed-data")
    train = write_jsonl(root / "train.jsonl", sample_rows("train", 16))
    return train, write_jsonl(root / "dev.jsonl", sample_rows("dev", 10))


def in_one_and_two_processes(root: Path, flags: str) -> dict[int, Path]:
    """The same one-step run in 1 and 2 processes; `flags` names its output `{record}/...`."""
    records = {}
    for processes in (1, 2):
        record = root / f"processes{processes}"
        done = launched_train(record, processes, flags.format(record=record))
        assert done.returncode == 0, done.stderr[-3000:]
        records[processes] = record
    return records


@pytest.fixture(scope="module")
def one_and_two_processes(tiny_llama_dir, data, tmp_path_factory) -> dict[int, Path]:
    """The same one-step run (global batch 8, evaluation on 10 groups) in 1 and 2 processes."""
    flags = (
        f"--data {data[0]} --eval-data {data[1]} --model {tiny_llama_dir} "
        "--output {record}/rm --batch-pairs 8 --max-steps 1 --max-length 64 --logging-steps 1"
    )
    return in_one_and_two_processes(tmp_path_factory.mktemp("distributed"), flags)


def first_logged_loss(output: Path) -> float:
    records = [json.loads(line) for line in (output / "log.jsonl").open()]
    return next(record["loss"] for record in records if "loss" in record)


def assert_the_same_first_step(one: Path, two: Path, output: str) -> None:
    """The first logged loss and the first step's gradients (after DDP's all-reduce) of the
    run in two processes equal those of the run in one."""
    assert first_logged_loss(two / output) == pytest.approx(
        first_logged_loss(one / output), abs=1e-5
    )
    alone = load_file(one / "first_step_gradients.safetensors")
    together = load_file(two / "first_step_gradients.safetensors")
    assert alone.keys() == together.keys() and len(alone) > 10
    for name, gradient in alone.items():
        assert gradient.abs().sum() > 0 or "embed" in name
        difference = (together[name] - gradient).abs().max().item()
        assert difference < 1e-5, f"{name}: {difference}"


def test_two_processes_take_the_same_first_step_as_one(one_and_two_processes):
    assert_the_same_first_step(one_and_two_processes[1], one_and_two_processes[2], "rm")


def test_each_process_scores_its_share_of_the_eval_set_and_the_metrics_match(
    one_and_two_processes,
):
    one, two = one_and_two_processes[1], one_and_two_processes[2]
    assert (one / "scored_by_rank0.txt").read_text().split() == ["10"]
    assert (two / "scored_by_rank0.txt").read_text().split() == ["5"]
    assert (two / "scored_by_rank1.txt").read_text().split() == ["5"]
    alone = json.loads((one / "rm" / "metrics.json").read_text())
    together = json.loads((two / "rm" / "metrics.json").read_text())
    assert together["eval_n_pairs"] == alone["eval_n_pairs"] == 10
    for key in ("eval_accuracy", "eval_loss", "eval_mean_margin"):
        assert together[key] == pytest.approx(alone[key], abs=1e-4), key


def test_a_nan_on_one_process_stops_both_without_a_hang(tiny_llama_dir, data, tmp_path):
    flags = (
        f"--data {data[0]} --model {tiny_llama_dir} --output {tmp_path / 'rm'} "
        "--batch-pairs 8 --max-steps 3 --max-length 64"
    )
    # A hang (one process waiting in an all-reduce) would run into the timeout and fail here.
    done = launched_train(tmp_path / "record", 2, flags, options="nan-on-rank-1", timeout=300)
    assert done.returncode == 1  # accelerate's launcher, after a process exited 2
    # The first process saw only finite rewards and still stopped, at the same step.
    assert "At step 1 another process's reward or loss became non-finite" in done.stderr
    assert "Traceback" not in done.stderr.split("became non-finite")[0]
    assert "At step 1 the reward became non-finite" in done.stderr  # the second process
    assert not (tmp_path / "rm" / "model.safetensors").exists()


@pytest.fixture(scope="module")
def prm_one_and_two_processes(tiny_llama_dir, tmp_path_factory) -> dict[int, Path]:
    """A process reward model's one-step run (16 solutions a step, evaluation on 10) in 1 and
    2 processes."""
    from rewardforge.data.sample import prm_sample_paths

    root = tmp_path_factory.mktemp("distributed-prm")
    train_rows, _, processbench = prm_sample_paths()
    train = root / "train.jsonl"
    train.write_text("".join(Path(train_rows).read_text().splitlines(True)[:32]))
    dev = root / "dev.jsonl"
    dev.write_text("".join(Path(processbench).read_text().splitlines(True)[:10]))
    flags = (
        f"--data {train} --eval-data {dev} --model {tiny_llama_dir} --kind prm "
        "--output {record}/prm --batch-pairs 8 --max-steps 1 --max-length 256 --logging-steps 1"
    )
    return in_one_and_two_processes(root, flags)


def test_the_step_trainer_takes_the_same_first_step_in_two_processes(prm_one_and_two_processes):
    """Per-step BCE over the whole batch, not averaged per process: the ranks' shares hold
    different numbers of steps."""
    one, two = prm_one_and_two_processes[1], prm_one_and_two_processes[2]
    assert_the_same_first_step(one, two, "prm")
    metrics_one = json.loads((one / "prm" / "metrics.json").read_text())
    metrics_two = json.loads((two / "prm" / "metrics.json").read_text())
    assert metrics_two["eval_n_solutions"] == metrics_one["eval_n_solutions"] == 10
    for key in ("eval_step_accuracy", "eval_processbench_error_acc", "eval_processbench_f1"):
        assert metrics_two[key] == pytest.approx(metrics_one[key], abs=1e-4), key
