"""Serving layer: the HTTP reward server on top of `RewardModel`."""
