import pytest

from rewardforge.data.formats import RowError
from rewardforge.data.scoring_rows import parse_scoring_item, read_scoring_rows


def test_prompt_and_response():
    assert parse_scoring_item({"prompt": "你好", "response": "你好！"}) == ("你好", "你好！")


def test_messages_split_into_prompt_and_reply():
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye"},
    ]
    prompt, response = parse_scoring_item({"messages": messages})
    assert prompt == messages[:-1] and response == "Goodbye"


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"prompt": "p"}, "missing key 'response'"),
        ({"response": "r"}, "missing key 'prompt'"),
        ({"prompt": "p", "response": 3}, "'response' must be a string"),
        ({"messages": [{"role": "user", "content": "q"}]}, "end with the assistant"),
        ({"messages": [{"role": "assistant", "content": "a"}]}, "needs a prompt"),
        ({"messages": "text"}, "non-empty list of messages"),
    ],
)
def test_bad_items_name_the_problem(item, problem):
    with pytest.raises(RowError, match=problem):
        parse_scoring_item(item)


def test_file_rows_keep_their_line_numbers(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"prompt": "a", "response": "b", "id": 1}\n'
        "not json\n"
        "\n"
        '{"prompt": "a"}\n'
        '{"prompt": "c", "response": "d"}\n',
        encoding="utf-8",
    )
    rows, rejected = read_scoring_rows(path)
    assert [row.number for row in rows] == [1, 5] and rows[0].row["id"] == 1
    assert [(item.number, item.row) for item in rejected] == [(2, None), (4, {"prompt": "a"})]
    assert "invalid JSON" in rejected[0].error
