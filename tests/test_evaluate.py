import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardforge import RewardModel, evaluate, load_preferences
from rewardforge.data import DataError
from rewardforge.errors import UserError
from rewardforge.evaluation.evaluate import compare
from tests.conftest import write_jsonl

RANKED = [
    {
        "prompt": "写一首关于春天的诗。",
        "responses": ["春风拂面。", "春天来了。", "好。"],
        "category": "zh",
    },
    {"prompt": "Name a prime number.", "responses": ["7", "9", "10"], "category": "math"},
    {"prompt": "Say hi.", "responses": ["Hi there!", "No."], "category": "math"},
]


def test_evaluate_matches_scoring(tiny_reward_model_dir, hh_dev_file):
    model = RewardModel.load(tiny_reward_model_dir)
    metrics = evaluate(model, hh_dev_file, progress=False)
    examples = load_preferences(hh_dev_file).examples
    chosen = model.score([e.prompt for e in examples], [e.chosen for e in examples])
    rejected = model.score([e.prompt for e in examples], [e.rejected for e in examples])
    wins = sum(c > r for c, r in zip(chosen, rejected))
    assert metrics["n_pairs"] == 12 and metrics["accuracy"] == pytest.approx(wins / 12)
    margin = sum(c - r for c, r in zip(chosen, rejected)) / 12
    assert metrics["mean_margin"] == pytest.approx(margin, abs=1e-5)
    assert metrics["formats"] == {str(hh_dev_file): "implicit"}
    low, high = metrics["accuracy_ci95"]
    assert low <= metrics["accuracy"] <= high


def test_report_rewards_equal_a_plain_transformers_forward(tiny_reward_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "ranked.jsonl", RANKED)
    evaluate(tiny_reward_model_dir, data, progress=False, report_dir=tmp_path / "report")
    scores = [json.loads(line) for line in (tmp_path / "report/scores.jsonl").open()]
    model = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_reward_model_dir)
    encoder = RewardModel.load(tiny_reward_model_dir).encoder
    for row, record in zip(RANKED, scores):
        responses = row.get("responses") or [row["chosen"], row["rejected"]]
        for response, reward in zip(responses, record["rewards"]["rm"]):
            text = "".join(encoder.render(row["prompt"], response))
            ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
            with torch.no_grad():
                assert model(**ids).logits[0, 0].item() == pytest.approx(reward, abs=1e-5)


def test_report_files_and_html_show_every_plot(tiny_reward_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "ranked.jsonl", RANKED)
    out = tmp_path / "report"
    metrics = evaluate(tiny_reward_model_dir, data, progress=False, report_dir=out)
    assert metrics["ranking"]["n_groups"] == 2 and set(metrics["categories"]) == {"math", "zh"}
    assert json.loads((out / "metrics.json").read_text())["n_pairs"] == metrics["n_pairs"] == 7
    pngs = {"rewards.png", "reliability.png", "reward_vs_length.png", "training.png"}
    assert {path.name for path in out.glob("*.png")} == pngs
    page = (out / "report.html").read_text(encoding="utf-8")
    for name in pngs:
        assert f"alt='{name}'" in page and f"href='{name}'" in page
    assert "data:image/png;base64," in page and "Kendall tau" in page and "zh" in page


def test_compare_lists_disagreements(tiny_reward_model_dir, tiny_llama_dir, tmp_path, hh_dev_file):
    from rewardforge import TrainConfig, train

    other = train(
        TrainConfig(
            data=[str(hh_dev_file)],
            model=str(tiny_llama_dir),
            output=str(tmp_path / "other"),
            batch_pairs=4,
            max_steps=2,
            lr=1e-2,
            max_length=64,
            seed=7,
        )
    ).output_dir
    result = compare(
        tiny_reward_model_dir, other, hh_dev_file, progress=False, report_dir=tmp_path / "cmp"
    )
    first, second = result["models"]
    assert (first, second) == ("rm", "other")
    solo = evaluate(other, hh_dev_file, progress=False)
    assert result["models"]["other"]["accuracy"] == solo["accuracy"]
    for item in result["disagreements"]:
        a, b = item["rewards"]["rm"], item["rewards"]["other"]
        assert (a[0] > a[1]) != (b[0] > b[1])
        assert item["right"] == ("rm" if a[0] > a[1] else "other")
    lines = (tmp_path / "cmp/disagreements.jsonl").read_text().splitlines()
    assert len(lines) == len(result["disagreements"])
    page = (tmp_path / "cmp/report.html").read_text(encoding="utf-8")
    assert "model1_rewards.png" in page and "model2_rewards.png" in page
    assert "Rankings side by side (12 examples)" in page
    changes = result["rank_changes"]
    assert len(changes) == 12 == len((tmp_path / "cmp/rank_changes.jsonl").read_text().splitlines())
    for item in changes:
        ranks = [candidate["ranks"]["other"] for candidate in item["candidates"]]
        rewards = [candidate["rewards"]["other"] for candidate in item["candidates"]]
        assert ranks == ([1, 2] if rewards[0] >= rewards[1] else [2, 1])
    top = [item["candidates"][0]["ranks"]["rm"] == 1 for item in changes]
    assert result["preferred_first"]["rm"] == pytest.approx(sum(top) / 12)


def test_compare_refuses_a_plain_and_a_reference_model(
    tiny_reward_model_dir, tiny_reference_model_dir, reference_rows_file
):
    with pytest.raises(UserError, match="reference-based and the other model is not"):
        compare(tiny_reward_model_dir, tiny_reference_model_dir, reference_rows_file)


def test_model_directory_without_weights_is_a_clear_error(
    tiny_reward_model_dir, tmp_path, hh_dev_file
):
    (tmp_path / "config.json").write_text((tiny_reward_model_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="no model weights"):
        evaluate(tmp_path, hh_dev_file, progress=False)


def test_missing_data_file_is_a_clear_error(tiny_reward_model_dir, tmp_path):
    with pytest.raises(DataError, match="missing.jsonl: no such file"):
        evaluate(tiny_reward_model_dir, tmp_path / "missing.jsonl", progress=False)


def test_unknown_data_format_is_a_clear_error(tiny_reward_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "odd.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError, match="odd.jsonl"):
        evaluate(tiny_reward_model_dir, data, progress=False)
