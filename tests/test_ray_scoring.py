"""Scoring on Ray (a local Ray of 2 CPUs, started here): the rows `score` gives, row for row, with
stable ids; bad rows named by file and line without losing the others; a killed job resumed
shard by shard; a PRM's step rewards; `score_dataset` on a Ray Dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardforge import RewardModel
from rewardforge.cli import app
from rewardforge.scoring.score import score_file

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


def run_score(model: Path, source: Path, output: Path, *extra: str):
    return CliRunner().invoke(
        app,
        ["score", "--engine", "ray", "--model", str(model), "--input", str(source)]
        + ["--output", str(output), "--shard-rows", "3", *extra],
    )


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

    shards = sorted(output.glob("*[0-9].jsonl"))
    untouched = {path: path.stat().st_mtime_ns for path in shards[1:]}
    shards[0].unlink()  # as if the job died before writing it
    result = run_score(tiny_reward_model_dir, corpus, output)
    assert result.exit_code == 0, result.output
    assert "6 shards: 5 already written, 3 rows scored, 0 rejected" in result.output
    assert shards[0].exists()
    assert {path: path.stat().st_mtime_ns for path in shards[1:]} == untouched


def test_score_dataset_adds_rewards_and_names_bad_rows(tiny_reward_model_dir):
    from rewardforge.scoring.ray_scoring import score_dataset

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
