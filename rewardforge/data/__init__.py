"""Data layer: every input format becomes a list of `PreferenceExample`."""

from rewardforge.data.example import Message, PreferenceExample, Prompt
from rewardforge.data.loader import DataError, LoadReport, load_preferences

__all__ = [
    "DataError",
    "LoadReport",
    "Message",
    "PreferenceExample",
    "Prompt",
    "load_preferences",
]
