"""`RewardForward` under FSDP2 on two CPU processes (gloo): accelerate sets FSDP up on GPUs only,
so this drives `fully_shard` directly around the same module the Trainer trains."""

import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from transformers import AutoModelForSequenceClassification

from rewardforge.forward.plan import ForwardPlan
from rewardforge.forward.reward_forward import RewardForward
from rewardforge.training.losses import preference_loss
from tests.test_forward_plan import build


def seeded_build(model_dir: str):
    """The tiny Llama with its (randomly initialised) reward head the same in every process."""
    torch.manual_seed(0)
    return build(model_dir)


def one_step(model: RewardForward, plan: ForwardPlan, rows) -> None:
    """One SGD step of the Bradley-Terry loss through the shared-prompt plan."""
    assert plan.share_prompt
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = plan.collate(rows)
    preference_loss(plan.rewards(model, batch), batch["margin"]).loss.backward()
    optimizer.step()


def fsdp_worker(rank: int, store: str, model_dir: str, output: str) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        model, encoder, rows = seeded_build(model_dir)
        plan = ForwardPlan.for_model(model, encoder)  # decided before sharding, as in train()
        for layer in model.backbone.layers:
            fully_shard(layer)
        fully_shard(model)
        one_step(model, plan, rows)
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(model, options=options)  # every rank takes part
        if rank == 0:
            model.classifier.save_pretrained(
                output, state_dict=RewardForward.classifier_state_dict(state)
            )
        # Leave together: a rank that tore its group down while the other was still saving was
        # aborted by gloo ("terminate called without an active exception") in one CI run.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_fsdp2_sharded_step_saves_the_same_model_as_one_process(tiny_llama_dir, tmp_path):
    output = tmp_path / "fsdp"
    store = Path(tempfile.mkdtemp()) / "store"
    mp.spawn(fsdp_worker, args=(str(store), str(tiny_llama_dir), str(output)), nprocs=2)

    model, encoder, rows = seeded_build(str(tiny_llama_dir))
    initial_head = model.transformers_model.score.weight.detach().clone()
    one_step(model, ForwardPlan.for_model(model, encoder), rows)
    saved = AutoModelForSequenceClassification.from_pretrained(output).state_dict()
    expected = model.classifier.state_dict()
    assert set(saved) == set(expected)
    for name, value in saved.items():
        torch.testing.assert_close(value, expected[name], atol=1e-6, rtol=1e-5, msg=name)
    assert not torch.allclose(saved["score.weight"], initial_head)  # the step moved the head


@pytest.mark.parametrize("layout", ["segments", "padded"])
def test_rewards_are_a_fresh_float32_tensor(tiny_llama_dir, layout):
    model, encoder, rows = build(str(tiny_llama_dir), dtype="bfloat16")
    plan = ForwardPlan(encoder.tokenizer.pad_token_id, share_prompt=layout == "segments")
    batch = plan.collate(rows)
    keys = [key for key in batch if key not in ("group_index", "rank_index", "margin")]
    with torch.no_grad():
        rewards = model(**{key: batch[key] for key in keys})
    assert rewards.dtype == torch.float32 and rewards.shape == (8,)
    assert rewards._base is None  # not a view
