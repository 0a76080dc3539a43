"""A process reward model's forward: every step of several solutions to one problem, read in one
packed, prompt-shared forward, equals each solution run alone (rewards and gradients, fp32)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from rewardforge.data.steps import Solution, StepExample
from rewardforge.forward.plan import ForwardPlan
from rewardforge.forward.reward_forward import RewardForward
from rewardforge.forward.steps import step_rewards
from rewardforge.models import load_reward_backbone
from rewardforge.recipe import RecipeEncoder, ScoringRecipe
from rewardforge.recipe.steps import encode_step_example

EXAMPLES = [
    StepExample(
        "Tom has 2 apples and buys 3 more. How many apples?",
        (
            Solution(("2 + 3 = 5.", "The answer is 5."), (1.0, 1.0)),
            Solution(("2 + 3 = 6.", "The answer is 6."), (0.0, 0.0)),
            Solution(("He starts with 2.", "Adding 3 gives 5.", "So 5."), (1.0, 0.75, 1.0)),
            # the first step of the first solution, then its own: one shared step
            Solution(("2 + 3 = 5.", "The answer is 6."), (1.0, 0.0)),
            # the first solution again, labelled otherwise: read once, trained on both labels
            Solution(("2 + 3 = 5.", "The answer is 5."), (0.5, 1.0)),
        ),
    ),
    StepExample("你好，一共几个？", (Solution(("一个。", "答案是一。"), (1.0, 0.0)),)),
]


def build(model_dir, is_encoder: bool):
    torch.manual_seed(0)
    model, tokenizer, _ = load_reward_backbone(str(model_dir), disable_dropout=True)
    forward = RewardForward(model)
    recipe = replace(ScoringRecipe.for_model(tokenizer, is_encoder, 256), kind="process")
    encoder = RecipeEncoder(recipe, tokenizer)
    rows = [encode_step_example(encoder, example).as_row() for example in EXAMPLES]
    return forward, ForwardPlan.for_model(forward, encoder), rows, tokenizer


def ends_by_hand(tokenizer, ids: list[int], steps: tuple[str, ...], encoder: bool) -> list[int]:
    """Where each step's reward is read, found here from the token ids: a decoder at the last
    token of the blank line after the step, an encoder (whose tokenizer drops blank lines) at
    the step's own last token, in the second segment."""
    if encoder:
        ends, start = [], ids.index(tokenizer.sep_token_id) + 1
        for step in steps:
            piece = tokenizer(step, add_special_tokens=False)["input_ids"]
            start = next(i for i in range(start, len(ids)) if ids[i : i + len(piece)] == piece)
            start += len(piece)
            ends.append(start - 1)
        return ends
    ends, text = [], ""
    for step in steps:
        text += step + "\n\n"
        ends.append(
            next(e for e in range(len(ids)) if tokenizer.decode(ids[: e + 1]).endswith(text))
        )
    return ends


def alone(forward: RewardForward, row: dict, example: StepExample, tokenizer) -> list:
    """Each solution in its own forward, the head read where `ends_by_hand` says."""
    rewards = []
    for index, ids in enumerate(row["input_ids"]):
        inputs = {"input_ids": torch.tensor([ids])}
        if "token_type_ids" in row:
            inputs["token_type_ids"] = torch.tensor([row["token_type_ids"][index]])
        hidden = forward.backbone(**inputs).last_hidden_state[0]
        steps = example.solutions[index].steps
        ends = ends_by_hand(tokenizer, ids, steps, encoder="token_type_ids" in row)
        rewards.append(forward._head(hidden[ends])[:, 0])
    return rewards


@pytest.mark.parametrize("kind", ["decoder", "encoder"])
def test_shared_steps_equal_each_solution_alone(kind, tiny_llama_dir, tiny_bert_dir):
    model_dir = tiny_llama_dir if kind == "decoder" else tiny_bert_dir
    forward, plan, rows, tokenizer = build(model_dir, is_encoder=kind == "encoder")
    assert plan.pack  # the layout under test: solutions packed (and, for decoders, shared)
    fed = plan.collate(rows)["input_ids"].numel()
    if kind == "decoder":  # every distinct prefix once: the prompt, shared steps, duplicates
        prefixes = [
            {tuple(ids[: n + 1]) for ids in row["input_ids"] for n in range(len(ids))}
            for row in rows
        ]
        assert fed == sum(len(problem) for problem in prefixes)
    else:  # both ways: only a duplicate solution is read once
        assert fed == sum(len(ids) for row in rows for ids in {tuple(i) for i in row["input_ids"]})
    shared = plan.score(forward, rows, progress=False)
    for row, got, example in zip(rows, shared, EXAMPLES):
        expected = [
            [value.item() for value in solution]
            for solution in alone(forward, row, example, tokenizer)
        ]
        assert [len(s) for s in got] == [len(s) for s in row["step_labels"]]
        for got_solution, expected_solution in zip(got, expected):
            assert got_solution == pytest.approx(expected_solution, abs=1e-5)

    forward.train()
    batch = plan.collate(rows)
    loss = F.binary_cross_entropy_with_logits(
        step_rewards(forward, batch).values, batch["step_labels"]
    )
    loss.backward()
    packed = {name: p.grad.clone() for name, p in forward.named_parameters() if p.grad is not None}
    forward.zero_grad()
    values = torch.cat(
        [torch.cat(alone(forward, row, e, tokenizer)) for row, e in zip(rows, EXAMPLES)]
    )
    labels = torch.tensor([label for row in rows for s in row["step_labels"] for label in s])
    F.binary_cross_entropy_with_logits(values, labels).backward()
    for name, parameter in forward.named_parameters():
        if name in packed:
            torch.testing.assert_close(packed[name], parameter.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_each_step_is_read_at_its_separator(tiny_llama_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    _, _, rows, _ = build(tiny_llama_dir, is_encoder=False)
    solutions = EXAMPLES[0].solutions
    for ids, ends, solution in zip(rows[0]["input_ids"], rows[0]["step_ends"], solutions):
        texts = [tokenizer.decode(ids[: end + 1]) for end in ends]
        for text, step in zip(texts, solution.steps):  # each step's reward: after its separator
            assert text.endswith(step + "\n\n")
    assert rows[0]["step_labels"][2] == [1.0, 0.75, 1.0]  # soft labels kept
