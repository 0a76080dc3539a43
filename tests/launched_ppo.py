"""One PPO update on a fixed batch under `accelerate launch`, for tests/test_ppo.py:

    launched_ppo.py POLICY_DIR OUTPUT.safetensors

Every process samples the same four responses (the same seed), learns from its share of them,
and the main process saves the policy's weights after the update.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `tests`

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from tests.test_ppo import update_on_a_fixed_batch  # noqa: E402

weights, accelerator = update_on_a_fixed_batch(Path(sys.argv[1]), Path(sys.argv[2]).parent)
if accelerator.is_main_process:
    save_file(weights, sys.argv[2])
    print(f"processes: {accelerator.num_processes}")
# Leave together and destroy the group, as the CLI does (cli/commands.py): a rank that exits
# while the main process still saves is aborted by gloo ("terminate called without an active
# exception").
accelerator.wait_for_everyone()
torch.distributed.destroy_process_group()
