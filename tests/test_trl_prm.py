"""A process reward model trained by TRL's PRMTrainer (a two-label token classifier, the last
TRL shipped being 1.13) scores, trains on and serves in rewardforge exactly as TRL reads it.

TRL 1.14 removed the trainer, so the model is built here as it saves one:
`AutoModelForTokenClassification` with two labels, its tokenizer beside it. The reference is
TRL 1.13's `PRMTrainer.tokenize_row` (BOS, the prompt, then each step and the separator, every
piece tokenized apart, the label at the separator's last token) and the classifier's softmax."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer
from typer.testing import CliRunner

from rewardforge import RewardModel, TrainConfig, train
from rewardforge.cli import app
from rewardforge.data.sample import prm_sample_paths

runner = CliRunner()
PROMPTS = ["Tom has 2 apples and buys 3 more. How many apples?", "你好，一共几个？"]
SOLUTIONS = [
    [
        ["2 + 3 = 5.", "The answer is 5."],
        ["2 + 3 = 5.", "The answer is 6."],  # shares its first step with the one above
        ["2 + 3 = 6.", "So 6 apples.", "The answer is 6."],
    ],
    [["一个。", "答案是一。"]],
]


def save_trl_prm(backbone: Path, output: Path) -> Path:
    """A token classifier with two labels and a trained-looking head (bias included)."""
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(backbone, num_labels=2)
    with torch.no_grad():
        head = model.score if hasattr(model, "score") else model.classifier
        head.weight.normal_(std=0.5)
        head.bias.copy_(torch.tensor([0.3, -0.2]))
    model.save_pretrained(output)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(output)
    return output


def trl_probabilities(folder: Path, prompt: str, steps: list[str], separator: str = "\n"):
    """TRL 1.13's tokenize_row, then the token classifier's P(label 1) at each step's end."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForTokenClassification.from_pretrained(folder).eval()
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    separator_ids = tokenizer.encode(separator, add_special_tokens=False)
    ids, spots = [], []
    for step in steps:
        ids += tokenizer(step, add_special_tokens=False)["input_ids"] + separator_ids
        spots.append(len(ids) - 1)
    if tokenizer.bos_token_id is not None:
        prompt_ids = [tokenizer.bos_token_id] + prompt_ids
    ids = prompt_ids + ids
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return logits[[len(prompt_ids) + spot for spot in spots]].softmax(-1)[:, 1].tolist()


@pytest.fixture(scope="module")
def trl_prm(tiny_llama_dir, tmp_path_factory) -> Path:
    return save_trl_prm(tiny_llama_dir, tmp_path_factory.mktemp("trl-prm"))


def test_a_trl_prm_scores_every_step_as_trl_reads_it(trl_prm, capsys):
    rm = RewardModel.load(trl_prm)
    assert "TRL-trained PRM" in capsys.readouterr().err
    assert rm.is_process and rm.recipe.step_separator == "\n"
    assert rm.plan.share_prompt  # solutions to one problem share the problem and first steps
    prompts = [p for p, group in zip(PROMPTS, SOLUTIONS) for _ in group]
    solutions = [s for group in SOLUTIONS for s in group]
    got = rm.score_steps(prompts, solutions)
    for prompt, steps, probabilities in zip(prompts, solutions, got):
        assert probabilities == pytest.approx(trl_probabilities(trl_prm, prompt, steps), abs=1e-5)
    assert rm.score(prompts[:1], ["2 + 3 = 5.\nThe answer is 5."]) == pytest.approx(
        [min(got[0])], abs=1e-6
    )  # a response text is cut at the separator, the aggregate is the weakest step


def test_score_adds_a_trl_prms_step_rewards(trl_prm, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": PROMPTS[0], "completions": SOLUTIONS[0][2]}) + "\n")
    output = tmp_path / "scored.jsonl"
    result = runner.invoke(
        app, ["score", "--model", str(trl_prm), "--input", str(rows), "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    scored = json.loads(output.read_text())
    expected = trl_probabilities(trl_prm, PROMPTS[0], SOLUTIONS[0][2])
    assert scored["step_rewards"] == pytest.approx(expected, abs=1e-5)
    assert scored["reward"] == pytest.approx(min(expected), abs=1e-5)


def test_adopt_keeps_the_token_classifier_and_its_reading(trl_prm, tmp_path):
    result = runner.invoke(
        app, ["adopt", "--source", str(trl_prm), "--output", str(tmp_path / "a")]
    )
    assert result.exit_code == 0, result.output
    recipe = json.loads((tmp_path / "a" / "rewardforge_recipe.json").read_text())
    assert recipe["family"] == "trl-prm" and recipe["kind"] == "process"
    adopted = RewardModel.load(tmp_path / "a").score_steps(PROMPTS[:1], SOLUTIONS[0][:1])
    assert adopted[0] == pytest.approx(trl_probabilities(trl_prm, PROMPTS[0], SOLUTIONS[0][0]))
    # trained with another separator (TRL does not record it): named once, at adoption
    command = ["adopt", "--source", str(trl_prm), "--output", str(tmp_path / "b")]
    result = runner.invoke(app, [*command, "--step-separator", "\n\n"])
    assert result.exit_code == 0, result.output
    adopted = RewardModel.load(tmp_path / "b").score_steps(PROMPTS[:1], SOLUTIONS[0][:1])
    expected = trl_probabilities(trl_prm, PROMPTS[0], SOLUTIONS[0][0], separator="\n\n")
    assert adopted[0] == pytest.approx(expected, abs=1e-5)


def test_training_continues_a_trl_prm_from_its_head(trl_prm, tmp_path):
    train_rows, _, _ = prm_sample_paths()
    data = tmp_path / "train.jsonl"
    data.write_text("".join(Path(train_rows).read_text().splitlines(True)[:32]))
    config = TrainConfig(
        data=[str(data)], model=str(trl_prm), output=str(tmp_path / "tuned"), max_steps=2
    )
    output = train(config).output_dir
    tuned = RewardModel.load(output)
    assert tuned.recipe.family == "trl-prm" and tuned.recipe.step_separator == "\n"
    start = AutoModelForTokenClassification.from_pretrained(trl_prm).score
    end = AutoModelForTokenClassification.from_pretrained(output).score
    # TRL's two-label head was trained on (both rows move), not replaced by a new one
    assert torch.allclose(start.weight, end.weight, atol=0.1)
    assert not torch.equal(start.bias, end.bias)
    after = tuned.score_steps(PROMPTS[:1], SOLUTIONS[0][:1])[0]
    assert after == pytest.approx(trl_probabilities(Path(output), PROMPTS[0], SOLUTIONS[0][0]))


def test_a_token_classifier_prm_on_an_encoder_is_refused_in_one_line(tiny_bert_dir, tmp_path):
    folder = save_trl_prm(tiny_bert_dir, tmp_path / "bert-prm")
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "q", "completions": ["a."]}) + "\n")
    result = runner.invoke(
        app,
        ["score", "--model", str(folder), "--input", str(rows), "--output", str(tmp_path / "o")],
    )
    assert result.exit_code == 2
    assert "not supported" in result.output and "bert-prm" in result.output


def test_a_trl_prm_cannot_be_continued_as_an_outcome_model(trl_prm, hh_file, tmp_path):
    command = ["train", "--model", str(trl_prm), "--data", str(hh_file), "--kind", "orm"]
    result = runner.invoke(app, [*command, "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    (error,) = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert "two-label token classifier" in error and "--kind prm" in error
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
