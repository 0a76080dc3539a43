"""Training layer: losses, the run configuration and the transformers.Trainer subclass."""
