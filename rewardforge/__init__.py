"""rewardforge: train, evaluate and use reward models for RLHF on any Hugging Face backbone."""

from rewardforge.api.evaluate import compare, evaluate
from rewardforge.api.reward_model import RewardModel
from rewardforge.api.train import TrainResult, train
from rewardforge.data import DataError, LoadReport, PreferenceExample, load_preferences
from rewardforge.recipe import ScoringRecipe
from rewardforge.training.config import TrainConfig

__all__ = [
    "DataError",
    "LoadReport",
    "PreferenceExample",
    "RewardModel",
    "ScoringRecipe",
    "TrainConfig",
    "TrainResult",
    "compare",
    "evaluate",
    "load_preferences",
    "train",
]
__version__ = "0.1.0"
