import json

import pytest

from rewardforge.data import load_preferences
from rewardforge.errors import UserError
from rewardforge.generation.polar_data import (
    PoolPolicy,
    discrimination_pairs,
    polar_data,
    read_pool,
)
from tests.conftest import write_jsonl


def test_pairs_set_a_policy_own_answer_against_every_other_policy():
    answers = {"terse": ["T1", "T2"], "chatty": ["C1", "C2"], "cheerful": ["H1", "H2"]}
    rows = discrimination_pairs("Q?", answers)
    assert len(rows) == 6
    assert {"prompt": "Q?", "reference": "T1", "chosen": "T2", "rejected": "C1"} | {
        "category": "terse vs chatty"
    } in rows
    assert all(row["reference"][0] == row["chosen"][0] != row["rejected"][0] for row in rows)


def test_pairs_skip_empty_and_identical_answers():
    assert discrimination_pairs("Q?", {"a": ["A1", ""], "b": ["B1", "B2"]}) == [
        {"prompt": "Q?", "reference": "B1", "chosen": "B2", "rejected": "A1", "category": "b vs a"}
    ]
    assert discrimination_pairs("Q?", {"a": ["A1", "X"], "b": ["X", "B2"]})[0]["chosen"] == "B2"


@pytest.fixture
def pool(tiny_llama_dir):
    return [
        PoolPolicy("terse", str(tiny_llama_dir), system="Be brief.", max_new_tokens=6),
        PoolPolicy("warm", str(tiny_llama_dir), temperature=1.2, max_new_tokens=6),
    ]


def test_polar_data_writes_split_pairs_and_resumes(pool, tmp_path):
    prompts = write_jsonl(
        tmp_path / "prompts.jsonl",
        [{"prompt": f"Question {i}?"} for i in range(9)] + [{"prompt": "你好？"}],
    )
    report = polar_data(pool, prompts, tmp_path / "out", heldout_fraction=0.2, progress=False)
    assert (report.prompts, report.answers_generated, report.answers_reused) == (10, 20, 0)
    answers = (tmp_path / "out" / "answers.jsonl").read_text("utf-8").splitlines()
    assert len(answers) == 20 and all(len(json.loads(line)["answers"]) == 2 for line in answers)
    train_rows = load_preferences(tmp_path / "out" / "train.jsonl", reference_mode=True)
    heldout_rows = load_preferences(tmp_path / "out" / "heldout.jsonl", reference_mode=True)
    train_prompts = {example.prompt for example in train_rows.examples}
    heldout_prompts = {example.prompt for example in heldout_rows.examples}
    assert len(heldout_prompts) == 2 and not train_prompts & heldout_prompts
    assert report.train_pairs + report.heldout_pairs == len(train_rows.examples) + len(
        heldout_rows.examples
    )

    # A crash cut the last line; the rerun regenerates only that answer set.
    text = (tmp_path / "out" / "answers.jsonl").read_text("utf-8")
    (tmp_path / "out" / "answers.jsonl").write_text(text[:-20], "utf-8")
    again = polar_data(pool, prompts, tmp_path / "out", heldout_fraction=0.2, progress=False)
    assert (again.answers_generated, again.answers_reused) == (1, 19)
    # Other settings for a policy mean other answers: nothing of it is reused.
    changed = [pool[0], PoolPolicy("warm", pool[1].model, temperature=0.5, max_new_tokens=6)]
    third = polar_data(changed, prompts, tmp_path / "out", progress=False)
    assert (third.answers_generated, third.answers_reused) == (10, 10)
    # So do other answers per policy, and another seed: nothing is reused, nothing mixed.
    more = polar_data(pool, prompts, tmp_path / "out", answers_per_policy=3, progress=False)
    assert (more.answers_generated, more.answers_reused) == (20, 0)
    reseeded = polar_data(pool, prompts, tmp_path / "out", seed=7, progress=False)
    assert (reseeded.answers_generated, reseeded.answers_reused) == (20, 0)
    again = polar_data(pool, prompts, tmp_path / "out", answers_per_policy=3, progress=False)
    assert (again.answers_generated, again.answers_reused) == (0, 20)
    rows = [json.loads(line) for line in (tmp_path / "out" / "answers.jsonl").open("rb")]
    assert {len(row["answers"]) for row in rows if row["answers_per_policy"] == 3} == {3}


def test_pool_file_errors_name_the_problem(tmp_path):
    path = tmp_path / "pool.yaml"
    path.write_text("- name: a\n  model: smollm2-135m\n  temprature: 0.5\n", "utf-8")
    with pytest.raises(UserError, match="policy 1 has unknown key"):
        read_pool(path)
    path.write_text("- name: a\n- name: b\n  system: 简短回答。\n", "utf-8")
    assert [policy.system for policy in read_pool(path)] == [None, "简短回答。"]
    with pytest.raises(UserError, match="two or more policies"):
        polar_data([PoolPolicy("a")], path, tmp_path / "out")
