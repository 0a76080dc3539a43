import math

import datasets
import pytest
import torch
from transformers import TrainingArguments

from rewardforge.forward.plan import ForwardPlan
from rewardforge.training.losses import LossOptions, preference_loss
from rewardforge.training.trainer import RewardTrainer
from tests.test_forward_plan import build

LOSS_OPTIONS = LossOptions()


def reward_trainer(model, plan, args, micro_batch_tokens=4096, **kwargs) -> RewardTrainer:
    return RewardTrainer(
        model=model,
        args=args,
        loss_options=LOSS_OPTIONS,
        plan=plan,
        eval_rows=None,
        max_tokens_per_batch=4096,
        max_tokens_per_micro_batch=micro_batch_tokens,
        **kwargs,
    )


@pytest.fixture(params=["tiny_llama_dir", "tiny_bert_dir"])
def trainer_and_rows(request, tmp_path):
    model, encoder, rows = build(str(request.getfixturevalue(request.param)), disable_dropout=True)
    plan = ForwardPlan.for_model(model, encoder)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    return reward_trainer(model, plan, args), plan, rows


def gradient(model: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    return torch.cat(grads)


@pytest.mark.parametrize(("budget", "micro_batches"), [(1, 3), (120, 2), (math.inf, 1)])
def test_a_step_cut_by_tokens_weighs_every_pair_the_same(trainer_and_rows, budget, micro_batches):
    """However the token budget cuts a step's groups, its gradient is that of one batch."""
    trainer, plan, rows = trainer_and_rows
    model = trainer.model
    full = plan.collate(rows)
    preference_loss(plan.rewards(model, full), full["margin"]).loss.backward()
    expected = gradient(model)

    trainer.max_tokens_per_micro_batch = budget
    step = trainer._collate_step(rows)
    assert len(step["micro_batches"]) == micro_batches
    pairs = trainer.loss_terms_in_step([step], torch.device("cpu"))
    assert int(pairs) == 1 + 6 + 1  # a pair, a K=4 group, a pair
    embedding = model.transformers_model.get_input_embeddings()
    arriving_layouts = []
    embedding.weight.register_hook(lambda grad: arriving_layouts.append(grad.layout))
    step_loss = trainer.training_step(model, step, num_items_in_batch=pairs)
    # One CPU process: sparse embedding gradients during the step, dense for the optimizer.
    assert arriving_layouts == [torch.sparse_coo] * micro_batches
    assert embedding.weight.grad.layout == torch.strided and not embedding.sparse
    torch.testing.assert_close(gradient(model), expected, rtol=1e-4, atol=1e-6)
    expected_loss = preference_loss(plan.rewards(model, full), full["margin"]).loss
    assert step_loss.item() == pytest.approx(expected_loss.item(), rel=1e-5)


def test_bf16_autocast_runs_backbone_and_head_through_the_shared_plan(tiny_llama_dir, tmp_path):
    """The Trainer's CPU bf16 path: autocast covers the head, master weights stay float32."""
    model, encoder, rows = build(str(tiny_llama_dir))
    plan = ForwardPlan.for_model(model, encoder)
    assert plan.share_prompt
    head_output_dtypes = []
    model.transformers_model.score.register_forward_hook(
        lambda module, inputs, output: head_output_dtypes.append(output.dtype)
    )
    args = TrainingArguments(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        bf16=True,
        max_steps=2,
        per_device_train_batch_size=2,
        remove_unused_columns=False,
        save_strategy="no",
    )
    trainer = reward_trainer(model, plan, args, train_dataset=datasets.Dataset.from_list(rows))
    result = trainer.train()
    assert head_output_dtypes and set(head_output_dtypes) == {torch.bfloat16}
    assert math.isfinite(result.training_loss)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_pure_bfloat16_step_keeps_the_sparse_embedding_gradient_in_bfloat16(
    tiny_llama_dir, tmp_path
):
    """`--dtype bfloat16` on CPU: the sparse embedding gradient comes back dense, finite, bf16."""
    model, encoder, rows = build(str(tiny_llama_dir), dtype="bfloat16", disable_dropout=True)
    plan = ForwardPlan.for_model(model, encoder)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = reward_trainer(model, plan, args, micro_batch_tokens=1)
    step = trainer._collate_step(rows)
    assert len(step["micro_batches"]) == 3
    pairs = trainer.loss_terms_in_step([step], torch.device("cpu"))
    embedding = model.transformers_model.get_input_embeddings()
    arriving_layouts = []
    embedding.weight.register_hook(lambda grad: arriving_layouts.append(grad.layout))
    loss = trainer.training_step(model, step, num_items_in_batch=pairs)
    assert math.isfinite(loss.item())
    assert arriving_layouts == [torch.sparse_coo] * 3
    embedding_gradient = embedding.weight.grad
    assert embedding_gradient.layout == torch.strided
    assert embedding_gradient.dtype == torch.bfloat16
    assert embedding_gradient.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    ("method", "parameters", "caller"),
    [
        # LoRA checkpoints hold only the trained weights: Trainer.save_model hands _save the
        # state dict to write, and no public hook can.
        ("_save", ["self", "output_dir", "state_dict"], "save_model"),
        # Resuming such a checkpoint leaves the frozen weights out on purpose: only a trained
        # weight missing is worth a warning, and Trainer has no public hook for that either.
        ("_issue_warnings_after_load", ["self", "load_result"], "_load_from_checkpoint"),
    ],
)
def test_the_private_trainer_methods_we_override_are_still_there(method, parameters, caller):
    """RewardTrainer overrides two private transformers.Trainer methods. If transformers
    renames, re-signs or stops calling one, this fails and names it, instead of LoRA
    checkpoints silently growing to the whole model or resume warning about frozen weights."""
    import inspect

    from transformers import Trainer

    where = f"transformers.Trainer.{method} (overridden by RewardTrainer.{method})"
    assert hasattr(Trainer, method), f"{where} no longer exists"
    assert list(inspect.signature(getattr(Trainer, method)).parameters) == parameters, (
        f"{where} changed its parameters"
    )
    assert f"self.{method}(" in inspect.getsource(getattr(Trainer, caller)), (
        f"{where} is no longer called by Trainer.{caller}"
    )
    assert getattr(RewardTrainer, method) is not getattr(Trainer, method)
