"""Reward models trained elsewhere: the registry of known families, the InternLM2 conversion, and
`adopt`, which writes any of them as a rewardforge model folder."""
