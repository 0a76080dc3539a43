import json

import datasets
import pytest

from rewardforge.data import DataError, load_preferences
from tests.conftest import write_jsonl

EXPLICIT = [
    {
        "prompt": "What is 2+2?",
        "chosen": "4",
        "rejected": "5",
        "chosen_score": 9,
        "rejected_score": 1,
    },
    {
        "prompt": "中文可以吗？",
        "chosen": "可以。",
        "rejected": "不行。",
        "chosen_score": 5,
        "rejected_score": 4,
    },
]


def test_loads_real_hh_sample_as_implicit(hh_file):
    report = load_preferences(hh_file)
    assert report.formats == {str(hh_file): "implicit"}
    assert report.rows_read == 24 and len(report.examples) == 24
    assert report.examples[0].source == f"{hh_file}:1"
    assert isinstance(report.examples[0].prompt, list)


@pytest.mark.parametrize("suffix", ["json", "parquet", "csv"])
def test_reads_json_parquet_and_csv(tmp_path, suffix):
    path = tmp_path / f"pairs.{suffix}"
    if suffix == "json":
        path.write_text(json.dumps(EXPLICIT, ensure_ascii=False), encoding="utf-8")
    else:
        table = datasets.Dataset.from_list(EXPLICIT)
        table.to_parquet(str(path)) if suffix == "parquet" else table.to_csv(str(path), index=False)
    report = load_preferences(path)
    assert [example.chosen for example in report.examples] == ["4", "可以。"]


def test_reads_a_saved_datasets_directory(tmp_path):
    datasets.Dataset.from_list(EXPLICIT).save_to_disk(str(tmp_path / "saved"))
    assert len(load_preferences(tmp_path / "saved").examples) == 2


def test_column_mapping(tmp_path):
    rows = [{"question": "q", "good": "a", "bad": "b"}]
    path = write_jsonl(tmp_path / "mapped.jsonl", rows)
    report = load_preferences(
        path, columns={"prompt": "question", "chosen": "good", "rejected": "bad"}
    )
    assert report.examples[0].responses == ("a", "b")


def test_min_score_gap_filters_and_counts(tmp_path):
    report = load_preferences(write_jsonl(tmp_path / "s.jsonl", EXPLICIT), min_score_gap=2)
    assert len(report.examples) == 1
    assert report.skipped == {"score gap < 2": 1}
    assert "skipped: 1 (score gap < 2: 1)" in report.summary()


BAD_LINES = [
    ('{"prompt": "p", "chosen": "a", "rejected": "b"}', None),
    ('{"prompt": "p", "chosen": "a", "rejected": ', "invalid JSON"),
    ('{"prompt": "p", "chosen": "a"}', "missing key 'rejected'"),
    ('{"prompt": "p", "chosen": ["x"], "rejected": "b"}', "must be a string"),
    ('{"prompt": "p", "chosen": "", "rejected": "b"}', "a response is empty"),
    ('{"prompt": "p", "chosen": "same", "rejected": "same"}', "identical"),
    ("[1, 2]", "must be a JSON object"),
]


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(line for line, _ in BAD_LINES) + "\n", encoding="utf-8")
    return path


def test_each_bad_row_is_named_by_file_and_line(bad_file):
    with pytest.raises(DataError) as caught:
        load_preferences(bad_file)
    message = str(caught.value)
    assert "6 invalid row(s)" in message and "--skip-invalid" in message
    for line_number, (_, problem) in enumerate(BAD_LINES, start=1):
        if problem:
            assert f"{bad_file}: line {line_number}: " in message
            assert problem in message


def test_skip_invalid_counts_reasons(bad_file):
    report = load_preferences(bad_file, skip_invalid=True)
    assert len(report.examples) == 1
    assert report.skipped == {
        "invalid JSON": 1,
        "missing key": 1,
        "wrong type": 2,
        "empty response": 1,
        "identical responses": 1,
    }


def test_unknown_format_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"text": "hello"}])
    with pytest.raises(DataError, match="line 1: unknown format"):
        load_preferences(path)


def test_unsupported_suffix_and_missing_dataset(tmp_path):
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        load_preferences(tmp_path / "data.txt")
    with pytest.raises(DataError, match="could not load it as a dataset"):
        load_preferences(tmp_path / "does-not-exist")


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no usable preference examples"):
        load_preferences(tmp_path / "empty.jsonl")


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_a_file_that_is_not_utf8_is_named_with_the_line(tmp_path, suffix):
    path = tmp_path / f"latin1{suffix}"
    good = json.dumps(EXPLICIT[0])
    bad = '{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}'
    text = f"{good}\n{bad}\n" if suffix == ".jsonl" else f"[{good},\n{bad}]"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataError, match=rf"latin1\{suffix}: line 2: not UTF-8 text"):
        load_preferences(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_a_byte_order_mark_is_accepted(tmp_path, suffix):
    path = tmp_path / f"bom{suffix}"
    rows = "\n".join(json.dumps(row) for row in EXPLICIT)
    path.write_text(rows if suffix == ".jsonl" else json.dumps(EXPLICIT), encoding="utf-8-sig")
    assert len(load_preferences(path).examples) == len(EXPLICIT)


def test_line_separators_inside_strings_do_not_split_rows(tmp_path):
    path = tmp_path / "sep.jsonl"
    row = {"prompt": "a\u2028b", "chosen": "yes\u2029", "rejected": "no"}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert load_preferences(path).examples[0].prompt == "a\u2028b"


def test_a_truncated_last_line_is_named_and_the_rest_kept(tmp_path):
    path = tmp_path / "cut.jsonl"
    text = "\n".join(json.dumps(row) for row in EXPLICIT) + '\n{"prompt": "p", "chosen": "a", "rej'
    path.write_text(text, encoding="utf-8")
    last = len(EXPLICIT) + 1
    with pytest.raises(DataError, match=rf"cut.jsonl: line {last}: invalid JSON"):
        load_preferences(path)
    report = load_preferences(path, skip_invalid=True)
    assert len(report.examples) == len(EXPLICIT) and report.skipped == {"invalid JSON": 1}


def test_a_10_mb_line_loads(tmp_path):
    long_answer = "word " * 2_000_000  # 10 MB
    path = write_jsonl(
        tmp_path / "long.jsonl", [{"prompt": "p", "chosen": long_answer, "rejected": "no"}]
    )
    assert load_preferences(path).examples[0].responses[0] == long_answer


@pytest.mark.parametrize(
    ("rank", "problem"),
    [
        ([1, 1, 2], "'rank' has ties; each response needs its own rank."),
        ([1, 2], "'rank' must be a list with one rank per response (1 = best)."),
        (["1", "2", "3"], "'rank' must hold numbers (1 = best)."),
    ],
)
def test_ranked_rows_with_bad_ranks(tmp_path, rank, problem):
    row = {"prompt": "p", "responses": ["a", "b", "c"], "rank": rank}
    path = write_jsonl(tmp_path / "ranked.jsonl", [row])
    with pytest.raises(DataError) as caught:
        load_preferences(path)
    assert f"ranked.jsonl: line 1: {problem}" in str(caught.value)


def test_every_input_row_is_accounted_for(bad_file):
    report = load_preferences(bad_file, skip_invalid=True)
    assert report.rows_read == len(BAD_LINES)
    assert report.rows_read == len(report.examples) + sum(report.skipped.values())
    assert report.summary().startswith(f"rows read: {len(BAD_LINES)}; examples used: 1")


def test_reference_mode_errors_name_the_file_and_row(tmp_path):
    rows = [
        {"prompt": "q1", "responses": ["best", "good", "bad"]},
        {"prompt": "q2", "responses": ["good", "bad"]},
    ]
    path = write_jsonl(tmp_path / "ranked.jsonl", rows)
    report = load_preferences(path, reference_mode=True, skip_invalid=True)
    assert [example.reference for example in report.examples] == ["best"]
    assert report.pairs == 1 and report.skipped == {"no reference": 1}
    with pytest.raises(DataError, match="ranked.jsonl: line 2: reference mode needs"):
        load_preferences(path, reference_mode=True)


def test_a_bad_row_is_placed_by_line_in_jsonl_and_by_row_in_json(tmp_path):
    """One wording in every command: a .jsonl file has lines, a .json list has rows."""
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p", "chosen": "a"}]
    jsonl = write_jsonl(tmp_path / "pairs.jsonl", rows)
    as_list = tmp_path / "pairs.json"
    as_list.write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"pairs.jsonl: line 2: missing key 'rejected'"):
        load_preferences(jsonl)
    with pytest.raises(DataError, match=r"pairs.json: row 2: missing key 'rejected'"):
        load_preferences(as_list)
