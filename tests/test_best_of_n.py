import json

import pytest

from rewardforge import RewardModel, load_preferences
from rewardforge.data import DataError
from rewardforge.generation.best_of_n import best_of_n
from rewardforge.models.policy import Policy, SamplingSettings

SAMPLING = SamplingSettings(max_new_tokens=12, temperature=1.0, top_p=1.0)


def write_prompts(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def models(tiny_llama_dir, tiny_reward_model_dir):
    return Policy.load(str(tiny_llama_dir)), RewardModel.load(tiny_reward_model_dir)


def test_keeps_the_top_k_and_writes_loadable_pairs(models, tmp_path):
    policy, judge = models
    prompts = write_prompts(
        tmp_path / "p.jsonl",
        [
            {"prompt": "How do I bake bread?"},
            {"messages": [{"role": "user", "content": "你好"}]},
        ],
    )
    report = best_of_n(
        policy,
        judge,
        prompts,
        tmp_path / "sft.jsonl",
        n=4,
        top_k=2,
        pairs_output_path=tmp_path / "pairs.jsonl",
        sampling=SAMPLING,
        progress=False,
    )
    assert (report.prompts_done, report.prompts_skipped, report.sft_rows) == (2, 0, 4)
    sft = read(tmp_path / "sft.jsonl")
    assert [row["rank"] for row in sft] == [1, 2, 1, 2]
    for first, second in (sft[0:2], sft[2:4]):
        assert first["reward"] >= second["reward"]
    rescored = judge.score([row["prompt"] for row in sft], [row["response"] for row in sft])
    assert [row["reward"] for row in sft] == pytest.approx(rescored, abs=1e-5)
    pairs = read(tmp_path / "pairs.jsonl")
    # Four sampled answers differ (seeded sampling), so each prompt gives one best/worst pair.
    assert len(pairs) == report.pair_rows == 2
    assert all(pair["chosen_reward"] > pair["rejected_reward"] for pair in pairs)
    loaded = load_preferences(tmp_path / "pairs.jsonl").examples
    assert [example.responses for example in loaded] == [
        (pair["chosen"], pair["rejected"]) for pair in pairs
    ]


def test_a_second_run_resumes_after_the_prompts_already_done(models, tmp_path):
    policy, judge = models
    rows = [{"prompt": "one"}, {"prompt": "two"}]
    prompts = write_prompts(tmp_path / "p.jsonl", rows)
    best_of_n(
        policy, judge, prompts, tmp_path / "sft.jsonl", n=2, sampling=SAMPLING, progress=False
    )
    write_prompts(prompts, [*rows, {"prompt": "three"}])
    report = best_of_n(
        policy, judge, prompts, tmp_path / "sft.jsonl", n=2, sampling=SAMPLING, progress=False
    )
    assert (report.prompts_done, report.prompts_skipped) == (1, 2)
    assert [row["prompt"] for row in read(tmp_path / "sft.jsonl")] == ["one", "two", "three"]


def test_bad_prompt_rows_and_settings(models, tmp_path):
    policy, judge = models
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": "ok"}, {"question": "no"}])
    with pytest.raises(DataError, match="p.jsonl: line 2: a prompt row needs"):
        best_of_n(policy, judge, prompts, tmp_path / "sft.jsonl", sampling=SAMPLING)
    with pytest.raises(ValueError, match="--top-k"):
        best_of_n(policy, judge, prompts, tmp_path / "sft.jsonl", n=2, top_k=3)


def test_a_crash_between_pair_and_sft_rows_does_not_repeat_the_pair(models, tmp_path):
    policy, judge = models
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": "one"}, {"prompt": "two"}])
    run = dict(n=3, pairs_output_path=tmp_path / "pairs.jsonl", sampling=SAMPLING, progress=False)
    best_of_n(policy, judge, prompts, tmp_path / "sft.jsonl", **run)
    pairs_before = read(tmp_path / "pairs.jsonl")
    assert [pair["prompt"] for pair in pairs_before] == ["one", "two"]
    # The crash: "two" had its pair written, then died before its SFT rows; the last SFT line
    # of "one" was also cut mid-write.
    sft_rows = (tmp_path / "sft.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [row for row in sft_rows if json.loads(row)["prompt"] == "one"]
    (tmp_path / "sft.jsonl").write_text("".join(kept) + '{"prompt": "tw', encoding="utf-8")

    report = best_of_n(policy, judge, prompts, tmp_path / "sft.jsonl", **run)
    assert (report.prompts_done, report.prompts_skipped) == (1, 1)
    assert [row["prompt"] for row in read(tmp_path / "sft.jsonl")] == ["one", "two"]
    assert read(tmp_path / "pairs.jsonl") == pairs_before  # "two" paired once, not twice
