"""A process reward model end to end: trained from step-labelled rows, saved and reloaded, then
scoring files, evaluated with ProcessBench's metrics, served over HTTP, used by best-of-N and as
the reward of two GRPO steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardforge import RewardModel, TrainConfig, train
from rewardforge.cli import app
from rewardforge.data.sample import prm_sample_paths
from rewardforge.models.policy import Policy
from rewardforge.recipe.steps import encode_solution
from rewardforge.scoring.step_aggregates import aggregate
from tests.conftest import moved_weights, write_jsonl

runner = CliRunner()


def first_rows(path: str, count: int, target: Path) -> Path:
    target.write_text("".join(Path(path).read_text(encoding="utf-8").splitlines(True)[:count]))
    return target


@pytest.fixture(scope="module")
def prm_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prm")
    train_rows, _, processbench = prm_sample_paths()
    config = TrainConfig(
        data=[str(first_rows(train_rows, 32, root / "train.jsonl"))],
        eval_data=[str(first_rows(processbench, 16, root / "eval.jsonl"))],
        model=str(tiny_llama_dir),
        output=str(root / "prm"),
        max_steps=2,
        batch_pairs=4,
        lr=1e-3,
    )
    result = train(config)
    assert result.metrics["train_labelled_steps"] > 0 and "eval_processbench_f1" in result.metrics
    return result.output_dir


STEPS = [
    ["Tom has 2 apples.", "2 + 3 = 5.", "The answer is 5."],
    ["2 + 3 = 6.", "The answer is 6."],
]


def hand_step_probabilities(folder: Path, prompt: str, steps: list[str]) -> list[float]:
    """The oracle, written here from the model's parts: the chat template's prompt with its
    generation prompt, then each step and the blank line tokenized apart; the backbone's hidden
    state at each blank line's last token through the classifier's `score`, then a sigmoid."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1).eval()
    messages = [{"role": "user", "content": prompt}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    ends = []
    for step in steps:
        ids += tokenizer(step, add_special_tokens=False)["input_ids"]
        ids += tokenizer("\n\n", add_special_tokens=False)["input_ids"]
        ends.append(len(ids) - 1)
    with torch.no_grad():
        hidden = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        return torch.sigmoid(model.score(hidden[ends])[:, 0]).tolist()


def test_a_prm_reloads_with_its_recipe_and_scores_every_step(prm_dir):
    rm = RewardModel.load(prm_dir)
    recipe = json.loads((prm_dir / "rewardforge_recipe.json").read_text())
    assert recipe["kind"] == "process" and recipe["step_separator"] == "\n\n"
    found = rm.score_steps(["How many apples?"] * 2, STEPS)
    for steps, probabilities in zip(STEPS, found):
        expected = hand_step_probabilities(prm_dir, "How many apples?", steps)
        assert probabilities == pytest.approx(expected, abs=1e-5)
    # one problem alone gives the same as with another solution beside it (shared prompt)
    alone = rm.score_steps(["How many apples?"], STEPS[1:])
    assert alone[0] == pytest.approx(found[1], abs=1e-5)
    # score(): the response cut at the separator, its steps' minimum
    text = "\n\n".join(STEPS[0])
    assert rm.score(["How many apples?"], [text]) == pytest.approx([min(found[0])], abs=1e-6)
    rm.aggregate = "last"
    assert rm.score(["How many apples?"], [text]) == pytest.approx([found[0][-1]], abs=1e-6)


def test_score_writes_step_rewards_and_their_aggregate(prm_dir, tmp_path):
    rows = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            {"prompt": "How many apples?", "completions": STEPS[0]},
            {"prompt": "How many apples?", "response": "\n\n".join(STEPS[1])},
        ],
    )
    output = tmp_path / "scored.jsonl"
    result = runner.invoke(
        app,
        ["score", "--model", str(prm_dir), "--input", str(rows), "--output", str(output)]
        + ["--aggregate", "prod"],
    )
    assert result.exit_code == 0, result.output
    scored = [json.loads(line) for line in output.read_text().splitlines()]
    expected = [hand_step_probabilities(prm_dir, "How many apples?", steps) for steps in STEPS]
    for row, steps in zip(scored, expected):
        assert row["step_rewards"] == pytest.approx(steps, abs=1e-6)
        assert row["reward"] == pytest.approx(aggregate(steps, "prod"), abs=1e-6)
    refused = runner.invoke(
        app,
        ["score", "--model", str(prm_dir), "--input", str(rows), "--output", str(output)]
        + ["--normalize"],
    )
    assert refused.exit_code == 2 and "process reward model" in refused.output


def test_eval_reports_processbench_metrics(prm_dir, tmp_path):
    """ProcessBench's rules, written here over the oracle's step probabilities: a wrong
    solution counts when the earliest step below 0.5 is its labelled first error, a correct one
    when no step is below 0.5, and F1 is their harmonic mean."""
    _, _, processbench = prm_sample_paths()
    data = first_rows(processbench, 24, tmp_path / "eval.jsonl")
    report = tmp_path / "report"
    result = runner.invoke(
        app, ["eval", "--model", str(prm_dir), "--data", str(data), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert "ProcessBench F1" in result.output
    metrics = json.loads((report / "metrics.json").read_text())
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    wrong_found, right_kept = [], []
    for row in rows:
        found = hand_step_probabilities(prm_dir, row["problem"], row["steps"])
        flagged = next((i for i, p in enumerate(found) if p < 0.5), -1)
        (right_kept if row["label"] == -1 else wrong_found).append(flagged == row["label"])
    error_acc = sum(wrong_found) / len(wrong_found)
    correct_acc = sum(right_kept) / len(right_kept)
    assert metrics["n_solutions"] == 24
    assert metrics["processbench_error_acc"] == pytest.approx(error_acc)
    assert metrics["processbench_correct_acc"] == pytest.approx(correct_acc)
    f1 = 2 * error_acc * correct_acc / (error_acc + correct_acc) if error_acc + correct_acc else 0
    assert metrics["processbench_f1"] == pytest.approx(f1)
    assert set(metrics["best_of_n"]) >= {"min", "last", "prod", "mean", "oracle"}
    assert (report / "step_errors.png").stat().st_size > 0
    assert "Where the model" in (report / "report.html").read_text()


def test_eval_counts_a_neutral_rating_as_the_flag_says(prm_dir, tmp_path):
    """A PRM800K rating of 0 is correct by default and wrong with --neutral-rating wrong."""
    rows = write_jsonl(
        tmp_path / "prm800k.jsonl",
        [{"prompt": "How many apples?", "steps": STEPS[0], "ratings": [1, 0, 1]}],
    )
    found = hand_step_probabilities(prm_dir, "How many apples?", STEPS[0])
    for flag, middle in (("correct", 1.0), ("wrong", 0.0)):
        out = tmp_path / flag
        command = ["eval", "--model", str(prm_dir), "--data", str(rows), "--report", str(out)]
        result = runner.invoke(app, [*command, "--neutral-rating", flag])
        assert result.exit_code == 0, result.output
        metrics = json.loads((out / "metrics.json").read_text())
        truth = [1.0, middle, 1.0]
        hits = sum((p >= 0.5) == (y >= 0.5) for p, y in zip(found, truth))
        assert metrics["step_accuracy"] == pytest.approx(hits / 3)
        undefined = "processbench_error_acc" if middle else "processbench_correct_acc"
        assert metrics[undefined] is None  # null in metrics.json, not 0


def test_serve_returns_step_rewards(prm_dir):
    from fastapi.testclient import TestClient

    from rewardforge.serving.app import create_app
    from rewardforge.serving.config import ServerSettings

    rm = RewardModel.load(prm_dir)
    items = [{"prompt": "How many apples?", "completions": steps} for steps in STEPS]
    with TestClient(create_app(rm, ServerSettings())) as client:
        answer = client.post("/v1/score", json={"items": items}).json()
        refused = client.post("/get_reward", json={"query": ["text"]})
    expected = [hand_step_probabilities(prm_dir, "How many apples?", steps) for steps in STEPS]
    for got, steps in zip(answer["step_rewards"], expected):
        assert got == pytest.approx(steps, abs=1e-6)
    assert answer["rewards"] == pytest.approx([min(steps) for steps in expected], abs=1e-6)
    assert refused.status_code == 422 and "/v1/score" in refused.json()["detail"]


class FixedAnswers(Policy):
    """A policy that answers every prompt with the same candidates, one of them empty."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers

    def sample(self, prompt, n, sampling):
        return self.answers[:n]


CANDIDATES = ["\n\n".join(STEPS[0]), "", "\n\n".join(STEPS[1]), "2 + 3 = 5."]


def test_best_of_n_ranks_every_answer_by_its_weakest_step(prm_dir, tmp_path):
    from rewardforge.generation.best_of_n import best_of_n

    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "How many apples?"}])
    output, pairs = tmp_path / "best.jsonl", tmp_path / "pairs.jsonl"
    policy = FixedAnswers(CANDIDATES)
    best_of_n(policy, str(prm_dir), prompts, output, n=4, top_k=4, pairs_output_path=pairs)
    kept = [json.loads(line) for line in output.read_text().splitlines()]
    steps = [[""] if not answer else answer.split("\n\n") for answer in CANDIDATES]
    weakest = {
        answer: min(hand_step_probabilities(prm_dir, "How many apples?", s))
        for answer, s in zip(CANDIDATES, steps)
    }
    assert [row["response"] for row in kept] == sorted(CANDIDATES, key=lambda a: -weakest[a])
    assert [row["rank"] for row in kept] == [1, 2, 3, 4]
    for row in kept:  # the empty answer too: a reward, not a crash
        assert row["reward"] == pytest.approx(weakest[row["response"]], abs=1e-5)
    (pair,) = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert pair["chosen"] == kept[0]["response"] and pair["rejected"] == kept[-1]["response"]


def test_the_rlhf_reward_function_gives_an_empty_completion_a_reward(prm_dir):
    """A policy that emits EOS first gives "": under a PRM it is one empty step."""
    reward = RewardModel.load(prm_dir, aggregate="mean").reward_function()
    completions = ["", "   ", "\n\n".join(STEPS[1])]
    got = reward(prompts=["How many apples?"] * 3, completions=completions)
    empty = hand_step_probabilities(prm_dir, "How many apples?", [""])
    solved = hand_step_probabilities(prm_dir, "How many apples?", STEPS[1])
    assert got == pytest.approx([empty[0], empty[0], sum(solved) / len(solved)], abs=1e-5)


def test_two_grpo_steps_against_a_prm(prm_dir, tiny_plain_llama_dir, tmp_path):
    from rewardforge.policy.rlhf import rlhf
    from rewardforge.policy.rlhf_config import RLHFConfig

    prompts = write_jsonl(
        tmp_path / "prompts.jsonl", [{"prompt": f"Question {i}?"} for i in range(4)]
    )
    config = RLHFConfig(
        reward_model=str(prm_dir),
        prompts=str(prompts),
        policy=str(tiny_plain_llama_dir),
        output=str(tmp_path / "policy"),
        max_steps=2,
        max_new_tokens=8,
        lr=1e-3,
        aggregate="mean",
    )
    result = rlhf(config)
    records = [json.loads(line) for line in (result.output_dir / "log.jsonl").open()]
    rewards = [record["reward"] for record in records if "reward" in record]
    assert len(rewards) == 2 and all(0.0 <= r <= 1.0 and math.isfinite(r) for r in rewards)
    assert moved_weights(result.output_dir, tiny_plain_llama_dir)  # the PRM's rewards trained it


def test_an_outcome_rm_continued_as_a_prm_is_saved_as_one(tiny_reward_model_dir, tmp_path):
    """--kind prm on an outcome model: the recipe saved is the one trained, with its
    separator, and each step's reward is read at that separator."""
    train_rows, _, _ = prm_sample_paths()
    config = TrainConfig(
        data=[str(first_rows(train_rows, 8, tmp_path / "train.jsonl"))],
        model=str(tiny_reward_model_dir),
        output=str(tmp_path / "prm"),
        kind="prm",
        step_separator="\n",
        max_steps=1,
        batch_pairs=4,
    )
    output = train(config).output_dir
    recipe = json.loads((output / "rewardforge_recipe.json").read_text())
    assert recipe["kind"] == "process" and recipe["step_separator"] == "\n"
    rm = RewardModel.load(output)
    solution = encode_solution(rm.encoder, "How many apples?", STEPS[0])
    newline = rm.encoder.tokenizer("\n", add_special_tokens=False)["input_ids"]
    assert all(solution.input_ids[end] == newline[-1] for end in solution.step_ends)


def test_a_prm_continued_as_an_outcome_rm_is_saved_as_one(prm_dir, hh_file, tmp_path):
    config = TrainConfig(
        data=[str(hh_file)],
        model=str(prm_dir),
        output=str(tmp_path / "orm"),
        kind="orm",
        max_steps=1,
        batch_pairs=4,
        max_length=64,
    )
    output = train(config).output_dir
    recipe = json.loads((output / "rewardforge_recipe.json").read_text())
    assert recipe["kind"] == "outcome"
    assert not RewardModel.load(output).is_process  # one reward per response, as trained


def test_a_short_run_on_the_bundled_data_finds_errors_it_could_not_before(tmp_path):
    """One epoch of MiniLM on the bundled 3,000 solutions lifts ProcessBench F1 on held-out
    solutions above the untrained model's (about two minutes on 2 CPU cores)."""
    from dataclasses import replace

    from rewardforge.data.step_loader import load_step_examples
    from rewardforge.forward.plan import ForwardPlan
    from rewardforge.forward.reward_forward import RewardForward
    from rewardforge.forward.steps import sigmoid
    from rewardforge.models import load_reward_backbone
    from rewardforge.recipe import RecipeEncoder, ScoringRecipe
    from rewardforge.recipe.steps import encode_step_example
    from rewardforge.training.step_metrics import step_metrics

    train_rows, _, processbench = prm_sample_paths()
    held_out = first_rows(processbench, 160, tmp_path / "held_out.jsonl")
    examples = load_step_examples(held_out).examples
    labels = [list(s.labels) for example in examples for s in example.solutions]

    def f1(forward, encoder) -> float:
        rows = [encode_step_example(encoder, example).as_row() for example in examples]
        plan = ForwardPlan.for_model(forward, encoder)
        logits = [s for problem in plan.score(forward, rows, progress=False) for s in problem]
        probabilities = [[sigmoid(value) for value in steps] for steps in logits]
        return step_metrics(probabilities, labels)["processbench_f1"]

    import torch

    torch.manual_seed(42)
    model, tokenizer, _ = load_reward_backbone("minilm-l6", disable_dropout=True)
    recipe = replace(ScoringRecipe.for_model(tokenizer, True, 256), kind="process")
    untrained = f1(RewardForward(model).eval(), RecipeEncoder(recipe, tokenizer))
    config = TrainConfig(
        data=[train_rows],
        model="minilm-l6",
        output=str(tmp_path / "prm"),
        batch_pairs=16,
        lr=1e-4,
        max_length=256,
    )
    trained_model = RewardModel.load(train(config).output_dir, device="cpu")
    trained = f1(trained_model.reward_forward, trained_model.encoder)
    assert trained > untrained + 0.05, (untrained, trained)


def test_a_served_prm_gives_the_aggregate_the_client_asks_for(prm_dir):
    """`rlhf --reward-model http://... --aggregate mean` sends its aggregate; without one the
    server's own (min here) holds."""
    from rewardforge.policy.rlhf import _reward_model
    from rewardforge.policy.rlhf_config import RLHFConfig
    from rewardforge.serving.app import create_app
    from rewardforge.serving.config import ServerSettings
    from tests.conftest import running_server

    found = hand_step_probabilities(prm_dir, "How many apples?", STEPS[0])
    text = "\n\n".join(STEPS[0])
    app_ = create_app(RewardModel.load(prm_dir), ServerSettings())
    with running_server(app_) as url:
        for asked, expected in ((None, min(found)), ("mean", sum(found) / len(found))):
            config = RLHFConfig(
                reward_model=url, prompts="p.jsonl", policy="policy", output="out", aggregate=asked
            )
            reward = _reward_model(config).reward_function()
            got = reward(prompts=["How many apples?"], completions=[text])
            assert got == pytest.approx([expected], abs=1e-5)


def test_concurrent_prm_requests_are_batched_and_each_gets_its_steps(prm_dir):
    """PRM requests go through the server's micro-batcher like outcome requests: 24 requests
    sent at once take fewer model calls, and each gets the oracle's step probabilities."""
    import asyncio

    import httpx

    from rewardforge.serving.app import create_app
    from rewardforge.serving.config import ServerSettings
    from tests.conftest import running_server

    settings = ServerSettings(max_wait_ms=200)
    solutions = [STEPS[i % 2][: 1 + i % 3] for i in range(24)]
    with running_server(create_app(RewardModel.load(prm_dir), settings)) as url:

        async def send_all():
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                return await asyncio.gather(
                    *(
                        client.post(
                            "/v1/score",
                            json={"items": [{"prompt": "How many apples?", "completions": s}]},
                        )
                        for s in solutions
                    )
                )

        answers = asyncio.run(send_all())
        metrics = httpx.get(f"{url}/metrics").text
    assert all(answer.status_code == 200 for answer in answers)
    for answer, steps in zip(answers, solutions):
        expected = hand_step_probabilities(prm_dir, "How many apples?", steps)
        assert answer.json()["step_rewards"][0] == pytest.approx(expected, abs=1e-5)
    batches = float(metrics.split("rewardforge_batch_size_count ")[1].split()[0])
    assert 0 < batches < len(solutions)  # through the batcher, several requests a call
