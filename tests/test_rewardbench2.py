"""RewardBench 2 in `eval`, checked against the `rewardbench` package's own scoring functions.

rewardbench 0.1.4 is installed without its dependencies (setup.sh): it pins transformers 4.51
and imports fastchat and its model zoo at import time, none of which its scoring needs. The
oracle loads `rewardbench/utils.py` from the installed wheel with import-only stand-ins for
those two modules, and scores the way RewardBench's `scripts/run_v2.py` does: reroll the
unrolled answers into rows, take each subset's mean result, and `process_single_model` for Ties.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import random
import re
import sys
import types

import pytest
from typer.testing import CliRunner

from rewardforge import RewardModel
from rewardforge.cli import app
from rewardforge.data import DataError
from rewardforge.data.benchmark_rows import read_rewardbench2
from rewardforge.errors import UserError
from rewardforge.evaluation.rewardbench2 import evaluate_rewardbench2, rewardbench2_scores
from tests.conftest import write_jsonl

PLAIN_SUBSETS = ("Factuality", "Precise IF", "Math", "Safety", "Focus")
WORDS = ("yes", "no", "the", "answer", "is", "seven", "maybe", "cats", "so", "because", "好")


@pytest.fixture(scope="module")
def rewardbench_utils():
    """`rewardbench.utils` from the installed 0.1.4 wheel (stand-ins only for its imports)."""
    dist = importlib.metadata.distribution("rewardbench")
    assert dist.version == "0.1.4"
    fastchat = types.ModuleType("fastchat")
    conversation = types.ModuleType("fastchat.conversation")
    conversation.Conversation = type("Conversation", (), {})
    package = types.ModuleType("rewardbench")
    package.__path__ = []
    models = types.ModuleType("rewardbench.models")
    models.REWARD_MODEL_CONFIG = {}
    stand_ins = {
        "fastchat": fastchat,
        "fastchat.conversation": conversation,
        "rewardbench": package,
        "rewardbench.models": models,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, module in stand_ins.items():
            patch.setitem(sys.modules, name, module)
        path = dist.locate_file("rewardbench/utils.py")
        spec = importlib.util.spec_from_file_location("rewardbench_utils_oracle", path)
        utils = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(utils)
    return utils


def benchmark_rows(seed: int, per_subset: int = 4, ties: int = 3) -> list[dict]:
    """Rows in RewardBench 2's schema: one correct answer and three wrong ones outside Ties;
    in Ties, `ref:N` prompts with one correct answer and `tied:N` prompts with three."""
    rng = random.Random(seed)

    def answers(count: int) -> list[str]:  # of varied words and lengths, so rewards spread
        return [" ".join(rng.choices(WORDS, k=rng.randint(1, 6))) for _ in range(count)]

    rows = []
    for subset in PLAIN_SUBSETS:
        for n in range(per_subset):
            prompt = f"{subset} question {n}?"
            rows.append(_row(f"{len(rows)}", subset, prompt, answers(1), answers(3)))
    for n in range(ties):
        wrong = answers(rng.randint(2, 4))
        rows.append(_row(f"ref:{n}", "Ties", f"Name a number below {n + 3}.", ["1"], wrong))
        rows.append(_row(f"tied:{n}", "Ties", f"Any number below {n + 3}?", answers(3), wrong))
    return rows


def _row(item_id: str, subset: str, prompt: str, chosen: list, rejected: list) -> dict:
    return {
        "id": item_id,
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "num_correct": len(chosen),
        "num_rejected": len(rejected),
        "total_completions": len(chosen) + len(rejected),
        "models": ["m"] * (len(chosen) + len(rejected)),
        "subset": subset,
    }


def oracle_scores(utils, rows: list[dict], rewards: list[list[float]]) -> dict[str, float]:
    """Each subset's score as RewardBench's run_v2.py computes it from the same rewards."""
    from datasets import Dataset

    unrolled = {"text": [], "scores": [], "subset": [], "id": []}
    for row, group in zip(rows, rewards):
        for text, reward in zip(row["chosen"] + row["rejected"], group):
            unrolled["text"].append(text)
            unrolled["scores"].append(reward)
            unrolled["subset"].append(row["subset"])
            unrolled["id"].append(row["id"])
    totals = [row["total_completions"] for row in rows]
    rerolled = utils.reroll_and_score_dataset(Dataset.from_dict(unrolled), totals)
    rerolled = rerolled.add_column("num_correct", [row["num_correct"] for row in rows])
    scores = {}
    for subset in sorted(set(unrolled["subset"])):
        part = rerolled.filter(lambda example, name=subset: example["subset"] == name)
        if subset.lower() == "ties":
            scores[subset] = float(utils.process_single_model(part)[1])
        else:
            scores[subset] = sum(part["results"]) / len(part)
    return scores


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_subset_scores_equal_rewardbench_own(rewardbench_utils, tmp_path, seed):
    rows = benchmark_rows(seed)
    rng = random.Random(100 + seed)
    # rewards rounded to one decimal, so that answers often tie for the top (1/k) and margins
    # come out equal or zero as well as apart
    rewards = [[round(rng.gauss(0, 1), 1) for _ in range(r["total_completions"])] for r in rows]
    items = read_rewardbench2(write_jsonl(tmp_path / "rb2.jsonl", rows))
    ours = rewardbench2_scores(items, rewards)
    expected = oracle_scores(rewardbench_utils, rows, rewards)
    assert {name: s["score"] for name, s in ours["subsets"].items()} == pytest.approx(expected)
    assert ours["score"] == pytest.approx(sum(expected.values()) / 6)
    assert ours["complete"] and ours["items"] == len(rows)


def test_a_tie_for_the_top_scores_one_over_k(tmp_path):
    rows = [_row("0", "Math", "1+1?", ["2"], ["3", "4", "5"])]
    items = read_rewardbench2(write_jsonl(tmp_path / "rb2.jsonl", rows))
    assert rewardbench2_scores(items, [[1.0, 1.0, 1.0, 0.0]])["subsets"]["Math"]["score"] == 1 / 3
    assert rewardbench2_scores(items, [[0.5, 1.0, 0.0, 0.0]])["subsets"]["Math"]["score"] == 0.0


def test_cli_scores_a_parquet_file_as_downloaded(
    rewardbench_utils, tiny_reward_model_dir, tmp_path
):
    from datasets import Dataset

    rows = benchmark_rows(seed=5, per_subset=2, ties=2)
    rows[0]["prompt"] = "用一句话介绍长城。"
    rows[0]["chosen"] = ["长城是中国古代修建的防御工事。"]
    parquet = tmp_path / "reward-bench-2" / "data" / "test-00000-of-00001.parquet"
    parquet.parent.mkdir(parents=True)
    Dataset.from_list(rows).to_parquet(str(parquet))
    report = tmp_path / "report"
    flags = ["--model", str(tiny_reward_model_dir), "--data", str(parquet)]
    result = CliRunner().invoke(
        app, ["eval", *flags, "--benchmark", "rewardbench2", "--report", str(report), "--json"]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    model = RewardModel.load(tiny_reward_model_dir)
    rewards = [
        model.score([row["prompt"]] * row["total_completions"], row["chosen"] + row["rejected"])
        for row in rows
    ]
    expected = oracle_scores(rewardbench_utils, rows, rewards)
    assert {n: s["score"] for n, s in printed["subsets"].items()} == pytest.approx(expected)
    written = [json.loads(line) for line in (report / "scores.jsonl").read_text().splitlines()]
    assert [record["id"] for record in written] == [row["id"] for row in rows]
    for record, group in zip(written, rewards):
        assert record["rewards"] == pytest.approx(group, abs=1e-5)
    folder = ["--data", str(tmp_path / "reward-bench-2")]  # the folder `hf download` writes
    table = CliRunner().invoke(
        app, ["eval", "--model", str(tiny_reward_model_dir), *folder, "--benchmark", "rewardbench2"]
    )
    assert table.exit_code == 0, table.output
    assert re.search(rf"mean of 6 +{len(rows)} +{100 * printed['score']:.1f}\n", table.output)
    assert "Skywork-Reward-V2-Qwen3-0.6B 61.3" in table.output


def test_a_part_of_the_benchmark_says_it_is_not_comparable(tiny_reward_model_dir, tmp_path):
    rows = [r for r in benchmark_rows(seed=0, per_subset=1) if r["subset"] in ("Math", "Focus")]
    data = write_jsonl(tmp_path / "part.jsonl", rows)
    flags = ["--model", str(tiny_reward_model_dir), "--data", str(data)]
    result = CliRunner().invoke(app, ["eval", *flags, "--benchmark", "rewardbench2"])
    assert result.exit_code == 0, result.output
    assert "mean of 2" in result.output
    assert "not comparable with published scores: Factuality, Precise IF, Safety, Ties" in (
        result.output
    )


def test_a_process_reward_model_is_scored_by_its_aggregate(tiny_prm_dir, tmp_path):
    rows = [_row("0", "Math", "2+2?", ["2+2=4\n\nSo 4."], ["2+2=5\n\nSo 5.", "No idea."])]
    data = write_jsonl(tmp_path / "rb2.jsonl", rows)
    model = RewardModel.load(tiny_prm_dir)
    evaluate_rewardbench2(model, data, progress=False, report_dir=tmp_path / "out")
    record = json.loads((tmp_path / "out" / "scores.jsonl").read_text())
    expected = model.score(["2+2?"] * 3, rows[0]["chosen"] + rows[0]["rejected"])
    assert record["rewards"] == pytest.approx(expected, abs=1e-6)
    assert all(0.0 <= reward <= 1.0 for reward in record["rewards"])  # step probabilities


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"rejected": "a string"}, "'rejected' must be a non-empty list of answers"),
        ({"num_correct": 2}, "'num_correct' is 2 but the row lists 1 answers"),
        ({"subset": "Ties"}, "a Ties row's 'id' must be 'ref:N' or 'tied:N'"),
        ({"subset": "Ties", "id": "tied:4"}, "'tied:4' lists one"),
    ],
)
def test_a_row_off_the_schema_is_named(tmp_path, change, problem):
    rows = [_row("0", "Math", "1+1?", ["2"], ["3"]), {**_row("1", "Math", "q", ["a"], ["b"])}]
    rows[1].update(change)
    data = write_jsonl(tmp_path / "rb2.jsonl", rows)
    with pytest.raises(DataError, match="rows do not fit RewardBench 2's schema") as error:
        read_rewardbench2(data)
    assert f"{data}: line 2: " in str(error.value) and problem in str(error.value)


def test_a_reference_based_model_is_refused(tiny_reference_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "rb2.jsonl", [_row("0", "Math", "1+1?", ["2"], ["3"])])
    with pytest.raises(UserError, match="RewardBench 2 rows carry no reference answers"):
        evaluate_rewardbench2(tiny_reference_model_dir, data)
