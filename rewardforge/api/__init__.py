"""The public API: train, evaluate and load reward models."""
