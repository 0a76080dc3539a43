"""Reward models trained elsewhere score in rewardforge exactly as their own tooling scores them:
a model trained by TRL's RewardTrainer in the test (chat and plain-text pairs), a
Skywork-style chat RM, an encoder text-pair RM; and a folder that exists only as
shipped code is refused without running it. OpenRLHF folders: tests/test_openrlhf.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from typer.testing import CliRunner

from rewardforge import RewardModel
from rewardforge.cli import app
from rewardforge.data.conversation import prompt_as_messages

runner = CliRunner()
PROMPTS = ["What is two plus two?", [{"role": "user", "content": "Say hi.\n"}], "你好，世界"]
RESPONSES = ["Four.", "Hi there!", "谢谢！"]


def train_with_trl(backbone: Path, output: Path, chat: bool) -> Path:
    """Two steps of TRL's own RewardTrainer, saved as TRL saves it."""
    import datasets
    import trl

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1)
    if chat:
        rows = [
            {
                "prompt": [{"role": "user", "content": f"Question {i}?"}],
                "chosen": [{"role": "assistant", "content": "A good answer."}],
                "rejected": [{"role": "assistant", "content": "No."}],
            }
            for i in range(4)
        ]
    else:
        rows = [
            {"prompt": f"Question {i}? ", "chosen": "A good answer.", "rejected": "No."}
            for i in range(4)
        ]
    args = trl.RewardConfig(
        output_dir=str(output / "run"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
    )
    trainer = trl.RewardTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.train()
    trainer.save_model(str(output))
    tokenizer.save_pretrained(output)
    return output


def trl_reward(folder: Path, prompt, response: str, chat: bool) -> float:
    """TRL 1.16's own tokenization (`RewardTrainer._prepare_dataset`) and the model's forward."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    if chat:
        conversation = [*prompt_as_messages(prompt), {"role": "assistant", "content": response}]
        ids = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)
        ids = ids["input_ids"]
    else:
        ids = tokenizer(text=prompt + response + tokenizer.eos_token)["input_ids"]
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, 0].item()


@pytest.fixture(scope="module")
def trl_chat_rm(tiny_llama_dir, tmp_path_factory) -> Path:
    return train_with_trl(tiny_llama_dir, tmp_path_factory.mktemp("trl-chat"), chat=True)


@pytest.fixture(scope="module")
def trl_plain_rm(tiny_plain_llama_dir, tmp_path_factory) -> Path:
    return train_with_trl(tiny_plain_llama_dir, tmp_path_factory.mktemp("trl-plain"), chat=False)


def test_a_trl_chat_rm_scores_as_trl_does(trl_chat_rm, capsys):
    rm = RewardModel.load(trl_chat_rm)
    assert "scoring as TRL-trained chat RM: chat template" in capsys.readouterr().err
    assert rm.recipe.family == "trl" and rm.recipe.template == "chat"
    expected = [trl_reward(trl_chat_rm, p, r, chat=True) for p, r in zip(PROMPTS, RESPONSES)]
    assert rm.score(PROMPTS, RESPONSES) == pytest.approx(expected, abs=1e-5)
    assert len(set(expected)) == 3  # the rewards tell the responses apart


def test_a_trl_plain_rm_scores_as_trl_does_with_pad_equal_to_eos(trl_plain_rm):
    config = json.loads((trl_plain_rm / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(trl_plain_rm)
    assert config["pad_token_id"] == tokenizer.eos_token_id  # TRL padded with EOS
    rm = RewardModel.load(trl_plain_rm)
    assert rm.recipe.template == "plain" and rm.recipe.trailing_pad_id == tokenizer.eos_token_id
    prompts = ["What is two plus two? ", "你好，世界 "]
    responses = ["Four.", "谢谢！"]
    expected = [trl_reward(trl_plain_rm, p, r, chat=False) for p, r in zip(prompts, responses)]
    assert rm.score(prompts, responses) == pytest.approx(expected, abs=1e-5)
    # transformers reads the reward before the trailing EOS (it is the pad token): so do we
    encoded = rm.encoder.encode(prompts[0], responses[0])
    assert encoded.input_ids[-1] != tokenizer.eos_token_id


def test_skywork_style_chat_rm_reads_one_bos(bos_tokenizers, tiny_llama_dir, tmp_path):
    """Skywork's card: render with the chat template, strip the text's BOS, let the tokenizer
    add its own."""
    _, tokenizer = bos_tokenizers
    folder = tmp_path / "skywork-rm"
    torch.manual_seed(4)
    AutoModelForSequenceClassification.from_pretrained(
        tiny_llama_dir, num_labels=1
    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    rm = RewardModel.load(folder, reward_format="skywork")
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    expected = []
    for prompt, response in zip(PROMPTS, RESPONSES):
        conversation = [*prompt_as_messages(prompt), {"role": "assistant", "content": response}]
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
        assert text.startswith(tokenizer.bos_token)
        ids = tokenizer(text[len(tokenizer.bos_token) :])["input_ids"]
        assert ids.count(tokenizer.bos_token_id) == 1
        with torch.no_grad():
            expected.append(model(input_ids=torch.tensor([ids])).logits[0, 0].item())
    assert rm.score(PROMPTS, RESPONSES) == pytest.approx(expected, abs=1e-5)


def test_an_encoder_pair_rm_scores_the_text_pair(tiny_bert_dir, tmp_path):
    """OpenAssistant's DeBERTa RMs: `tokenizer(question, answer)`, the classifier's logit."""
    folder = tmp_path / "pair-rm"
    torch.manual_seed(5)
    AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=1).save_pretrained(
        folder
    )
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(folder)
    rm = RewardModel.load(folder)
    assert rm.recipe.family == "text-pair"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    questions, answers = ["What is two plus two?", "你好"], ["Four.", "谢谢"]
    with torch.no_grad():
        expected = [
            model(**tokenizer(q, a, return_tensors="pt")).logits[0, 0].item()
            for q, a in zip(questions, answers)
        ]
    assert rm.score(questions, answers) == pytest.approx(expected, abs=1e-5)


def test_shipped_code_never_runs_and_is_refused_in_one_line(tiny_llama_dir, tmp_path):
    folder = tmp_path / "custom-rm"
    shutil.copytree(tiny_llama_dir, folder)
    marker = tmp_path / "code-ran"
    (folder / "modeling_custom.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_custom.CustomRM"}
    config["architectures"] = ["CustomRewardModel"]
    (folder / "config.json").write_text(json.dumps(config))
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "q", "response": "a"}) + "\n")
    result = runner.invoke(
        app,
        ["score", "--model", str(folder), "--input", str(rows), "--output", str(tmp_path / "o")],
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "never runs shipped code" in lines[0] and "auto_map" in lines[0]
    assert not marker.exists()


def test_adopt_writes_a_model_that_scores_the_same(trl_chat_rm, tmp_path):
    output = tmp_path / "adopted"
    result = runner.invoke(app, ["adopt", "--source", str(trl_chat_rm), "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "TRL-trained chat RM" in result.stdout
    recipe = json.loads((output / "rewardforge_recipe.json").read_text())
    assert recipe["family"] == "trl" and recipe["template"] == "chat"
    expected = [trl_reward(trl_chat_rm, p, r, chat=True) for p, r in zip(PROMPTS, RESPONSES)]
    assert RewardModel.load(output).score(PROMPTS, RESPONSES) == pytest.approx(expected, abs=1e-5)


def test_eval_compares_models_from_two_sources(trl_chat_rm, tiny_reward_model_dir, hh_dev_file):
    result = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(trl_chat_rm),
            "--compare",
            str(tiny_reward_model_dir),
            "--data",
            str(hh_dev_file),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(metrics["models"]) == {trl_chat_rm.name, tiny_reward_model_dir.name}
    for report in metrics["models"].values():
        assert 0.0 <= report["accuracy"] <= 1.0 and report["n_pairs"] > 0


def test_training_continues_a_trl_rm_in_its_format(trl_chat_rm, hh_file, tmp_path):
    from rewardforge import TrainConfig, train

    config = TrainConfig(
        data=[str(hh_file)], model=str(trl_chat_rm), output=str(tmp_path / "tuned"), max_steps=2
    )
    output = train(config).output_dir
    tuned = RewardModel.load(output)
    assert tuned.recipe.family == "trl"
    before = RewardModel.load(trl_chat_rm).score(PROMPTS, RESPONSES)
    assert tuned.score(PROMPTS, RESPONSES) != pytest.approx(before, abs=1e-6)  # it trained
    # the head it continued from was TRL's, not a new one
    start = AutoModelForSequenceClassification.from_pretrained(trl_chat_rm).score.weight
    end = AutoModelForSequenceClassification.from_pretrained(output).score.weight
    assert torch.allclose(start, end, atol=0.1) and not torch.equal(start, end)


def test_score_takes_the_family_by_flag_and_refuses_an_unknown_one(trl_chat_rm, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in zip(PROMPTS, RESPONSES))
    )
    output = tmp_path / "scored.jsonl"
    command = ["score", "--model", str(trl_chat_rm), "--input", str(rows), "--output", str(output)]
    result = runner.invoke(app, [*command, "--reward-format", "trl", "--template", "chat"])
    assert result.exit_code == 0, result.output
    rewards = [json.loads(line)["reward"] for line in output.read_text().splitlines()]
    assert rewards == pytest.approx(
        RewardModel.load(trl_chat_rm).score(PROMPTS, RESPONSES), abs=1e-6
    )
    wrong = runner.invoke(app, [*command, "--reward-format", "armo"])
    assert wrong.exit_code == 2
    assert "Invalid value for '--reward-format'" in wrong.output and "'armo'" in wrong.output


def test_a_foreign_rm_is_trls_reward_function(trl_chat_rm):
    """GRPO and RLOO call `reward_function()`: with a model trained elsewhere it gives the
    model's own rewards for TRL's prompts and completions."""
    rm = RewardModel.load(trl_chat_rm)
    completions = [[{"role": "assistant", "content": r}] for r in RESPONSES]
    prompts = [prompt_as_messages(p) for p in PROMPTS]
    rewards = rm.reward_function()(prompts=prompts, completions=completions)
    assert rewards == pytest.approx(rm.score(PROMPTS, RESPONSES), abs=1e-6)


def test_a_folder_without_a_reward_head_is_refused_not_scored_at_random(tiny_llama_dir):
    """A causal LM named as a TRL RM would get a random head; it is refused in one line."""
    from rewardforge.errors import UserError

    with pytest.raises(UserError, match=r"no weights for the reward head \(score.weight\)"):
        RewardModel.load(tiny_llama_dir, reward_format="trl")


def test_serve_loads_a_foreign_rm_by_its_flags(trl_chat_rm, monkeypatch):
    """`serve --reward-format trl` serves the TRL model's own rewards over /v1/score."""
    import uvicorn
    from fastapi.testclient import TestClient

    from rewardforge.serving.config import ServerSettings
    from rewardforge.serving.launch import serve

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **where: served.update(app=app, **where))
    serve(ServerSettings(model=str(trl_chat_rm), reward_format="trl", template="chat"))
    assert served["host"] == "127.0.0.1"
    items = [{"prompt": p, "response": r} for p, r in zip(PROMPTS, RESPONSES)]
    with TestClient(served["app"]) as client:
        answer = client.post("/v1/score", json={"items": items})
    assert answer.status_code == 200
    expected = [trl_reward(trl_chat_rm, p, r, chat=True) for p, r in zip(PROMPTS, RESPONSES)]
    assert answer.json()["rewards"] == pytest.approx(expected, abs=1e-5)


def test_a_hub_id_loads_from_what_the_hub_client_fetched(trl_chat_rm, monkeypatch):
    """A hub id goes to huggingface_hub (offline here: the client is stood in for by the
    folder it would have fetched); a path that is neither is a one-line error."""
    import huggingface_hub

    from rewardforge.errors import UserError

    asked = []

    def fetch(repo_id, **options):
        asked.append(repo_id)
        return str(trl_chat_rm)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fetch)
    rm = RewardModel.load("someone/trl-rm")
    assert asked == ["someone/trl-rm"] and rm.recipe.family == "trl"

    def offline(repo_id, **options):
        raise OSError("offline mode is enabled")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(UserError, match="someone/missing is not a folder, and the hub id"):
        RewardModel.load("someone/missing")


def test_adopt_refuses_a_model_without_a_reward_head(tiny_llama_dir, tmp_path):
    """A plain causal LM named as a TRL RM has no `score`: adopt used to write one at random,
    which then loaded without complaint."""
    output = tmp_path / "adopted"
    result = CliRunner().invoke(
        app,
        ["adopt", "--source", str(tiny_llama_dir), "--output", str(output)]
        + ["--reward-format", "trl"],
    )
    assert result.exit_code == 2
    assert "no weights for the reward head (score.weight)" in result.output
    assert not output.exists()
