"""PPO for `rlhf --algo ppo`: TRL no longer ships a PPO trainer, so this one is rewardforge's.

`advantages.py` turns a rollout's scores into per-token rewards and GAE advantages, `losses.py`
holds the clipped objectives, `value_model.py` the critic, `rollout.py` samples and measures a
batch, `trainer.py` runs the loop. Each part follows InstructGPT, "The N+ Implementation Details
of RLHF with PPO" (Huang et al., 2024) and OpenRLHF's PPO, and is tested against hand
computations.
"""
