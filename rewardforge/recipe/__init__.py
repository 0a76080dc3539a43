"""The scoring recipe (how a prompt and response become token ids, saved with the model) and
the encoder that applies it."""

from rewardforge.recipe.scoring_recipe import (
    DEFAULT_REWARD_MARKER,
    DEFAULT_SPLIT_TOKEN,
    DEFAULT_STEP_SEPARATOR,
    RECIPE_FILE,
    ScoringRecipe,
)

__all__ = [
    "DEFAULT_REWARD_MARKER",
    "DEFAULT_SPLIT_TOKEN",
    "DEFAULT_STEP_SEPARATOR",
    "RECIPE_FILE",
    "EncodedGroup",
    "EncodedResponse",
    "RecipeEncoder",
    "ScoringRecipe",
]
_ENCODER_NAMES = ("EncodedGroup", "EncodedResponse", "RecipeEncoder")


def __getattr__(name: str):
    # The encoder imports transformers (seconds); the CLI reads this package's recipe and
    # family registry to build its flags, so the encoder is imported when first asked for.
    if name in _ENCODER_NAMES:
        from rewardforge.recipe import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
