"""rewardforge: train, evaluate and use reward models for RLHF on any Hugging Face backbone.

The public names load on first use, so that `import rewardforge.cli` (and `rewardforge --help`)
does not import torch, transformers and the rest.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "DataError": "rewardforge.data",
    "LoadReport": "rewardforge.data",
    "PreferenceExample": "rewardforge.data",
    "load_preferences": "rewardforge.data",
    "RemoteRewardModel": "rewardforge.api.remote_reward",
    "RewardModel": "rewardforge.api.reward_model",
    "ScoringRecipe": "rewardforge.recipe",
    "TrainConfig": "rewardforge.training.config",
    "TrainResult": "rewardforge.api.train",
    "train": "rewardforge.api.train",
    "Verifier": "rewardforge.api.verifier",
    "best_of_n": "rewardforge.api.best_of_n",
    "polar_data": "rewardforge.api.polar_data",
    "compare": "rewardforge.api.evaluate",
    "evaluate": "rewardforge.api.evaluate",
    "score_file": "rewardforge.api.score",
}
__all__ = sorted(_PUBLIC)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'rewardforge' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
