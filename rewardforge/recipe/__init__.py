"""The scoring recipe (how a prompt and response become token ids, saved with the model) and
the encoder that applies it."""

from rewardforge.recipe.encoder import EncodedGroup, EncodedResponse, RecipeEncoder
from rewardforge.recipe.scoring_recipe import (
    DEFAULT_REWARD_MARKER,
    DEFAULT_SPLIT_TOKEN,
    RECIPE_FILE,
    ScoringRecipe,
)

__all__ = [
    "DEFAULT_REWARD_MARKER",
    "DEFAULT_SPLIT_TOKEN",
    "RECIPE_FILE",
    "EncodedGroup",
    "EncodedResponse",
    "RecipeEncoder",
    "ScoringRecipe",
]
