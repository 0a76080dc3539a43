"""Scoring on Ray (a local Ray of 2 CPUs, started here): the rows `score` gives, row for row, with
stable ids; bad rows named by file and line without losing the others; a killed job resumed
shard by shard; a PRM's step rewards; `score_dataset` on a Ray Dataset."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardforge import RewardModel
from rewardforge.cli import app
from rewardforge.scoring.score import score_file
from tests.conftest import free_port

ray = pytest.importorskip("ray")

QUESTIONS = ["How do I boil an egg?", "What is 2 + 2?", "你好", "Name a colour."]
ANSWERS = ["Eight minutes.", "Put it in water.", "4.", "Blue.", "你好！", "Red, maybe."]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def corpus(tmp_path) -> Path:
    """Two JSONL files: 10 rows, then 5 rows with a blank line and a row that is not JSON."""
    folder = tmp_path / "corpus"
    (folder / "part").mkdir(parents=True)
    rows = [{"prompt": QUESTIONS[i % 4], "response": ANSWERS[i % 6], "id": i} for i in range(10)]
    (folder / "a.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    more = [json.dumps({"prompt": QUESTIONS[0], "response": answer}) for answer in ANSWERS[:3]]
    (folder / "part" / "b.jsonl").write_text(
        more[0] + "\n\n" + more[1] + "\n{not json\n" + more[2] + "\n"
    )
    return folder


def distinct_prefixes(sequences: list[list[int]]) -> int:
    return len({tuple(ids[: end + 1]) for ids in sequences for end in range(len(ids))})


def tokens_with_prompts_shared(model: RewardModel, shards: list[list[dict]]) -> tuple[int, int]:
    """(tokens in the rows, tokens fed when each shard reads each of its prompts once): the
    distinct prefixes of the answers to each prompt of each shard."""
    in_rows = fed = 0
    for rows in shards:
        by_prompt: dict[str, list[list[int]]] = {}
        for row in rows:
            ids = model.encoder.encode(row["prompt"], row["response"]).input_ids
            by_prompt.setdefault(row["prompt"], []).append(ids)
            in_rows += len(ids)
        fed += sum(distinct_prefixes(group) for group in by_prompt.values())
    return in_rows, fed


def run_score(model: Path, source: Path, output: Path, *extra: str):
    return CliRunner().invoke(
        app,
        ["score", "--engine", "ray", "--model", str(model), "--input", str(source)]
        + ["--output", str(output), "--shard-rows", "3", *extra],
    )


def shard_lines(corpus: Path, size: int) -> list[list[str]]:
    """The JSON rows of each shard of `size` lines, file by file, blank and broken lines out."""
    shards = []
    for path in sorted(corpus.rglob("*.jsonl")):
        lines = path.read_text().splitlines()
        for first in range(0, len(lines), size):
            chunk = [line for line in lines[first : first + size] if line.startswith('{"')]
            shards.append(chunk)
    return [chunk for chunk in shards if chunk]


def read_folder(folder: Path, pattern: str) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(folder.glob(pattern))
        for line in path.read_text().splitlines()
    ]


def test_ray_gives_the_rows_score_gives_and_resumes_a_killed_job(
    tiny_reward_model_dir, corpus, tmp_path
):
    """One local Ray run (each actor process imports torch and loads the model, so the runs are
    few): the rows and rejects, then a rerun after a shard is lost."""
    output = tmp_path / "scored"
    result = run_score(tiny_reward_model_dir, corpus, output, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "6 shards: 0 already written, 13 rows scored, 1 rejected" in result.output
    rows = read_folder(output, "*[0-9].jsonl")
    by_id = {row["row_id"]: row for row in rows}
    assert len(by_id) == len(rows) == 13
    for name in ("a.jsonl", "part/b.jsonl"):
        alone = tmp_path / f"{name.replace('/', '_')}.scored"
        score_file(tiny_reward_model_dir, corpus / name, alone, skip_invalid=True, progress=False)
        expected = [json.loads(line) for line in alone.read_text().splitlines()]
        lines = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] if name == "a.jsonl" else [1, 3, 5]
        for line, row in zip(lines, expected, strict=True):
            got = by_id[f"{corpus / name}:{line}"]
            assert got["reward"] == pytest.approx(row["reward"], abs=1e-6)
            assert {k: v for k, v in got.items() if k not in ("reward", "row_id")} == {
                k: v for k, v in row.items() if k != "reward"
            }
    (reject,) = read_folder(output, "*.rejects.jsonl")
    assert reject["row_id"] == f"{corpus / 'part' / 'b.jsonl'}:4"
    assert reject["line"] == 4 and "invalid JSON" in reject["error"]
    # Inside a shard, the answers to one prompt share it (b.jsonl's first shard: two answers).
    model = RewardModel.load(tiny_reward_model_dir)
    shards = [[json.loads(line) for line in lines] for lines in shard_lines(corpus, 3)]
    in_rows, fed = tokens_with_prompts_shared(model, shards)
    assert f"fed {fed:,} of the rows' {in_rows:,} tokens" in result.output
    assert fed < in_rows

    shards = sorted(output.glob("*[0-9].jsonl"))
    untouched = {path: path.stat().st_mtime_ns for path in shards[1:]}
    shards[0].unlink()  # as if the job died before writing it
    result = run_score(tiny_reward_model_dir, corpus, output)
    assert result.exit_code == 0, result.output
    assert "6 shards: 5 already written, 3 rows scored, 0 rejected" in result.output
    assert shards[0].exists()
    assert {path: path.stat().st_mtime_ns for path in shards[1:]} == untouched


def test_score_dataset_adds_rewards_and_names_bad_rows(tiny_reward_model_dir):
    from rewardforge.scoring.ray_dataset import score_dataset

    rows = [{"prompt": q, "response": a} for q, a in zip(QUESTIONS, ANSWERS)]
    rows.append({"prompt": "no response here"})
    dataset = ray.data.from_items(rows)
    scored = score_dataset(dataset, tiny_reward_model_dir, batch_size=2).take_all()
    expected = RewardModel.load(tiny_reward_model_dir).score(QUESTIONS, ANSWERS[:4])
    assert [row["reward"] for row in scored[:4]] == pytest.approx(expected, abs=1e-6)
    assert scored[4]["reward"] is None and "missing key 'response'" in scored[4]["error"]
    assert all(row["error"] is None for row in scored[:4])


def test_without_ray_the_engine_says_how_to_install_it(tiny_reward_model_dir, corpus, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    result = run_score(tiny_reward_model_dir, corpus, corpus.parent / "out")
    assert result.exit_code == 2
    assert "--engine ray needs Ray Data: pip install 'rewardforge[ray]'" in result.output


def test_parquet_in_and_out(tiny_reward_model_dir, tmp_path):
    """A Parquet file's row groups are its shards; the scored shards are Parquet too."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": q, "response": a} for q, a in zip(QUESTIONS * 2, ANSWERS + ANSWERS[:2])]
    source = tmp_path / "corpus.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source, row_group_size=3)
    output = tmp_path / "scored"
    result = run_score(tiny_reward_model_dir, source, output, "--output-format", "parquet")
    assert result.exit_code == 0, result.output
    assert "3 shards: 0 already written, 8 rows scored, 0 rejected" in result.output
    scored = sorted(
        (row for path in output.glob("*.parquet") for row in pq.read_table(path).to_pylist()),
        key=lambda row: int(row["row_id"].rsplit(":", 1)[1]),
    )
    expected = RewardModel.load(tiny_reward_model_dir).score(
        [row["prompt"] for row in rows], [row["response"] for row in rows]
    )
    assert [row["row_id"] for row in scored] == [f"{source}:{n}" for n in range(1, 9)]
    assert [row["reward"] for row in scored] == pytest.approx(expected, abs=1e-6)


def test_a_prm_gives_step_rewards_on_ray(tiny_prm_dir, tmp_path):
    """A process reward model's rows on Ray: `step_rewards` and the reward as `score` writes
    them, for solutions given as steps and as one response cut at the separator."""
    rows = [
        {"prompt": "3 + 4 = ?", "completions": ["3 + 4 = 7.", "The answer is 7."]},
        {"prompt": "3 + 4 = ?", "completions": ["3 + 4 = 8.", "The answer is 8."]},
        {"prompt": "2 * 5 = ?", "response": "2 * 5 = 10.\n\nThe answer is 10."},
        {"prompt": "2 * 5 = ?", "completions": ["2 * 5 = 10."]},
    ]
    source = tmp_path / "steps.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "scored"
    result = run_score(tiny_prm_dir, source, output)
    assert result.exit_code == 0, result.output
    assert "2 shards: 0 already written, 4 rows scored, 0 rejected" in result.output
    alone = tmp_path / "alone.jsonl"
    score_file(tiny_prm_dir, source, alone, progress=False)
    expected = [json.loads(line) for line in alone.read_text().splitlines()]
    got = sorted(read_folder(output, "*[0-9].jsonl"), key=lambda row: row["row_id"])
    assert [row["row_id"] for row in got] == [f"{source}:{n}" for n in range(1, 5)]
    for row, want in zip(got, expected, strict=True):
        assert len(row["step_rewards"]) == len(want["step_rewards"]) > 0
        assert row["step_rewards"] == pytest.approx(want["step_rewards"], abs=1e-6)
        assert row["reward"] == pytest.approx(min(want["step_rewards"]), abs=1e-6)
    assert [len(row["step_rewards"]) for row in got] == [2, 2, 2, 1]


@pytest.fixture(scope="module")
def ray_temp_folder():
    """Ray's temporary folder for the cluster tests: Ray notes there the cluster `ray start`
    made, which must not outlive the test (a later plain `ray.init()` would look for it).
    Short, as Ray's socket paths must be."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="rf-ray-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cluster_environment(ray_temp_folder):
    def environment() -> dict[str, str]:
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
        env["RAY_TMPDIR"] = ray_temp_folder
        env.pop("RAY_ADDRESS", None)
        return env

    return environment


@pytest.fixture
def ray_cluster(tmp_path, cluster_environment):
    """A Ray cluster started as a user starts one (`ray start --head`), in its own folder and
    process group, stopped with that group; yields its address."""
    port = free_port()
    head_folder = tmp_path / "head"
    head_folder.mkdir()
    env = cluster_environment()
    ray_command = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [str(ray_command), "start", "--head", f"--port={port}", "--num-cpus=2"]
        + ["--include-dashboard=false", "--disable-usage-stats", "--block"],
        cwd=head_folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def test_a_cluster_address_with_paths_relative_to_this_folder(
    ray_cluster, cluster_environment, tiny_reward_model_dir, corpus, tmp_path
):
    """`--ray-address` joins a running cluster whose workers run in another folder: the model,
    input and output given relative to the caller's folder still resolve, and the rows are the
    rows `score` gives."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(tiny_reward_model_dir, work / "rm")
    shutil.copytree(corpus, work / "corpus")
    result = subprocess.run(
        [sys.executable, "-m", "rewardforge.cli", "score", "--engine", "ray"]
        + ["--ray-address", ray_cluster, "--model", "rm", "--input", "corpus/a.jsonl"]
        + ["--output", "scored", "--shard-rows", "4", "--workers", "2"],
        cwd=work,
        env=cluster_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 shards: 0 already written, 10 rows scored, 0 rejected" in result.stdout
    rows = sorted(read_folder(work / "scored", "*.jsonl"), key=lambda r: int(r["id"]))
    assert [row["row_id"] for row in rows] == [f"corpus/a.jsonl:{n}" for n in range(1, 11)]
    expected = RewardModel.load(tiny_reward_model_dir).score(
        [row["prompt"] for row in rows], [row["response"] for row in rows]
    )
    assert [row["reward"] for row in rows] == pytest.approx(expected, abs=1e-6)


def test_an_address_where_no_cluster_answers_is_one_line(
    cluster_environment, tiny_reward_model_dir, corpus
):
    result = subprocess.run(
        [sys.executable, "-m", "rewardforge.cli", "score", "--engine", "ray"]
        + ["--ray-address", f"127.0.0.1:{free_port()}", "--model", str(tiny_reward_model_dir)]
        + ["--input", str(corpus), "--output", str(corpus.parent / "out")],
        env=cluster_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "nothing listens there" in error[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (corpus.parent / "out").exists()
