"""Reward-model training: `train()`, its config, the Trainer subclass, losses and callbacks."""
