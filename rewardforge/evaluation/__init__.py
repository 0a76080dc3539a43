"""Evaluation layer: diagnostics of a scored preference set, plots and the HTML report."""
