"""One self-contained `report.html` (plots embedded) and a short terminal table."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SHOWN_DISAGREEMENTS = 50
SHOWN_RANK_CHANGES = 20  # examples drawn in the terminal; the report and --json keep all

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: left; }
th { background: #f3f3f3; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; }
figcaption { font-weight: 600; }
"""


def summary_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline numbers as (name, value) rows, for the terminal and the report."""
    if "step_accuracy" in metrics:
        return step_summary_rows(metrics)
    low, high = metrics["accuracy_ci95"]
    bias = metrics["length_bias"]
    rows = [
        ("pairs", str(metrics["n_pairs"])),
        ("accuracy (ties wrong)", f"{metrics['accuracy']:.4f}  [95% CI {low:.4f}, {high:.4f}]"),
        ("mean margin", f"{metrics['mean_margin']:.4f}"),
        ("loss (BT)", f"{metrics['loss']:.4f}"),
        ("calibration error (ECE)", f"{metrics['calibration']['ece']:.4f}"),
        ("reward~length Pearson / Spearman", f"{_num(bias['pearson'])} / {_num(bias['spearman'])}"),
        ("accuracy, chosen longer", _split(bias["chosen_longer"])),
        ("accuracy, chosen shorter", _split(bias["chosen_shorter"])),
    ]
    if "ranking" in metrics:
        ranking = metrics["ranking"]
        rows += [
            (
                f"best-of-N accuracy ({ranking['n_groups']} groups)",
                f"{ranking['best_of_n_accuracy']:.4f}",
            ),
            ("Kendall tau (mean)", f"{ranking['kendall_tau']:.4f}"),
        ]
    return rows


def step_summary_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """A process reward model's headline numbers: step accuracy and ProcessBench's metrics."""

    def with_interval(name: str) -> str:
        if math.isnan(metrics[name]):  # no solutions of the kind it counts
            return "undefined (no solutions of this kind in the data)"
        low, high = metrics.get(f"{name}_ci95", (math.nan, math.nan))
        return f"{metrics[name]:.4f}  [95% CI {low:.4f}, {high:.4f}]"

    rows = [
        (
            "problems / solutions / steps",
            f"{metrics['n_problems']} / {metrics['n_solutions']} / {metrics['n_steps']}",
        ),
        ("step accuracy", with_interval("step_accuracy")),
        (
            "ProcessBench: wrong solutions, first error found",
            with_interval("processbench_error_acc"),
        ),
        (
            "ProcessBench: correct solutions, none flagged",
            with_interval("processbench_correct_acc"),
        ),
        ("ProcessBench F1", with_interval("processbench_f1")),
    ]
    best = metrics.get("best_of_n") or {}
    if best:
        picks = ", ".join(f"{how} {best[how]:.3f}" for how in ("min", "last", "prod", "mean"))
        rows.append(
            (f"best-of-N ({best['n_problems']} problems)", f"{picks}; oracle {best['oracle']:.3f}")
        )
    return rows


def terminal_table(reports: dict[str, dict[str, Any]]) -> str:
    """Headline numbers of one or more models, one column each."""
    labels = list(reports)
    columns = [dict(summary_rows(reports[label])) for label in labels]
    names = list(columns[0])
    width = max(len(name) for name in names) + 2
    lines = [" " * width + "  ".join(f"{label:<36}" for label in labels)]
    for name in names:
        lines.append(f"{name:<{width}}" + "  ".join(f"{col[name]:<36}" for col in columns))
    for label, metrics in reports.items():
        for category, values in metrics.get("categories", {}).items():
            lines.append(f"{label} / category {category}: {_split(values)}")
    return "\n".join(line.rstrip() for line in lines)


def print_rank_changes(changes: list[dict[str, Any]], preferred_first: dict[str, float]) -> None:
    """Each example's candidates with both models' rewards and ranks, as terminal tables."""
    from rich.console import Console
    from rich.table import Table

    from rewardforge.data.conversation import prompt_as_text

    console = Console()
    first, second = preferred_first
    for example in changes[:SHOWN_RANK_CHANGES]:
        prompt = example["prompt"]
        prompt = prompt_as_text(prompt).strip()
        reference = example["reference"]
        table = Table(
            title=f"{example['source']}: {prompt[:80]}",
            title_justify="left",
            caption=f"reference: {reference[:80]}" if reference else None,
            caption_justify="left",
        )
        for column in ("candidate (labelled best first)", first, second, "rank", "change"):
            table.add_column(column, overflow="fold")
        for candidate in example["candidates"]:
            ranks, rewards = candidate["ranks"], candidate["rewards"]
            change = candidate["rank_change"]
            table.add_row(
                candidate["response"][:60],
                f"{rewards[first]:.4f}",
                f"{rewards[second]:.4f}",
                f"{ranks[first]} -> {ranks[second]}",
                f"{change:+d}" if change else "",
            )
        console.print(table)
    if len(changes) > SHOWN_RANK_CHANGES:
        print(f"... {len(changes) - SHOWN_RANK_CHANGES} more examples in --report or --json")
    print(
        "preferred answer ranked first: "
        + ", ".join(f"{label} {share:.2%}" for label, share in preferred_first.items())
        + f" of {len(changes)} examples"
    )


def write_html(
    path: Path,
    title: str,
    reports: dict[str, dict[str, Any]],
    plots: dict[str, dict[str, Path]],
    disagreements: Sequence[dict[str, Any]] | None = None,
    rank_changes: Sequence[dict[str, Any]] | None = None,
) -> Path:
    """Write the report: summary table, categories, plots per model, disagreements and, for a
    comparison, every example's candidates ranked by both models."""
    labels = list(reports)
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>",
        f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>",
        "<h2>Summary</h2><table><tr><th></th>"
        + "".join(f"<th>{_e(label)}</th>" for label in labels)
        + "</tr>",
    ]
    columns = [dict(summary_rows(reports[label])) for label in labels]
    for name in columns[0]:
        cells = "".join(f"<td>{_e(column.get(name, ''))}</td>" for column in columns)
        parts.append(f"<tr><th>{_e(name)}</th>{cells}</tr>")
    parts.append("</table>")
    for label in labels:
        categories = reports[label].get("categories")
        if categories:
            parts.append(f"<h2>Per category: {_e(label)}</h2>{_category_table(categories)}")
    for label in labels:
        parts.append(f"<h2>Plots: {_e(label)}</h2><div class='plots'>")
        for caption, png in plots[label].items():
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            parts.append(
                f"<figure><figcaption>{_e(caption)}</figcaption>"
                f"<img src='data:image/png;base64,{data}' alt='{_e(png.name)}'>"
                f"<br><a href='{_e(png.name)}'>{_e(png.name)}</a></figure>"
            )
        parts.append("</div>")
    if disagreements is not None:
        parts.append(_disagreement_table(labels, disagreements))
    if rank_changes is not None:
        parts.append(_rank_change_tables(labels, rank_changes))
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _category_table(categories: dict[str, dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{values['n_pairs']}</td><td>{_split(values)}</td></tr>"
        for name, values in categories.items()
    )
    return f"<table><tr><th>category</th><th>pairs</th><th>accuracy</th></tr>{rows}</table>"


def _disagreement_table(labels: list[str], disagreements: Sequence[dict[str, Any]]) -> str:
    first, second = labels
    header = (
        f"<h2>Disagreements ({len(disagreements)} examples)</h2>"
        f"<p>Examples that one model orders right and the other wrong; all are in "
        f"disagreements.jsonl, the first {SHOWN_DISAGREEMENTS} are shown.</p>"
        f"<table><tr><th>source</th><th>prompt</th><th>{_e(first)} rewards</th>"
        f"<th>{_e(second)} rewards</th><th>right</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{_e(item['source'])}</td><td>{_e(item['prompt'][:200])}</td>"
        f"<td>{_e(_rewards(item['rewards'][first]))}</td>"
        f"<td>{_e(_rewards(item['rewards'][second]))}</td>"
        f"<td>{_e(item['right'])}</td></tr>"
        for item in disagreements[:SHOWN_DISAGREEMENTS]
    )
    return header + rows + "</table>"


def _rank_change_tables(labels: list[str], rank_changes: Sequence[dict[str, Any]]) -> str:
    first, second = labels
    parts = [
        f"<h2>Rankings side by side ({len(rank_changes)} examples)</h2>"
        f"<p>All are in rank_changes.jsonl; the first {SHOWN_DISAGREEMENTS} are shown.</p>"
    ]
    for example in rank_changes[:SHOWN_DISAGREEMENTS]:
        reference = example.get("reference")
        parts.append(
            f"<h3>{_e(example['source'])}: {_e(str(example['prompt'])[:200])}</h3>"
            + (f"<p>reference: {_e(reference)}</p>" if reference else "")
            + f"<table><tr><th>candidate (labelled best first)</th><th>{_e(first)}</th>"
            f"<th>{_e(second)}</th><th>rank</th></tr>"
        )
        for candidate in example["candidates"]:
            rewards, ranks = candidate["rewards"], candidate["ranks"]
            parts.append(
                f"<tr><td>{_e(candidate['response'][:300])}</td>"
                f"<td>{rewards[first]:.4f}</td><td>{rewards[second]:.4f}</td>"
                f"<td>{ranks[first]} &rarr; {ranks[second]}</td></tr>"
            )
        parts.append("</table>")
    return "".join(parts)


def _split(values: dict[str, Any]) -> str:
    if values.get("accuracy") is None:
        return f"n/a ({values['n_pairs']} pairs)"
    text = f"{values['accuracy']:.4f} ({values['n_pairs']} pairs)"
    if "accuracy_ci95" in values:
        low, high = values["accuracy_ci95"]
        text += f" [95% CI {low:.4f}, {high:.4f}]"
    return text


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _rewards(rewards: Sequence[float]) -> str:
    return ", ".join(f"{reward:.3f}" for reward in rewards)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
