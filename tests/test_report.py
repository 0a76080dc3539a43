from rewardforge.evaluation.diagnostics import ScoredExample, diagnose
from rewardforge.evaluation.report import (
    SHOWN_RANK_CHANGES,
    print_rank_changes,
    summary_rows,
    terminal_table,
    write_html,
)

EXAMPLES = [
    ScoredExample((2.0, 1.0), (10, 5), "数学", "f:1"),
    ScoredExample((0.0, 1.0), (3, 8), "code", "f:2"),
    ScoredExample((3.0, 1.0, 2.0), (6, 2, 9), "code", "f:3"),
]


def test_summary_rows_show_the_headline_numbers():
    rows = dict(summary_rows(diagnose(EXAMPLES)))
    assert rows["pairs"] == "5"
    assert rows["accuracy (ties wrong)"].startswith("0.6000  [95% CI ")
    assert "best-of-N accuracy (1 groups)" in rows and rows["Kendall tau (mean)"] == "0.3333"


def test_terminal_table_has_a_column_per_model_and_the_categories():
    metrics = diagnose(EXAMPLES)
    table = terminal_table({"base": metrics, "tuned": metrics})
    assert table.splitlines()[0].split() == ["base", "tuned"]
    assert "tuned / category 数学: 1.0000 (1 pairs)" in table


def test_html_escapes_text_and_lists_disagreements(tmp_path):
    metrics = diagnose(EXAMPLES)
    disagreement = {
        "source": "f:1",
        "prompt": "<script>x</script>",
        "right": "a",
        "rewards": {"a": [1.0, 0.0], "b": [0.0, 1.0]},
    }
    page = write_html(
        tmp_path / "r.html",
        "A & B",
        {"a": metrics, "b": metrics},
        {"a": {}, "b": {}},
        [disagreement],
    ).read_text(encoding="utf-8")
    assert "<script>x" not in page and "&lt;script&gt;x" in page
    assert "A &amp; B" in page and "Disagreements (1 examples)" in page and "数学" in page


def rank_change(prompt: str) -> dict:
    candidates = [
        {
            "response": "简短的回答。",
            "rewards": {"base": -0.5, "tuned": 1.25},
            "ranks": {"base": 2, "tuned": 1},
            "rank_change": 1,
        },
        {
            "response": "A long answer.",
            "rewards": {"base": 0.5, "tuned": -1.0},
            "ranks": {"base": 1, "tuned": 2},
            "rank_change": -1,
        },
    ]
    return {"source": "f:1", "prompt": prompt, "reference": None, "candidates": candidates}


def test_rank_changes_print_as_tables_with_both_rewards(capsys):
    changes = [rank_change("天气怎么样？")] + [
        rank_change("more") for _ in range(SHOWN_RANK_CHANGES)
    ]
    print_rank_changes(changes, {"base": 0.0, "tuned": 1.0})
    out = capsys.readouterr().out
    assert "f:1: 天气怎么样？" in out and "简短的回答。" in out
    assert "-0.5000" in out and "1.2500" in out and "2 -> 1" in out and "+1" in out
    assert "... 1 more examples in --report or --json" in out
    assert (
        f"preferred answer ranked first: base 0.00%, tuned 100.00% of {len(changes)} examples"
        in out
    )
