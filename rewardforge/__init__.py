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
    "RemoteRewardModel": "rewardforge.scoring.remote_reward",
    "RewardModel": "rewardforge.scoring.reward_model",
    "ScoringRecipe": "rewardforge.recipe",
    "TrainConfig": "rewardforge.training.config",
    "TrainResult": "rewardforge.training.train",
    "train": "rewardforge.training.train",
    "train_judge": "rewardforge.policy.judge_training",
    "Judge": "rewardforge.scoring.judge",
    "Verifier": "rewardforge.generation.verifier",
    "best_of_n": "rewardforge.generation.best_of_n",
    "polar_data": "rewardforge.generation.polar_data",
    "compare": "rewardforge.evaluation.evaluate",
    "evaluate": "rewardforge.evaluation.evaluate",
    "evaluate_rewardbench2": "rewardforge.evaluation.rewardbench2",
    "score_file": "rewardforge.scoring.score",
}
__all__ = sorted(_PUBLIC)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'rewardforge' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
