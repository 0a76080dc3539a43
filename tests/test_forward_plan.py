import math

import pytest
import torch

from rewardforge.data import PreferenceExample
from rewardforge.forward_plan import collate_groups, group_rewards, score_groups
from rewardforge.models import load_reward_backbone
from rewardforge.recipe import RecipeEncoder, ScoringRecipe

EXAMPLES = [
    PreferenceExample("Short?", ("Yes.", "No, because " + "of many reasons " * 10)),
    PreferenceExample(
        [{"role": "user", "content": "Rank these."}], ("best", "good", "fair", "poor")
    ),
    PreferenceExample("你好吗？", ("很好，谢谢。", "不好。")),
]


@pytest.fixture(params=["tiny_llama_dir", "tiny_bert_dir"])
def backbone(request):
    model, tokenizer, is_encoder = load_reward_backbone(str(request.getfixturevalue(request.param)))
    encoder = RecipeEncoder(ScoringRecipe.for_model(tokenizer, is_encoder, 256), tokenizer)
    rows = [encoder.encode_example(example).as_row() for example in EXAMPLES]
    return model.eval(), tokenizer, rows


def test_collate_flattens_groups(backbone):
    _, tokenizer, rows = backbone
    batch = collate_groups(rows, tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 8
    assert batch["group_index"].tolist() == [0, 0, 1, 1, 1, 1, 2, 2]
    assert batch["rank_index"].tolist() == [0, 1, 0, 1, 2, 3, 0, 1]
    assert batch["attention_mask"].sum().item() == sum(
        len(ids) for r in rows for ids in r["input_ids"]
    )


def test_batched_rewards_equal_one_at_a_time(backbone):
    model, tokenizer, rows = backbone
    with torch.no_grad():
        batched = group_rewards(model, collate_groups(rows, tokenizer.pad_token_id))
        for group, row in enumerate(rows):
            for rank in range(len(row["input_ids"])):
                alone = {
                    key: [row[key][rank]] for key in ("input_ids", "token_type_ids") if key in row
                }
                single = group_rewards(model, collate_groups([alone], tokenizer.pad_token_id))
                assert batched[group, rank].item() == pytest.approx(single[0, 0].item(), abs=1e-5)
    assert math.isnan(batched[0, 2].item())  # a pair is padded to the widest group


def test_score_groups_keeps_input_order_under_any_budget(backbone):
    model, tokenizer, rows = backbone
    generous = score_groups(model, rows, tokenizer.pad_token_id, 100_000, progress=False)
    tight = score_groups(model, rows, tokenizer.pad_token_id, 1, progress=False)
    assert [len(group) for group in generous] == [2, 4, 2]
    for wide, narrow in zip(generous, tight):
        assert narrow == pytest.approx(wide, abs=1e-5)
