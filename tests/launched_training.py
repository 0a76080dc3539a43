"""The `rewardforge` CLI with hooks that record what a distributed test compares.

Run by tests/test_distributed_training.py under `accelerate launch`:

    launched_training.py RECORD_DIR [nan-on-rank-1] -- train --data ... (rewardforge's flags)

It writes the first step's gradients (after DDP's all-reduce, before clipping) from the main
process, and how many evaluation groups each process scored. With `nan-on-rank-1`, the second
process's rewards turn NaN, as a diverging run's would.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from pathlib import Path

from safetensors.torch import save_file

from rewardforge import cli
from rewardforge.forward.plan import ForwardPlan
from rewardforge.training.trainer import RewardTrainer

separator = sys.argv.index("--")
record = Path(sys.argv[1])
options = sys.argv[2:separator]
rank = int(os.environ.get("RANK", "0"))
real_step = RewardTrainer.training_step
real_score = ForwardPlan.score
real_rewards = ForwardPlan.rewards


def first_step_recorded(self, model, inputs, num_items_in_batch=None):
    loss = real_step(self, model, inputs, num_items_in_batch)
    if self.state.global_step == 0 and self.is_world_process_zero():
        parameters = self.accelerator.unwrap_model(model).named_parameters()
        gradients = {
            name: p.grad.detach().contiguous() for name, p in parameters if p.grad is not None
        }
        save_file(gradients, record / "first_step_gradients.safetensors")
    return loss


def counted(self, model, rows, *args, **kwargs):
    with (record / f"scored_by_rank{rank}.txt").open("a") as scored:
        scored.write(f"{len(rows)}\n")
    return real_score(self, model, rows, *args, **kwargs)


def poisoned(self, model, batch):
    from rewardforge.forward.plan import GroupRewards

    rewards = real_rewards(self, model, batch)
    return GroupRewards(rewards.values * float("nan"), rewards.present)


RewardTrainer.training_step = first_step_recorded
ForwardPlan.score = counted
if "nan-on-rank-1" in options and rank == 1:
    ForwardPlan.rewards = poisoned
    # Leave slowly, so that the launcher does not end the first process before it has said
    # why it stopped.
    atexit.register(time.sleep, 3)
sys.argv = ["rewardforge", *sys.argv[separator + 1 :]]
cli.main()
