import pytest
import torch

from rewardforge.data import PreferenceExample
from rewardforge.forward.layout_check import layout_problem
from rewardforge.forward.plan import ForwardPlan
from rewardforge.forward.reward_forward import RewardForward
from rewardforge.forward.segment_attention import SEGMENT_SDPA
from rewardforge.models import load_reward_backbone
from rewardforge.recipe import RecipeEncoder, ScoringRecipe
from rewardforge.training.losses import preference_loss
from tests.conftest import TINY_DECODERS

EXAMPLES = [
    # responses that differ in length by more than 10x
    PreferenceExample("Short?", ("Yes.", "No, because " + "of many different reasons " * 12)),
    # a K=4 ranked group
    PreferenceExample(
        [{"role": "user", "content": "Rank these answers."}], ("best", "good", "fair", "poor")
    ),
    PreferenceExample("你好吗？", ("很好，谢谢。", "不好。"), margin=0.5),
]
FAMILIES = [*TINY_DECODERS, "bert"]


def build(model_dir: str, max_length: int = 256, **options):
    model, tokenizer, is_encoder = load_reward_backbone(model_dir, **options)
    encoder = RecipeEncoder(ScoringRecipe.for_model(tokenizer, is_encoder, max_length), tokenizer)
    rows = [encoder.encode_example(example).as_row() for example in EXAMPLES]
    return RewardForward(model).eval(), encoder, rows


@pytest.fixture(params=FAMILIES)
def backbone(request, tiny_decoder_dirs, tiny_bert_dir):
    directory = tiny_bert_dir if request.param == "bert" else tiny_decoder_dirs[request.param]
    return build(str(directory))


def separate_rewards(model, rows) -> list[list[float]]:
    """The reference: every response alone, unpadded, through the classifier's own forward."""
    with torch.no_grad():
        return [
            [
                model.classifier(
                    input_ids=torch.tensor([ids]),
                    **(
                        {"token_type_ids": torch.tensor([row["token_type_ids"][rank]])}
                        if "token_type_ids" in row
                        else {}
                    ),
                )
                .logits[0, 0]
                .item()
                for rank, ids in enumerate(row["input_ids"])
            ]
            for row in rows
        ]


def test_on_cpu_decoders_share_prompts_and_both_pack_through_segment_sdpa(
    tiny_llama_dir, tiny_bert_dir
):
    llama, llama_encoder, _ = build(str(tiny_llama_dir))
    bert, bert_encoder, _ = build(str(tiny_bert_dir))
    assert llama.attention_backend == bert.attention_backend == SEGMENT_SDPA
    assert ForwardPlan.for_model(llama, llama_encoder) == ForwardPlan(
        llama_encoder.tokenizer.pad_token_id, share_prompt=True, pack=True
    )
    assert ForwardPlan.for_model(bert, bert_encoder) == ForwardPlan(
        bert_encoder.tokenizer.pad_token_id, share_prompt=False, pack=True, encoder=True
    )


def test_shared_prompt_feeds_fewer_tokens(tiny_llama_dir):
    model, encoder, rows = build(str(tiny_llama_dir))
    shared = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=True).collate(rows)
    packed = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=True, pack=True)
    padded = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=False).collate(rows)
    assert shared["input_ids"].shape[0] == 3 and padded["input_ids"].shape[0] == 8
    assert shared["input_ids"].numel() < padded["input_ids"].numel()
    packed_ids = packed.collate(rows)["input_ids"]
    assert packed_ids.shape[0] == 1  # no padding at all
    assert packed_ids.numel() == sum(sum(packed.sequence_lengths(row)) for row in rows)


def segment_plan(encoder, pack: bool) -> ForwardPlan:
    """Shared prompts for decoders (packed or not); for encoders packed segments, else padded."""
    pad = encoder.tokenizer.pad_token_id
    if encoder.recipe.template == "pair":
        return ForwardPlan(pad, share_prompt=False, pack=pack, encoder=pack)
    return ForwardPlan(pad, share_prompt=True, pack=pack)


@pytest.mark.parametrize("pack", [False, True])
def test_plan_rewards_equal_separate_forwards(backbone, pack):
    model, encoder, rows = backbone
    plan = segment_plan(encoder, pack)
    with torch.no_grad():
        rewards = plan.rewards(model, plan.collate(rows))
    for group, expected in enumerate(separate_rewards(model, rows)):
        assert rewards.as_lists()[group] == pytest.approx(expected, abs=1e-5)
    # A pair is padded to the widest group, and the padding is masked, not a value.
    assert rewards.present[0].tolist() == [True, True, False, False]
    assert rewards.present[1].tolist() == [True] * 4


def test_every_decoder_family_shares_prompts(backbone):
    model, encoder, _ = backbone
    is_decoder = encoder.recipe.template != "pair"
    assert ForwardPlan.for_model(model, encoder).share_prompt == is_decoder


@pytest.mark.parametrize("pack", [False, True])
def test_plan_loss_gradient_equals_padded_rows(backbone, pack):
    model, encoder, rows = backbone
    plan = segment_plan(encoder, pack)
    padded = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=False)

    def gradients(layout: ForwardPlan) -> list[torch.Tensor]:
        model.zero_grad()
        batch = layout.collate(rows)
        preference_loss(layout.rewards(model, batch), batch["margin"], loss="bt").loss.backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    for planned, reference in zip(gradients(plan), gradients(padded), strict=True):
        torch.testing.assert_close(planned, reference, atol=1e-5, rtol=1e-4)


def test_score_keeps_input_order_under_any_budget(backbone):
    model, encoder, rows = backbone
    plan = ForwardPlan.for_model(model, encoder)
    generous = plan.score(model, rows, 100_000, progress=False)
    tight = plan.score(model, rows, 1, progress=False)
    assert [len(group) for group in generous] == [2, 4, 2]
    for wide, narrow in zip(generous, tight):
        assert narrow == pytest.approx(wide, abs=1e-5)


def distinct_prefixes(sequences) -> int:
    return len({tuple(ids[: end + 1]) for ids in sequences for end in range(len(ids))})


def test_truncated_groups_with_different_prompts_share_only_their_common_start(tiny_llama_dir):
    model, encoder, _ = build(str(tiny_llama_dir), max_length=40)
    example = PreferenceExample("a long question " * 10, ("ok", "a much longer answer " * 6))
    row = encoder.encode_example(example).as_row()
    assert row["prompt_length"][0] != row["prompt_length"][1]
    plan = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=True)
    input_ids = plan.collate([row])["input_ids"]
    assert input_ids.shape == (1, distinct_prefixes(row["input_ids"]))
    with torch.no_grad():
        got = plan.rewards(model, plan.collate([row])).as_lists()[0]
    assert got == pytest.approx(separate_rewards(model, [row])[0], abs=1e-5)


def layout_to_check(model: RewardForward, encoder) -> ForwardPlan:
    """The segment layout `ForwardPlan.for_model` would choose for this model, if it holds."""
    from rewardforge.forward import plan

    is_encoder = encoder.recipe.template == "pair"
    pad = plan.padding_id(encoder.tokenizer)
    return plan.segment_plan(pad, is_encoder, pack=plan.packs_segments(model))


def test_pure_bfloat16_model_is_not_vetoed_for_rounding(tiny_llama_dir):
    model, encoder, _ = build(str(tiny_llama_dir), dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    assert layout_problem(model, encoder, layout_to_check(model, encoder)) is None
    assert ForwardPlan.for_model(model, encoder).share_prompt


def ignore_position_ids(backbone):
    original = backbone.forward

    def forward(*args, position_ids=None, **kwargs):
        return original(*args, **kwargs)

    return forward


def ignore_attention_mask(backbone):
    original = backbone.forward

    def forward(*args, attention_mask=None, **kwargs):
        return original(*args, **kwargs)

    return forward


def drop_extra_arguments(backbone):
    """A backbone that does not hand its extra keyword arguments on to attention."""
    original = backbone.forward

    def forward(input_ids, attention_mask=None, position_ids=None, token_type_ids=None, **extra):
        types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return original(
            input_ids, attention_mask=attention_mask, position_ids=position_ids, **types
        )

    return forward


DIFFERS, REJECTED = "differs from separate forwards", "rejected the plan's attention mask"


@pytest.mark.parametrize(
    ("breakage", "caught_as"),
    [
        (ignore_position_ids, (DIFFERS,)),
        # Without the mask, the plan's attention either fails or reads across segments; which
        # one depends on the transformers release (BERT fails in 5.24 and reads in 5.25).
        (ignore_attention_mask, (REJECTED, DIFFERS)),
        (drop_extra_arguments, (REJECTED,)),
    ],
)
@pytest.mark.parametrize("model_dir", ["tiny_llama_dir", "tiny_bert_dir"])
def test_a_model_that_breaks_the_layout_is_caught(request, model_dir, breakage, caught_as):
    model, encoder, rows = build(str(request.getfixturevalue(model_dir)))
    model.backbone.forward = breakage(model.backbone)
    problem = layout_problem(model, encoder, layout_to_check(model, encoder))
    assert any(cause in problem for cause in caught_as), problem
    plan = ForwardPlan.for_model(model, encoder)
    assert plan == ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=False)
    if model.is_encoder and breakage is ignore_attention_mask:
        return  # a bidirectional model that ignores the mask reads the padding of any batch
    # the padded rows it falls back to are right even for the broken backbone
    scored = plan.score(model, rows, progress=False)
    for got, expected in zip(scored, separate_rewards(model, rows)):
        assert got == pytest.approx(expected, abs=1e-5)


def test_flex_attention_block_mask_matches_sdpa_forward(tiny_llama_dir):
    sdpa, encoder, rows = build(str(tiny_llama_dir))
    flex = RewardForward(sdpa.classifier)
    flex.transformers_model.config._attn_implementation = "flex_attention"
    packed = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=True, pack=True)
    batch = packed.collate(rows)
    with torch.no_grad():  # FlexAttention has no backward on CPU; its forward runs
        via_flex = packed.rewards(flex, batch)
        flex.transformers_model.config._attn_implementation = "sdpa"
        via_sdpa = packed.rewards(sdpa, batch)
    torch.testing.assert_close(via_flex.values, via_sdpa.values, atol=1e-5, rtol=1e-4)
    assert torch.equal(via_flex.present, via_sdpa.present)


def flex_packs_correctly(flex: RewardForward, encoder, rows) -> bool:
    """Whether FlexAttention's CPU kernel gives this CPU right answers on a packed row: the
    reward features of the packed batch, run directly (no layout check), equal each response
    alone under SDPA. In torch 2.13 it gives NaN on AVX2-only CPUs and right answers with
    AVX-512; under ATEN_CPU_CAPABILITY=default it does not compile at all."""
    sdpa = RewardForward(flex.classifier)
    batch = segment_plan(encoder, pack=True).collate(rows)
    keys = ("input_ids", "position_ids", "segment_ids", "subtree_sizes", "reward_index")
    try:
        features = flex.reward_features(*(batch[k] for k in keys), batch.get("token_type_ids"))
    except Exception:  # the kernel did not build
        return False
    flex.transformers_model.config._attn_implementation = "sdpa"
    try:
        alone = torch.cat(
            [
                sdpa.backbone(
                    input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types])
                ).last_hidden_state[:, 0]
                for row in rows
                for ids, types in zip(row["input_ids"], row["token_type_ids"])
            ]
        )
    finally:
        flex.transformers_model.config._attn_implementation = "flex_attention"
    # float32 agrees to about 1e-7 (relative) where the kernel is right
    return bool(((features - alone).norm() / alone.norm()) < 1e-5)


def test_encoders_under_flex_attention_pack_where_it_works_and_fall_back_where_not(
    tiny_bert_dir, caplog
):
    """Where FlexAttention's CPU kernel is right on this CPU, encoders pack into one row and
    match SDPA; where it is not, the plan says so in a warning and reads padded rows, whose
    rewards still match."""
    sdpa, encoder, rows = build(str(tiny_bert_dir))
    flex = RewardForward(sdpa.classifier)
    flex.transformers_model.config._attn_implementation = "flex_attention"
    # FlexAttention's forward runs on CPU (no backward); recompiled for a second length with
    # dynamic shapes, its CPU kernel fails to build in torch 2.13, so compile each length.
    static = torch._dynamo.config.patch(automatic_dynamic_shapes=False)
    try:
        with torch.no_grad(), static:
            works = flex_packs_correctly(flex, encoder, rows)
            plan = ForwardPlan.for_model(flex, encoder)
            batch = plan.collate(rows)
            rewards = plan.rewards(flex, batch)
    finally:
        flex.transformers_model.config._attn_implementation = "sdpa"
    fallback = [r.getMessage() for r in caplog.records if "padded rows" in r.getMessage()]
    if works:
        assert plan == segment_plan(encoder, pack=True) and not fallback
        assert batch["input_ids"].shape[0] == 1  # one row, no padding
        assert batch["input_ids"].numel() == sum(len(ids) for r in rows for ids in r["input_ids"])
    else:
        assert not plan.pack and len(fallback) == 1
        assert batch["input_ids"].shape[0] == sum(len(r["input_ids"]) for r in rows)
    for group, expected in enumerate(separate_rewards(sdpa, rows)):
        assert rewards.as_lists()[group] == pytest.approx(expected, abs=1e-5)


FLEX_WITHOUT_VECTOR_KERNELS = """
import logging, sys, torch
sys.path.insert(0, {root!r})
from tests.test_forward_plan import build
from rewardforge.forward.plan import ForwardPlan
from rewardforge.forward.reward_forward import RewardForward
warnings = []
logging.getLogger("rewardforge.forward.plan").addHandler(
    type("H", (logging.Handler,), {{"emit": lambda self, r: warnings.append(r.getMessage())}})()
)
sdpa, encoder, rows = build({folder!r})
flex = RewardForward(sdpa.classifier)
flex.transformers_model.config._attn_implementation = "flex_attention"
with torch.no_grad():
    plan = ForwardPlan.for_model(flex, encoder)
print("PACK", plan.pack, "WARNED", any("padded rows" in w for w in warnings))
"""


def test_flex_attention_without_vector_kernels_falls_back_to_padded_rows(tiny_bert_dir):
    """ATEN_CPU_CAPABILITY=default: FlexAttention's CPU kernel does not compile; the layout
    check must fall back, with its warning, rather than fail the run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    script = FLEX_WITHOUT_VECTOR_KERNELS.format(root=root, folder=str(tiny_bert_dir))
    environment = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PACK False WARNED True" in done.stdout


REFERENCE_EXAMPLES = [
    PreferenceExample(
        "Weather?", ("Sunny.", "Sunny and warm.", "Let me tell you " * 8), reference="Sun."
    ),
    PreferenceExample("你好吗？", ("很好。", "还行吧，谢谢。"), reference="很好，谢谢。"),
]


@pytest.mark.parametrize("family", list(TINY_DECODERS))
@pytest.mark.parametrize("pack", [False, True])
def test_reference_groups_share_one_prefix_and_match_separate_forwards(
    tiny_decoder_dirs, family, pack
):
    recipe_tokens = ["<|split|>", "<|reward|>"]
    model, tokenizer, _ = load_reward_backbone(
        str(tiny_decoder_dirs[family]), added_tokens=recipe_tokens
    )
    recipe = ScoringRecipe.for_model(tokenizer, False, 256, reference_mode=True)
    encoder = RecipeEncoder(recipe, tokenizer)
    model = RewardForward(model).eval()
    rows = [encoder.encode_example(example).as_row() for example in REFERENCE_EXAMPLES]
    plan = ForwardPlan.for_model(model, encoder)
    assert plan.share_prompt
    plan = ForwardPlan(plan.pad_token_id, share_prompt=True, pack=pack)
    assert [len(plan.sequence_lengths(row)) for row in rows] == [1, 1]  # one prefix a group
    with torch.no_grad():
        rewards = plan.rewards(model, plan.collate(rows))
    for group, expected in enumerate(separate_rewards(model, rows)):
        assert rewards.as_lists()[group] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("budget", [1, 100, 200, 10**6])
def test_micro_batches_fit_the_token_budget_longest_first(backbone, budget):
    model, encoder, rows = backbone
    plan = ForwardPlan.for_model(model, encoder)
    batches = plan.micro_batches(rows * 3, budget)
    assert sorted(index for batch in batches for index in batch) == list(range(len(rows) * 3))
    lengths = [plan.sequence_lengths(row) for row in rows * 3]
    longest = [max(lengths[index]) for batch in batches for index in batch]
    assert longest == sorted(longest, reverse=True)
    for batch in batches:
        fed = plan.batch_tokens([length for index in batch for length in lengths[index]])
        assert fed <= budget or len(batch) == 1
    if budget == 1:
        assert len(batches) == len(rows) * 3  # every group alone
    if budget == 10**6:
        assert len(batches) == 1
