"""rewardforge: train, evaluate and use reward models for RLHF on any Hugging Face backbone."""

from rewardforge.api.best_of_n import best_of_n
from rewardforge.api.evaluate import compare, evaluate
from rewardforge.api.reward_model import RewardModel
from rewardforge.api.score import score_file
from rewardforge.api.train import TrainResult, train
from rewardforge.api.verifier import Verifier
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
    "Verifier",
    "best_of_n",
    "compare",
    "evaluate",
    "load_preferences",
    "score_file",
    "train",
]
__version__ = "0.1.0"
