"""`export --for vllm` and `verify-serving --protocol vllm`.

vLLM does not run on a CPU here, so its server is stood in for by a small app that does what
vLLM's source says it does for a sequence classifier (vllm 0.11-0.18,
`model_executor/layers/pooler/activations.py` and `entrypoints/pooling/base/protocol.py`):
the request's text tokenized by the model's tokenizer, special tokens added unless
`add_special_tokens` is false; the classifier's value at the last token (LAST pooling); a
sigmoid on a one-label head unless `problem_type` is "regression"; for a sentence pair at
`/score`, the pair tokenized together and a sigmoid unless the config's
`sentence_transformers.activation_fn` is Identity. The model is run by transformers itself,
never by rewardforge.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rewardforge import RewardModel
from rewardforge.cli import app
from tests.conftest import _tiny_tokenizer, running_server, write_jsonl

PROMPTS = ["How do I boil an egg?", "What is 2 + 2?", "你好", "Name a colour.", "Say hi."]
RESPONSES = ["Eight minutes in water.", "4.", "你好！有什么可以帮你？", "Blue.", "Hi!"]


def vllm_stand_in(folder: Path):
    """An app answering /classify and /score as vLLM does for the classifier in `folder`."""
    from fastapi import FastAPI
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    config = json.loads((folder / "config.json").read_text())
    server = FastAPI()

    def logit(**inputs) -> float:
        with torch.no_grad():
            return model(**{k: torch.tensor([v]) for k, v in inputs.items()}).logits[0, 0].item()

    @server.post("/classify")
    def classify(body: dict) -> dict:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        values = []
        for text in texts:
            ids = (
                text
                if isinstance(text, list)
                else tokenizer(text, add_special_tokens=body.get("add_special_tokens", True))[
                    "input_ids"
                ]
            )
            value = logit(input_ids=ids)
            if config.get("problem_type") != "regression":
                value = float(torch.sigmoid(torch.tensor(value)))
            values.append(value)
        data = [
            {"index": i, "label": "x", "probs": [v], "num_classes": 1} for i, v in enumerate(values)
        ]
        return {"object": "list", "data": data}

    @server.post("/score")
    def score(body: dict) -> dict:
        identity = (
            config.get("sentence_transformers", {}).get("activation_fn", "").endswith("Identity")
        )
        data = []
        for index, (first, second) in enumerate(zip(body["text_1"], body["text_2"])):
            value = logit(**tokenizer(first, second))
            if not identity:
                value = float(torch.sigmoid(torch.tensor(value)))
            data.append({"index": index, "object": "score", "score": value})
        return {"object": "list", "data": data}

    return server


@pytest.fixture
def rows_file(tmp_path) -> Path:
    rows = [{"prompt": p, "response": r} for p, r in zip(PROMPTS, RESPONSES)]
    return write_jsonl(tmp_path / "rows.jsonl", rows)


def verify(folder: Path, url: str, rows: Path):
    return CliRunner().invoke(
        app,
        ["verify-serving", "--protocol", "vllm", "--model", str(folder), "--url", url]
        + ["--data", str(rows)],
    )


def export(folder: Path):
    return CliRunner().invoke(app, ["export", "--model", str(folder), "--for", "vllm"])


def test_a_decoder_rm_before_and_after_export(tiny_reward_model_dir, tmp_path, rows_file):
    """Before the export vLLM's sigmoid is caught; after it, vLLM gives `score`'s rewards, and
    rewardforge's own scores of the folder are unchanged."""
    folder = tmp_path / "rm"
    shutil.copytree(tiny_reward_model_dir, folder)
    before = RewardModel.load(folder).score(PROMPTS, RESPONSES)
    with running_server(vllm_stand_in(folder)) as url:
        result = verify(folder, url, rows_file)
    assert result.exit_code == 1, result.output
    assert "likely cause: a sigmoid applied to the one-logit head" in result.stderr

    result = export(folder)
    assert result.exit_code == 0, result.output
    assert 'config.json: problem_type = "regression"' in result.output
    serving = json.loads((folder / "vllm.json").read_text())
    assert serving["endpoint"] == "/classify" and serving["send"] == "text"
    assert serving["add_special_tokens"] is False  # the chat template writes every token
    assert serving["command"][:5] == ["vllm", "serve", str(folder), "--runner", "pooling"]
    assert f"serve: vllm serve {folder} --runner pooling --convert classify" in result.output
    assert RewardModel.load(folder).score(PROMPTS, RESPONSES) == pytest.approx(before, abs=1e-6)
    with running_server(vllm_stand_in(folder)) as url:
        result = verify(folder, url, rows_file)
    assert result.exit_code == 0, result.output
    assert "gives the offline rewards" in result.output
    assert export(folder).exit_code == 0  # a second export changes nothing
    assert json.loads((folder / "vllm.json").read_text()) == serving


def test_a_client_that_lets_vllm_add_a_bos_is_caught(tiny_reward_model_dir, tmp_path, rows_file):
    """A tokenizer that puts a BOS first and a template that writes one (as Llama 3's): the
    export tells clients to send add_special_tokens false; a client that does not (vLLM's
    default) doubles the BOS, and verify-serving names it."""
    folder = tmp_path / "rm"
    shutil.copytree(tiny_reward_model_dir, folder)
    _tiny_tokenizer(True, adds_bos=True).save_pretrained(folder)
    assert export(folder).exit_code == 0
    assert json.loads((folder / "vllm.json").read_text())["add_special_tokens"] is False
    with running_server(vllm_stand_in(folder)) as url:
        assert verify(folder, url, rows_file).exit_code == 0
        (folder / "vllm.json").unlink()  # a client that knows only vLLM's defaults
        result = verify(folder, url, rows_file)
    assert result.exit_code == 1, result.output
    assert "likely cause: a BOS token doubled" in result.stderr


def test_a_pair_encoder_is_served_at_score_without_an_activation(
    tiny_bert_dir, tmp_path, rows_file
):
    from rewardforge import TrainConfig, train
    from tests.conftest import sample_rows

    data = write_jsonl(tmp_path / "train.jsonl", sample_rows("train", 8))
    config = TrainConfig(
        data=[str(data)], model=str(tiny_bert_dir), output=str(tmp_path / "rm"), max_steps=1
    )
    folder = train(config).output_dir
    result = export(folder)
    assert result.exit_code == 0, result.output
    serving = json.loads((folder / "vllm.json").read_text())
    assert (serving["endpoint"], serving["send"]) == ("/score", "text_pair")
    assert "--convert" not in serving["command"]
    config_json = json.loads((folder / "config.json").read_text())
    assert config_json["sentence_transformers"]["activation_fn"].endswith("Identity")
    with running_server(vllm_stand_in(folder)) as url:
        result = verify(folder, url, rows_file)
    assert result.exit_code == 0, result.output


def test_a_prm_whose_step_end_token_appears_elsewhere_gets_no_step_pooling(tiny_prm_dir, tmp_path):
    """The tiny PRM's steps end in a newline token, which the chat template also writes: STEP
    pooling would read those too, so the export leaves it out and says to read every token's
    P(correct) at the step ends."""
    from rewardforge.recipe.steps import encode_solution

    folder = tmp_path / "prm"
    shutil.copytree(tiny_prm_dir, folder)
    result = export(folder)
    assert result.exit_code == 0, result.output
    serving = json.loads((folder / "vllm.json").read_text())
    assert serving["endpoint"] == "/pooling" and serving["config_changes"] == {}
    solution = encode_solution(
        RewardModel.load(folder).encoder, "2 + 2 = ?", ["2 + 2 = 4.", "So 4.", "Done."]
    )
    (tag,) = {solution.input_ids[end] for end in solution.step_ends}
    assert solution.input_ids.count(tag) > len(solution.step_ends)
    assert serving["pooler_config"] is None and "--pooler-config" not in serving["command"]
    assert "read it at each step's last token" in result.output


def encoded(ids: list[int], ends: list[int]):
    from rewardforge.recipe.encoder import EncodedResponse

    return EncodedResponse(ids, None, False, 2, ends)


@pytest.mark.parametrize(
    ("solutions", "tag"),
    [
        ([encoded([5, 6, 7, 9, 8, 9], [3, 5]), encoded([5, 6, 1, 9], [3])], 9),
        ([encoded([5, 9, 7, 9, 8, 9], [3, 5])], None),  # 9 in the prompt too
        ([encoded([5, 6, 7, 9, 8, 4], [3, 5])], None),  # steps end in two tokens
    ],
    ids=["one-tag", "tag-elsewhere", "two-end-tokens"],
)
def test_the_step_tag_is_the_one_token_at_every_step_end_and_nowhere_else(solutions, tag):
    from rewardforge.scoring.vllm_export import _step_tag

    assert _step_tag(solutions) == tag


def test_a_missing_folder_is_one_line(tmp_path):
    """Nothing is written anywhere but into a folder on this machine."""
    result = export(tmp_path / "missing")
    assert result.exit_code == 2
    assert result.output.count("error:") == 1
    assert "writes into a model folder on this machine" in result.output
    hub_id = export(Path("HuggingFaceTB/SmolLM2-135M-Instruct"))
    assert hub_id.exit_code == 2 and "hf download" in hub_id.output
