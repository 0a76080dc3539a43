import pytest
import torch
from transformers import TrainingArguments

from rewardforge.forward_plan import ForwardPlan
from rewardforge.training.losses import preference_loss
from rewardforge.training.trainer import RewardTrainer
from tests.test_forward_plan import build


@pytest.fixture(params=["tiny_llama_dir", "tiny_bert_dir"])
def trainer_and_rows(request, tmp_path):
    model, encoder, rows = build(str(request.getfixturevalue(request.param)))
    plan = ForwardPlan.for_model(model, encoder)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = RewardTrainer(
        model=model,
        args=args,
        data_collator=plan.collate,
        loss_options={"loss": "bt", "pairs": "all", "hinge_margin": 1.0, "center_coef": 0.0},
        plan=plan,
        eval_rows=None,
        max_tokens_per_batch=4096,
    )
    return trainer, plan, rows


def gradient(model: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    return torch.cat(grads)


def test_uneven_micro_batches_weigh_every_pair_the_same(trainer_and_rows):
    """Micro-batches of 1 and 2 groups, accumulated, give the gradient of one batch of all 3."""
    trainer, plan, rows = trainer_and_rows
    model = trainer.model.eval()  # no dropout: both passes must see the same network
    full = plan.collate(rows)
    preference_loss(plan.rewards(model, full), full["margin"]).loss.backward()
    expected = gradient(model)

    micro_batches = [plan.collate(rows[:1]), plan.collate(rows[1:])]
    pairs = trainer._get_num_items_in_batch(micro_batches, torch.device("cpu"))
    assert int(pairs) == 1 + 6 + 1  # a pair, a K=4 group, a pair
    for batch in micro_batches:
        trainer.compute_loss(model, batch, num_items_in_batch=pairs).backward()
    torch.testing.assert_close(gradient(model), expected, rtol=1e-4, atol=1e-6)
