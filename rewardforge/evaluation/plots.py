"""PNG plots of an evaluation: reward distributions, calibration, length, training curves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402 (the backend is chosen first)

from rewardforge.evaluation.diagnostics import ScoredExample  # noqa: E402


def write_plots(
    examples: Sequence[ScoredExample],
    metrics: dict[str, Any],
    directory: Path,
    prefix: str = "",
    training_log: Path | None = None,
) -> dict[str, Path]:
    """Write every plot that the data supports; returns {title: PNG path}."""
    plots = {
        "Reward distribution": reward_histogram(examples, directory / f"{prefix}rewards.png"),
        "Reliability diagram": reliability_diagram(
            metrics["calibration"], directory / f"{prefix}reliability.png"
        ),
        "Reward vs response length": reward_vs_length(
            examples, directory / f"{prefix}reward_vs_length.png"
        ),
    }
    if training_log is not None and training_log.is_file():
        plots["Training curves"] = training_curves(
            training_log, directory / f"{prefix}training.png"
        )
    return plots


def reward_histogram(examples: Sequence[ScoredExample], path: Path) -> Path:
    """Histograms of the preferred responses' rewards against the others'."""
    chosen = [ex.rewards[0] for ex in examples]
    rejected = [reward for ex in examples for reward in ex.rewards[1:]]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.hist(chosen, bins=30, alpha=0.6, label=f"chosen ({len(chosen)})", color="tab:green")
    axes.hist(rejected, bins=30, alpha=0.6, label=f"rejected ({len(rejected)})", color="tab:red")
    axes.set(xlabel="reward", ylabel="responses", title="Rewards of chosen and rejected responses")
    axes.legend()
    return _save(figure, path)


def reliability_diagram(calibration: dict[str, Any], path: Path) -> Path:
    """Mean predicted win probability against the observed win rate, per bin."""
    bins = calibration["bins"]
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.bar(
        [b["low"] for b in bins],
        [b["win_rate"] for b in bins],
        width=[b["high"] - b["low"] for b in bins],
        align="edge",
        alpha=0.5,
        edgecolor="black",
        label="observed win rate",
    )
    axes.plot(
        [b["mean_probability"] for b in bins],
        [b["win_rate"] for b in bins],
        marker="o",
        color="tab:blue",
        label="bin mean",
    )
    axes.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="predicted P(a preferred) = sigmoid(r_a - r_b)",
        ylabel="observed share preferred",
        title=f"Reliability (ECE {calibration['ece']:.3f})",
    )
    axes.legend(loc="upper left")
    return _save(figure, path)


def reward_vs_length(examples: Sequence[ScoredExample], path: Path) -> Path:
    """Scatter of reward against response length in tokens."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, color, rank in (("chosen", "tab:green", 0), ("rejected", "tab:red", 1)):
        points = [
            (ex.lengths[i], ex.rewards[i])
            for ex in examples
            for i in range(len(ex.rewards))
            if (i == 0) == (rank == 0)
        ]
        axes.scatter(*zip(*points), s=8, alpha=0.5, color=color, label=label)
    axes.set(xlabel="response length (tokens)", ylabel="reward", title="Reward vs length")
    axes.legend()
    return _save(figure, path)


def training_curves(log_path: Path, path: Path) -> Path:
    """Loss and accuracy over steps from a training `log.jsonl`, with the evaluation points."""
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    _curve(loss_axes, records, "loss", "Loss")
    _curve(accuracy_axes, records, "accuracy", "Accuracy")
    accuracy_axes.set(ylim=(0, 1))
    return _save(figure, path)


def policy_curves(log_path: Path, path: Path) -> Path:
    """Reward, KL to the reference policy and completion length over steps of an RLHF run,
    with the held-out reward as marked points."""
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    figure, (reward_axes, kl_axes, length_axes) = plt.subplots(1, 3, figsize=(14, 4))
    _curve(reward_axes, records, "reward", "Mean reward")
    _curve(kl_axes, records, "kl", "KL to the reference policy")
    _curve(length_axes, records, "completions/mean_length", "Completion length (tokens)")
    return _save(figure, path)


PPO_CURVES = (
    ("reward", "Mean score"),
    ("kl", "KL to the reference (per token)"),
    ("total_reward", "Score minus KL penalty"),
    ("entropy", "Entropy (per token)"),
    ("policy_loss", "Policy loss"),
    ("value_loss", "Value loss"),
    ("clipfrac", "Share of tokens clipped"),
    ("approx_kl", "Approximate KL to the rollout policy"),
    ("explained_variance", "Explained variance of the critic"),
    ("completions/mean_length", "Response length (tokens)"),
    ("no_eos_share", "Share of responses without EOS"),
    ("kl_per_response", "KL to the reference (per response)"),
    ("kl_coef", "KL coefficient"),
)


def ppo_curves(log_path: Path, path: Path) -> Path:
    """Every quantity a PPO run logs, one panel each, over steps."""
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    rows = -(-len(PPO_CURVES) // 4)
    figure, grid = plt.subplots(rows, 4, figsize=(18, 3.3 * rows))
    for axes, (name, title) in zip(grid.flat, PPO_CURVES):
        _curve(axes, records, name, title)
    for axes in grid.flat[len(PPO_CURVES) :]:
        axes.set_visible(False)
    return _save(figure, path)


def _curve(axes: plt.Axes, records: list[dict[str, Any]], name: str, title: str) -> None:
    """Training values of `name` as a line, `eval_<name>` values as marked points."""
    logged = False
    for key, style in ((name, {}), (f"eval_{name}", {"marker": "o"})):
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            axes.plot(*zip(*points), label=key.replace("_", " "), **style)
            logged = True
    axes.set(xlabel="step", ylabel=name, title=title)
    if logged:
        axes.legend()
    else:
        axes.text(0.5, 0.5, f"no {name} logged", ha="center", va="center", transform=axes.transAxes)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
