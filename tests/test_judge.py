"""Verdict judges (generative reward models): the verdict read in one pass equals the language
model's own next-token probabilities, training rows hold both orders, a trained judge learns a
preference, and every command that reads a reward model reads a judge."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rewardforge import RewardModel, TrainConfig
from rewardforge.errors import UserError
from rewardforge.policy.judge_training import judge_encoder, judge_training_rows
from rewardforge.recipe import ScoringRecipe
from rewardforge.recipe.judge_prompt import PAIRWISE, POINTWISE, JudgePrompt
from rewardforge.scoring.judge import Judge, PairVerdict, position_bias
from tests.conftest import write_jsonl

QUESTIONS = [
    ("How do I boil an egg?", "Put it in boiling water for nine minutes.", "Eggs are round."),
    ("天气怎么样？", "今天是晴天，很暖和。", "不知道。"),
]


def as_judge(backbone: Path, root: Path, template: str = "chat") -> Path:
    """A copy of a causal LM folder with a judge's recipe: the untrained model as a judge."""
    folder = root / f"judge-{backbone.name}"
    shutil.copytree(backbone, folder)
    ScoringRecipe(template=template, max_length=512, judge=JudgePrompt()).save(folder)
    return folder


def next_token_log_odds(folder: Path, user_text: str, word_1: str, word_2: str) -> float:
    """log P(word_1) - log P(word_2) of the first reply token, from the causal LM's full
    vocabulary softmax over the conversation rendered in one piece (in plain text: the
    question and a newline)."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    if tokenizer.chat_template is None:
        ids = tokenizer(user_text + "\n", return_tensors="pt")["input_ids"]
    else:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        log_probs = model(input_ids=ids).logits[0, -1].log_softmax(-1)
    first = [tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (word_1, word_2)]
    return float(log_probs[first[0]] - log_probs[first[1]])


@pytest.mark.parametrize("family", ["llama", "gemma", "plain"])  # LM heads: own, tied; no chat
def test_verdicts_equal_the_language_models_next_token_probabilities(
    tiny_decoder_dirs, tiny_plain_llama_dir, tmp_path, family
):
    if family == "plain":
        folder = as_judge(tiny_plain_llama_dir, tmp_path, template="plain")
    else:
        folder = as_judge(tiny_decoder_dirs[family], tmp_path)
    model = RewardModel.load(folder)
    prompts = [prompt for prompt, *_ in QUESTIONS]
    answers = [good for _, good, _ in QUESTIONS]
    rewards = model.score(prompts, answers)
    for (prompt, good, _), reward in zip(QUESTIONS, rewards):
        question = POINTWISE.format(prompt=prompt, answer=good)
        assert reward == pytest.approx(next_token_log_odds(folder, question, "Yes", "No"), abs=1e-4)
    verdicts = Judge(model).judge_pairs(prompts, answers, [bad for *_, bad in QUESTIONS])
    for (prompt, good, bad), verdict in zip(QUESTIONS, verdicts):
        in_order = PAIRWISE.format(prompt=prompt, answer_a=good, answer_b=bad)
        swapped = PAIRWISE.format(prompt=prompt, answer_a=bad, answer_b=good)
        assert verdict.in_order == pytest.approx(
            next_token_log_odds(folder, in_order, "A", "B"), abs=1e-4
        )
        assert verdict.swapped == pytest.approx(
            next_token_log_odds(folder, swapped, "A", "B"), abs=1e-4
        )


def test_training_rows_ask_every_pair_in_both_orders(tiny_llama_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    config = TrainConfig(data=["x"], model=str(tiny_llama_dir), max_length=256)
    encoder = judge_encoder(tokenizer, config, JudgePrompt())
    from rewardforge.data.example import PreferenceExample

    examples = [PreferenceExample(prompt, (good, bad)) for prompt, good, bad in QUESTIONS]
    rows = judge_training_rows(encoder, examples, random.Random(0))
    assert len(rows) == 4 * len(QUESTIONS)
    seen = set()
    for row in rows:
        reply = [t for t, m in zip(row["input_ids"], row["completion_mask"]) if m]
        question = [t for t, m in zip(row["input_ids"], row["completion_mask"]) if not m]
        word = tokenizer.decode(reply, skip_special_tokens=True).strip()
        text = tokenizer.decode(question)
        for prompt, good, bad in QUESTIONS:
            if prompt not in text:
                continue
            if word in ("A", "B"):  # the better answer is where the verdict says
                assert (text.index(good) < text.index(bad)) == (word == "A")
                seen.add((prompt, word))
            else:
                assert (good in text) == (word == "Yes") and (bad in text) == (word == "No")
                seen.add((prompt, word))
        assert tokenizer.decode(reply).endswith("<|im_end|>\n")  # the turn ends after it
    assert seen == {(p, w) for p, *_ in QUESTIONS for w in ("A", "B", "Yes", "No")}


def test_position_bias_of_an_always_a_judge_and_a_fair_one():
    always_a = [PairVerdict(in_order=2.0, swapped=1.5), PairVerdict(in_order=0.3, swapped=4.0)]
    fair = [PairVerdict(in_order=2.0, swapped=-1.5), PairVerdict(in_order=-0.3, swapped=0.2)]
    assert position_bias(always_a) == 1.0 and position_bias(fair) == 0.0
    assert always_a[0].first_better == pytest.approx((0.8808 + 1 - 0.8176) / 2, abs=1e-4)


def test_a_model_that_is_not_a_judge_is_refused(tiny_reward_model_dir):
    with pytest.raises(UserError, match="this reward model is not a judge"):
        Judge(RewardModel.load(tiny_reward_model_dir))


PREFERENCE = [  # the better answer says yes politely; a tiny model can learn that in a few steps
    ("Can you help me?", "Yes, gladly, here is how.", "No."),
    ("Will you answer?", "Yes, of course, happy to.", "No, go away."),
    ("Is it possible?", "Yes, gladly: it is.", "No idea."),
    ("Could you explain?", "Yes, happy to explain.", "No."),
]


@pytest.fixture(scope="module")
def trained_judge(tiny_llama_dir, tmp_path_factory) -> Path:
    from rewardforge import train_judge

    root = tmp_path_factory.mktemp("judge")
    rows = [{"prompt": p, "chosen": g, "rejected": b} for p, g, b in PREFERENCE] * 4
    data = write_jsonl(root / "pairs.jsonl", rows)
    config = TrainConfig(
        data=[str(data)],
        model=str(tiny_llama_dir),
        output=str(root / "judge"),
        kind="generative",
        max_steps=150,
        batch_pairs=8,
        lr=3e-3,
        warmup_ratio=0.0,
        max_length=128,
    )
    return train_judge(config).output_dir


def test_a_trained_judge_prefers_what_it_was_taught(trained_judge, tmp_path):
    held_out = [
        {"prompt": "May I ask?", "chosen": "Yes, gladly, ask.", "rejected": "No."},
        {"prompt": "Can you do it?", "chosen": "Yes, happy to do it.", "rejected": "No idea."},
    ]
    from rewardforge import evaluate

    dev = write_jsonl(tmp_path / "dev.jsonl", held_out)
    metrics = evaluate(trained_judge, dev, progress=False, report_dir=tmp_path / "report")
    assert metrics["accuracy"] == 1.0  # its pointwise rewards
    judged = metrics["judge"]
    assert judged["pairs"] == 2 and judged["pairwise_accuracy"] == 1.0
    assert judged["position_bias"] == 0.0 and judged["agreement"] == 1.0
    recipe = json.loads((trained_judge / "rewardforge_recipe.json").read_text())
    assert recipe["judge"]["pointwise"] == POINTWISE and recipe["template"] == "chat"
    written = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert written["judge"] == judged and (tmp_path / "report" / "report.html").is_file()


def test_the_cli_trains_evaluates_and_scores_with_a_judge(tiny_llama_dir, tmp_path):
    from typer.testing import CliRunner

    from rewardforge.cli import app

    rows = [{"prompt": p, "chosen": g, "rejected": b} for p, g, b in PREFERENCE]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    output = tmp_path / "judge"
    flags = ["--data", str(data), "--eval-data", str(data), "--model", str(tiny_llama_dir)]
    result = CliRunner().invoke(
        app,
        ["train", *flags, "--kind", "generative", "--max-steps", "2", "--output", str(output)],
    )
    assert result.exit_code == 0, result.output
    assert f"judge: 2 steps on {4 * len(rows)} questions" in result.stdout
    assert f"judge, {len(rows)} pairs asked in both orders: pairwise accuracy" in result.stdout
    answers = [{"prompt": p, "response": g} for p, g, _ in PREFERENCE]
    scored = tmp_path / "scored.jsonl"
    score_flags = ["--input", str(write_jsonl(tmp_path / "in.jsonl", answers))]
    result = CliRunner().invoke(
        app, ["score", "--model", str(output), *score_flags, "--output", str(scored)]
    )
    assert result.exit_code == 0, result.output
    rewards = [json.loads(line)["reward"] for line in scored.read_text().splitlines()]
    expected = RewardModel.load(output).score(
        [p for p, *_ in PREFERENCE], [g for _, g, _ in PREFERENCE]
    )
    assert rewards == pytest.approx(expected, abs=1e-5)


def test_an_encoder_cannot_be_a_judge(tiny_bert_dir, tmp_path, hh_file):
    from rewardforge import train_judge

    config = TrainConfig(
        data=[str(hh_file)], model=str(tiny_bert_dir), output=str(tmp_path / "j"), kind="generative"
    )
    with pytest.raises(UserError, match="is an encoder; pick a decoder"):
        train_judge(config)
    assert not (tmp_path / "j").exists()


def test_serve_judges_pairs_as_offline_and_refuses_a_scalar_model(
    trained_judge, tiny_reward_model_dir
):
    import httpx

    from rewardforge.serving.app import create_app
    from tests.conftest import running_server

    pairs = [{"prompt": p, "answer_a": g, "answer_b": b} for p, g, b in PREFERENCE[:2] + QUESTIONS]
    pairs[0]["prompt"] = [{"role": "user", "content": pairs[0]["prompt"]}]
    model = RewardModel.load(trained_judge)
    offline = Judge(model).judge_pairs(
        [pair["prompt"] for pair in pairs],
        [pair["answer_a"] for pair in pairs],
        [pair["answer_b"] for pair in pairs],
    )
    with running_server(create_app(model)) as url:
        answered = httpx.post(f"{url}/v1/judge", json={"pairs": pairs}, timeout=60)
        missing = httpx.post(f"{url}/v1/judge", json={"pairs": [{"prompt": "p"}]}, timeout=60)
    assert answered.status_code == 200, answered.text
    for result, verdict in zip(answered.json()["results"], offline, strict=True):
        assert result["in_order"] == pytest.approx(verdict.in_order, abs=1e-5)
        assert result["swapped"] == pytest.approx(verdict.swapped, abs=1e-5)
        assert result["first_better"] == pytest.approx(verdict.first_better, abs=1e-6)
        assert result["same_position"] == verdict.same_position
    assert missing.status_code == 422 and "pair 0: missing key 'answer_a'" in missing.text
    with running_server(create_app(RewardModel.load(tiny_reward_model_dir))) as url:
        refused = httpx.post(f"{url}/v1/judge", json={"pairs": pairs}, timeout=60)
    assert refused.status_code == 422 and "this reward model is not a judge" in refused.text


def test_rewardbench2_scores_a_judge_by_its_pointwise_rewards(trained_judge, tmp_path):
    from rewardforge.evaluation.rewardbench2 import evaluate_rewardbench2

    row = {
        "id": "0",
        "subset": "Focus",
        "prompt": "May I ask?",
        "chosen": ["Yes, gladly, ask."],
        "rejected": ["No.", "No idea.", "No, go away."],
    }
    metrics = evaluate_rewardbench2(
        trained_judge,
        write_jsonl(tmp_path / "rb2.jsonl", [row]),
        progress=False,
        report_dir=tmp_path / "out",
    )
    record = json.loads((tmp_path / "out" / "scores.jsonl").read_text())
    answers = row["chosen"] + row["rejected"]
    expected = RewardModel.load(trained_judge).score([row["prompt"]] * 4, answers)
    assert record["rewards"] == pytest.approx(expected, abs=1e-5)
    assert metrics["subsets"]["Focus"]["score"] == float(expected[0] == max(expected))


def test_a_judge_is_not_exported_for_vllm(trained_judge):
    from rewardforge.scoring.config import ExportSettings
    from rewardforge.scoring.vllm_export import export_for_vllm

    with pytest.raises(UserError, match="is a judge: a language model whose reward is read"):
        export_for_vllm(ExportSettings(model=str(trained_judge)))
    assert not (trained_judge / "vllm.json").exists()


def test_a_judge_is_the_reward_of_trl_trainers(trained_judge):
    model = RewardModel.load(trained_judge)
    reward = model.reward_function()
    prompts = [[{"role": "user", "content": p}] for p, *_ in PREFERENCE[:2]]
    completions = [[{"role": "assistant", "content": g}] for _, g, _ in PREFERENCE[:2]]
    expected = model.score([p for p, *_ in PREFERENCE[:2]], [g for _, g, _ in PREFERENCE[:2]])
    assert reward(prompts=prompts, completions=completions) == pytest.approx(expected, abs=1e-5)
    assert all(value > 0 for value in expected)  # the taught answers: "Yes" more likely


def test_a_judge_trains_lora_adapters_merged_into_it(tiny_llama_dir, tmp_path):
    from rewardforge import train_judge
    from tests.conftest import moved_weights

    rows = [{"prompt": p, "chosen": g, "rejected": b} for p, g, b in PREFERENCE]
    config = TrainConfig(
        data=[str(write_jsonl(tmp_path / "pairs.jsonl", rows))],
        model=str(tiny_llama_dir),
        output=str(tmp_path / "judge"),
        kind="generative",
        lora=True,
        lora_rank=4,
        max_steps=2,
        lr=1e-2,
    )
    output = train_judge(config).output_dir
    assert not (output / "adapter_config.json").exists()  # merged: a plain causal LM
    moved = moved_weights(output, tiny_llama_dir)
    assert moved and all("proj" in name for name in moved)  # only the adapted linear layers
    assert RewardModel.load(output).score(["Can you help me?"], ["Yes."])[0] == pytest.approx(
        next_token_log_odds(
            output, POINTWISE.format(prompt="Can you help me?", answer="Yes."), "Yes", "No"
        ),
        abs=1e-4,
    )
