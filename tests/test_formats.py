import pytest

from rewardforge.data.conversation import transcript_to_messages
from rewardforge.data.formats import (
    RowError,
    detect_format,
    parse_row,
)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"prompt": "p", "chosen": "a", "rejected": "b"}, "explicit"),
        ({"chosen": "x", "rejected": "y"}, "implicit"),
        ({"chosen": [{"role": "user", "content": "x"}], "rejected": []}, "conversational"),
        ({"prompt": "p", "responses": ["a", "b"], "rank": [2, 1]}, "ranked"),
        ({"prompt": "p", "responses": ["a", "b"]}, "ordered"),
    ],
)
def test_detect_format(row, expected):
    assert detect_format(row) == expected


def test_detect_format_rejects_unknown_keys_with_fix():
    with pytest.raises(RowError, match="--columns") as caught:
        detect_format({"question": "q", "good": "a"})
    assert caught.value.reason == "unknown format"


def test_explicit_row_keeps_margin_and_category():
    row = {"prompt": "p", "chosen": "a", "rejected": "b", "margin": 2, "category": "math"}
    example = parse_row(row, "explicit", "f:1")
    assert (example.prompt, example.responses) == ("p", ("a", "b"))
    assert example.margin == 2.0 and example.category == "math" and example.source == "f:1"


def test_implicit_row_splits_at_last_assistant_turn():
    shared = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help me?\n\nAssistant:"
    row = {"chosen": shared + " Sure, how?", "rejected": shared + " Sure, no."}
    example = parse_row(row, "implicit", "f:1")
    assert example.responses == ("Sure, how?", "Sure, no.")
    assert example.prompt == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Help me?"},
    ]


def test_implicit_row_without_turn_boundary_is_an_error():
    with pytest.raises(RowError, match="prompt"):
        parse_row({"chosen": "abc one", "rejected": "abc two"}, "implicit", "f:1")


def test_implicit_row_accepts_an_empty_final_turn():
    shared = "\n\nHuman: Say a bad word\n\nAssistant:"
    example = parse_row({"chosen": shared + " ", "rejected": shared + " Ok"}, "implicit", "f:1")
    assert example.responses == ("", "Ok")


def test_conversational_row_finds_shared_prompt():
    user = {"role": "user", "content": "2+2?"}
    row = {
        "chosen": [user, {"role": "assistant", "content": "4"}],
        "rejected": [user, {"role": "assistant", "content": "5"}],
    }
    example = parse_row(row, "conversational", "f:1")
    assert example.prompt == [user] and example.responses == ("4", "5")


def test_conversational_row_with_explicit_prompt():
    row = {
        "prompt": [{"role": "user", "content": "你好"}],
        "chosen": [{"role": "assistant", "content": "你好！"}],
        "rejected": [{"role": "assistant", "content": "走开"}],
    }
    example = parse_row(row, "conversational", "f:1")
    assert example.responses == ("你好！", "走开")


def test_ranked_row_orders_best_first():
    row = {"prompt": "p", "responses": ["mid", "best", "worst"], "rank": [2, 1, 3]}
    assert parse_row(row, "ranked", "f:1").responses == ("best", "mid", "worst")


def test_ordered_row_keeps_order():
    row = {"prompt": "p", "responses": ["a", "b", "c", "d"]}
    assert parse_row(row, "ordered", "f:1").responses == ("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("row", "fmt", "reason"),
    [
        ({"prompt": "p", "chosen": 3, "rejected": "b"}, "explicit", "wrong type"),
        ({"prompt": "p", "chosen": " ", "rejected": "b"}, "explicit", "empty response"),
        ({"prompt": "p", "chosen": "a", "rejected": "a"}, "explicit", "identical responses"),
        ({"prompt": 5, "chosen": "a", "rejected": "b"}, "explicit", "wrong type"),
        ({"prompt": "p", "responses": ["a", "b"], "rank": [1, 1]}, "ranked", "tied ranks"),
        ({"prompt": "p", "responses": ["a"]}, "ordered", "wrong type"),
        ({"prompt": "p", "chosen": "a", "rejected": "b", "margin": "x"}, "explicit", "wrong type"),
    ],
)
def test_bad_rows_raise_with_reason(row, fmt, reason):
    with pytest.raises(RowError) as caught:
        parse_row(row, fmt, "f:1")
    assert caught.value.reason == reason


def test_transcript_to_messages_ignores_non_transcripts():
    assert transcript_to_messages("just a question") is None


def test_reference_mode_makes_the_best_ranked_response_the_reference():
    ranked = {
        "prompt": "天气？",
        "responses": ["冗长的回答。", "晴。", "晴天。"],
        "rank": [3, 1, 2],
    }
    example = parse_row(ranked, "ranked", "f:1", reference_mode=True)
    assert example.reference == "晴。" and example.responses == ("晴天。", "冗长的回答。")
    ordered = {"prompt": "q", "responses": ["A", "B", "C", "D"]}
    example = parse_row(ordered, "ordered", "f:2", reference_mode=True)
    assert example.reference == "A" and example.responses == ("B", "C", "D")


def test_reference_mode_keeps_a_given_reference_and_all_responses():
    row = {"prompt": "q", "reference": "R", "responses": ["A", "B", "C"]}
    example = parse_row(row, "ordered", "f:1", reference_mode=True)
    assert example.reference == "R" and example.responses == ("A", "B", "C")
    pair = {"prompt": "q", "reference": "R", "chosen": "A", "rejected": "B"}
    assert parse_row(pair, "explicit", "f:2", reference_mode=True).reference == "R"


def test_reference_rows_are_refused_in_the_wrong_mode():
    with pytest.raises(RowError, match="reference mode needs a 'reference'"):
        parse_row({"prompt": "q", "chosen": "A", "rejected": "B"}, "explicit", "f:1", True)
    with pytest.raises(RowError, match="only a reference-based reward model"):
        row = {"prompt": "q", "reference": "R", "chosen": "A", "rejected": "B"}
        parse_row(row, "explicit", "f:1")
    with pytest.raises(RowError, match="'reference' is empty"):
        row = {"prompt": "q", "reference": " ", "chosen": "A", "rejected": "B"}
        parse_row(row, "explicit", "f:1", True)
