"""Models layer: backbone resolution, the reward head, LoRA."""

from rewardforge.models.backbones import resolve_backbone
from rewardforge.models.reward_head import LoraSettings, load_reward_backbone

__all__ = ["LoraSettings", "load_reward_backbone", "resolve_backbone"]
