"""What a finished command prints about its run: tokens saved, a policy's or a judge's
training, in a line or two, from the main process only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def echo_tokens(in_rows: int, fed: int) -> None:
    """What sharing prompts saved, when it saved anything."""
    if fed < in_rows:
        typer.echo(
            f"fed {fed:,} of the rows' {in_rows:,} tokens: a prompt shared by several rows "
            "is read once"
        )


def is_main_process() -> bool:
    """False in the other processes of an `accelerate launch` run, which print nothing."""
    from accelerate import PartialState

    return PartialState().is_main_process


def report_policy_run(name: str, metrics: dict[str, Any], output: Path) -> None:
    if not is_main_process():
        return
    typer.echo(
        f"{name}: {metrics['steps']} steps on {metrics['train_examples']} examples, "
        f"loss {metrics['train_loss']:.4f}; saved to {output}"
    )


def report_judge_run(
    output: Path, metrics: dict[str, Any], evaluation: dict[str, Any] | None
) -> None:
    """`train --kind generative`: what was trained, and the judge's eval figures if measured."""
    if not is_main_process():
        return
    typer.echo(
        f"judge: {metrics['steps']} steps on {metrics['train_questions']} questions, loss "
        f"{metrics['train_loss']:.4f}; saved to {output}"
    )
    if evaluation is not None:
        if "accuracy" in evaluation:
            typer.echo(f"eval: pointwise accuracy {evaluation['accuracy']:.4f}")
        typer.echo(judge_line(evaluation["judge"]))


def judge_line(judged: dict[str, Any]) -> str:
    """A judge's figures (`evaluation/judge_metrics.py`) in one line."""
    parts = []
    if "pairwise_accuracy" in judged:
        parts.append(
            f"{judged['pairs']} pairs asked in both orders: pairwise accuracy "
            f"{judged['pairwise_accuracy']:.4f} (better answer first "
            f"{judged['in_order_accuracy']:.4f}, second {judged['swapped_accuracy']:.4f}), "
            f"position bias {judged['position_bias']:.2f}"
        )
    if "agreement" in judged:
        parts.append(f"agrees with its pointwise rewards on {judged['agreement']:.0%}")
    if "graded_pairs" in judged:
        accuracy = judged["grade_accuracy"]
        parts.append(
            f"{judged['graded_pairs']} of {judged['pairs']} pairs graded: grade accuracy "
            + ("n/a" if accuracy is None else f"{accuracy:.4f} (ties {judged['grade_ties']:.0%})")
        )
    if "unparsed_rate" in judged:
        parts.append(
            f"{judged['unparsed_rate']:.0%} of {judged['replies']} replies without a verdict"
        )
    return "judge, " + ", ".join(parts)
