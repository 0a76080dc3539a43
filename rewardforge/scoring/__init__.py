"""Using a trained reward model: `RewardModel` (load, score, compare, rank), `score_file`, and
`RemoteRewardModel`, the client of a reward server."""
