"""Reward-model evaluation: `evaluate()`, `compare()`, diagnostics, plots and the HTML report."""
