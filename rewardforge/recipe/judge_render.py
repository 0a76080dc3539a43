"""A judge's questions as the model reads them: through its chat template (or as plain text),
split where the answers go, and the token ids of its verdicts.

The split lets the encoder tokenize the question, each answer and the rest apart, as it does a
prompt and a response: answers to one question share the tokens before them, and truncation
cuts answers, never the end of the question where the verdict is read.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from rewardforge.data.conversation import prompt_as_question
from rewardforge.data.example import Prompt
from rewardforge.errors import UserError
from rewardforge.recipe.judge_prompt import JudgePrompt

_SLOT = "\x00answer\x00"


def judge_texts(
    tokenizer: PreTrainedTokenizerBase,
    chat: bool,
    judge: JudgePrompt,
    question: str,
    answers: int,
) -> list[str]:
    """The judge's turn around its answers, as text: `answers + 1` pieces that the answers go
    between. With a chat template, the question is the user's message (after the judge's
    system message) and the last piece ends with the assistant's generation prompt; in plain
    text it ends with a newline. The judge's `reply_prefix` follows, where its verdict is read.
    """
    if not chat:
        pieces = plain_question(judge, question).split(_SLOT)
        pieces[-1] += "\n"
    else:
        rendered = tokenizer.apply_chat_template(
            question_messages(tokenizer, judge, question),
            tokenize=False,
            add_generation_prompt=True,
        )
        pieces = rendered.split(_SLOT)
    if len(pieces) != answers + 1:
        raise UserError(
            "the tokenizer's chat template does not render the judge's question as written; "
            "train the judge with --template plain."
        )
    pieces[-1] += judge.reply_prefix
    return pieces


def question_messages(
    tokenizer: PreTrainedTokenizerBase, judge: JudgePrompt, question: str
) -> list[dict[str, str]]:
    """The judge's question as chat messages: its system message first, where it has one. A
    chat template that takes no system message (Mistral's) gets it before the question,
    separated by a blank line, as Prometheus' own client writes it."""
    user = {"role": "user", "content": question}
    if judge.system is None:
        return [user]
    messages = [{"role": "system", "content": judge.system}, user]
    try:
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception:  # jinja's raise_exception: the template refuses a system role
        return [{"role": "user", "content": plain_question(judge, question)}]
    return messages


def plain_question(judge: JudgePrompt, question: str) -> str:
    """The question as plain text: the system message, a blank line, then the question."""
    return question if judge.system is None else f"{judge.system}\n\n{question}"


def pointwise_texts(
    tokenizer: PreTrainedTokenizerBase, chat: bool, judge: JudgePrompt, prompt: Prompt
) -> tuple[str, str]:
    """(before the answer, after it) of the pointwise question about `prompt`."""
    before, after = judge.pointwise_parts(prompt_as_question(prompt))
    head, tail = judge_texts(tokenizer, chat, judge, before + _SLOT + after, answers=1)
    return head, tail


def pairwise_texts(
    tokenizer: PreTrainedTokenizerBase, chat: bool, judge: JudgePrompt, prompt: Prompt
) -> tuple[str, str, str]:
    """(before answer A, between the answers, after answer B) of the pairwise question."""
    before, between, after = judge.pairwise_parts(prompt_as_question(prompt))
    question = before + _SLOT + between + _SLOT + after
    head, middle, tail = judge_texts(tokenizer, chat, judge, question, answers=2)
    return head, middle, tail


def verdict_token_ids(tokenizer: PreTrainedTokenizerBase, judge: JudgePrompt) -> list[int]:
    """The first token of each verdict word (yes, no, first, second), where the reply begins.

    The judge's reward is the difference of two of these tokens' logits, so each pair must
    start with different tokens."""
    ids = [_first_token(tokenizer, word) for word in (judge.yes, judge.no, judge.first)]
    ids.append(_first_token(tokenizer, judge.second))
    if ids[0] == ids[1] or ids[2] == ids[3]:
        raise UserError(
            f"the judge's verdict words {judge.yes!r}/{judge.no!r} and {judge.first!r}/"
            f"{judge.second!r} must each begin with a token of their own; pick other words."
        )
    return ids


def verdict_completion(
    tokenizer: PreTrainedTokenizerBase, chat: bool, word: str, turn_end: str
) -> list[int]:
    """The ids of a verdict reply: the word, then the end of the assistant's turn (a chat
    template's marker; EOS in plain text). What the judge is trained to write."""
    ids = tokenizer(word + turn_end, add_special_tokens=False)["input_ids"]
    if not chat:
        ids.append(tokenizer.eos_token_id)
    return ids


def _first_token(tokenizer: PreTrainedTokenizerBase, word: str) -> int:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if not ids:
        raise UserError("the judge's verdict words must not be empty.")
    return ids[0]
