import math

import pytest
import torch

from rewardforge.data import PreferenceExample
from rewardforge.forward_plan import ForwardPlan, _shared_prompt_mask
from rewardforge.models import load_reward_backbone
from rewardforge.recipe import RecipeEncoder, ScoringRecipe
from rewardforge.training.losses import preference_loss

EXAMPLES = [
    # responses that differ in length by more than 10x
    PreferenceExample("Short?", ("Yes.", "No, because " + "of many different reasons " * 12)),
    # a K=4 ranked group
    PreferenceExample(
        [{"role": "user", "content": "Rank these answers."}], ("best", "good", "fair", "poor")
    ),
    PreferenceExample("你好吗？", ("很好，谢谢。", "不好。"), margin=0.5),
]


def build(model_dir: str, max_length: int = 256):
    model, tokenizer, is_encoder = load_reward_backbone(model_dir)
    encoder = RecipeEncoder(ScoringRecipe.for_model(tokenizer, is_encoder, max_length), tokenizer)
    rows = [encoder.encode_example(example).as_row() for example in EXAMPLES]
    return model.eval(), encoder, rows


@pytest.fixture(params=["tiny_llama_dir", "tiny_bert_dir"])
def backbone(request):
    return build(str(request.getfixturevalue(request.param)))


def separate_rewards(model, encoder, rows) -> list[list[float]]:
    """The reference: every response alone, through the model's own head."""
    padded = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=False)
    rewards = []
    for row in rows:
        group = []
        for rank in range(len(row["input_ids"])):
            alone = {k: [v[rank]] for k, v in row.items() if isinstance(v, list)}
            group.append(padded.rewards(model, padded.collate([alone]))[0, 0].item())
        rewards.append(group)
    return rewards


def test_decoders_share_prompts_and_encoders_pad(tiny_llama_dir, tiny_bert_dir):
    llama, llama_encoder, _ = build(str(tiny_llama_dir))
    bert, bert_encoder, _ = build(str(tiny_bert_dir))
    assert ForwardPlan.for_model(llama, llama_encoder).share_prompt
    assert not ForwardPlan.for_model(bert, bert_encoder).share_prompt
    assert not ForwardPlan.for_model(llama, llama_encoder, sharded=True).share_prompt


def test_shared_prompt_feeds_fewer_tokens(tiny_llama_dir):
    model, encoder, rows = build(str(tiny_llama_dir))
    shared = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=True).collate(rows)
    padded = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=False).collate(rows)
    assert shared["input_ids"].shape[0] == 3 and padded["input_ids"].shape[0] == 8
    assert shared["input_ids"].numel() < padded["input_ids"].numel()


def test_plan_rewards_equal_separate_forwards(backbone):
    model, encoder, rows = backbone
    plan = ForwardPlan.for_model(model, encoder)
    with torch.no_grad():
        rewards = plan.rewards(model, plan.collate(rows))
    for group, expected in enumerate(separate_rewards(model, encoder, rows)):
        got = rewards[group, : len(expected)].tolist()
        assert got == pytest.approx(expected, abs=1e-4)
    assert math.isnan(rewards[0, 2].item())  # a pair is padded to the widest group


def test_plan_loss_gradient_equals_separate_forwards(backbone):
    model, encoder, rows = backbone
    plan = ForwardPlan.for_model(model, encoder)
    padded = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=False)

    def gradients(layout: ForwardPlan) -> list[torch.Tensor]:
        model.zero_grad()
        batch = layout.collate(rows)
        preference_loss(layout.rewards(model, batch), batch["margin"], loss="bt").loss.backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    for planned, reference in zip(gradients(plan), gradients(padded), strict=True):
        torch.testing.assert_close(planned, reference, atol=1e-4, rtol=1e-3)


def test_score_keeps_input_order_under_any_budget(backbone):
    model, encoder, rows = backbone
    plan = ForwardPlan.for_model(model, encoder)
    generous = plan.score(model, rows, 100_000, progress=False)
    tight = plan.score(model, rows, 1, progress=False)
    assert [len(group) for group in generous] == [2, 4, 2]
    for wide, narrow in zip(generous, tight):
        assert narrow == pytest.approx(wide, abs=1e-5)


def test_truncated_groups_with_different_prompts_do_not_share(tiny_llama_dir):
    model, encoder, _ = build(str(tiny_llama_dir), max_length=40)
    example = PreferenceExample("a long question " * 10, ("ok", "a much longer answer " * 6))
    row = encoder.encode_example(example).as_row()
    assert row["prompt_length"][0] != row["prompt_length"][1]
    plan = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=True)
    assert plan.collate([row])["input_ids"].shape[0] == 2
    with torch.no_grad():
        got = plan.rewards(model, plan.collate([row]))[0].tolist()
    assert got == pytest.approx(separate_rewards(model, encoder, [row])[0], abs=1e-4)


def test_shared_mask_by_hand():
    # prompt (2 tokens), response 1 (2 tokens), response 2 (1 token), one pad
    mask = _shared_prompt_mask(torch.tensor([[0, 0, 1, 1, 2, -1]]))[0, 0].int().tolist()
    assert mask == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ]
