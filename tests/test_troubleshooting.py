"""docs/troubleshooting.md and the code say the same messages, both ways: every message the docs
list is one the code (or a library it calls) can print, and every message the code raises to a
user is listed there.

A message in the code is the text of a `raise UserError(...)` (or DataError, RowError, an HTTP
error, a path error) with its f-string values as wildcards; a message in the docs is a backticked
text in the first column of a table, with `…` as its wildcards. The docs may quote the start or
a part of a message, and may write a value where the code has a placeholder (`--lr must be above
0` for `--{name} must be above 0`), so the two match when some text fits both."""

from __future__ import annotations

import ast
import errno
import os
import re
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"
WILD = "\x00"
# The exception types whose message a user reads, and which argument holds it.
MESSAGE_ARGUMENT = {
    "UserError": 0,
    "DataError": 0,
    "TrainingDiverged": 0,
    "BadParameter": 0,
    "FileNotFoundError": 0,
    "NotADirectoryError": 0,
    "IsADirectoryError": 0,
    "FileExistsError": 0,
    "RowError": 1,
    "_require": 1,
    "HTTPException": 1,
}
# Messages the docs list that a library prints through rewardforge, and the package whose source
# holds their text.
FROM_LIBRARIES = {
    "Invalid value for": "click",
    "No such option": "click",
    "No such command": "click",
    "does not appear to have a file named": "transformers",
}


def _templates(node: ast.expr, names: dict[str, list[ast.expr]]) -> list[str]:
    """The texts an expression can be, with each formatted value as WILD: both branches of an
    `a if c else b`, and a local name's assigned texts where the function assigns it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name):
        return [text for value in names.get(node.id, []) for text in _templates(value, {})]
    if isinstance(node, ast.JoinedStr):
        texts = [""]
        for part in node.values:
            options = _templates(part, names)
            if isinstance(part, ast.FormattedValue):
                options = _templates(part.value, names) if not part.format_spec else []
            texts = [text + option for text in texts for option in options or [WILD]]
        return texts
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        lefts, rights = _templates(node.left, names), _templates(node.right, names)
        return [left + right for left in lefts or [WILD] for right in rights or [WILD]]
    if isinstance(node, ast.IfExp):
        return _templates(node.body, names) + _templates(node.orelse, names)
    return []


def _assigned_names(function: ast.AST) -> dict[str, list[ast.expr]]:
    names: dict[str, list[ast.expr]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                names.setdefault(target.id, []).append(node.value)
    return names


def _normal(text: str, wildcard: str) -> str:
    text = text.replace(wildcard, WILD).replace("`", "")
    text = re.sub(r"\s+", " ", text).strip().rstrip(".").lower()
    return re.sub(f"{WILD}+", WILD, text)


def _modules() -> list[tuple[Path, ast.Module]]:
    paths = sorted((ROOT / "rewardforge").rglob("*.py"))
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in paths]


def code_messages() -> dict[str, str]:
    """Each message the package raises to a user (normalised) and where."""
    found = {}
    for path, module in _modules():
        functions = [n for n in ast.walk(module) if isinstance(n, ast.FunctionDef)]
        for function in functions:
            names = _assigned_names(function)
            for node in ast.walk(function):
                name = getattr(node, "func", None)
                name = getattr(name, "id", None) or getattr(name, "attr", None)
                index = MESSAGE_ARGUMENT.get(name)
                if index is None or len(node.args) <= index:
                    continue
                for text in _templates(node.args[index], names):
                    message = _normal(text, WILD)
                    if len(re.sub("[^a-z]", "", message)) >= 8:  # `{path}: {reason}` is no text
                        found[message] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def printable_texts() -> list[str]:
    """Every text the package holds (notes and warnings as well as raised messages)."""
    texts = []
    for _, module in _modules():
        for node in ast.walk(module):
            if isinstance(node, (ast.JoinedStr, ast.Constant)):
                texts += [_normal(text, WILD) for text in _templates(node, {})]
    return texts


def doc_messages() -> list[str]:
    """The backticked texts with a space in the first column of the message tables."""
    found = []
    for line in TROUBLESHOOTING.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and not re.match(r"\| (---|message |problem )", line):
            found += [
                text for text in re.findall(r"`([^`]+)`", line.split(" | ")[0]) if " " in text
            ]
    return found


def fits(docs: str, code: str) -> bool:
    """Whether some text fits both: a WILD of the docs (`…`) stands for any text, a WILD of the
    code (a formatted value) for a value the docs wrote out, which holds no space."""
    if not _words(docs) & _words(code) and _words(docs) and _words(code):
        return False  # no word in common: the search below would fail, slowly

    @cache
    def fit(i: int, j: int) -> bool:
        if i == len(docs) and j == len(code):
            return True
        docs_wild = i < len(docs) and docs[i] == WILD
        if docs_wild and (fit(i + 1, j) or (j < len(code) and fit(i, j + 1))):
            return True
        code_wild = j < len(code) and code[j] == WILD
        value_char = i < len(docs) and docs[i] not in (" ", WILD)
        if code_wild and (fit(i, j + 1) or (value_char and fit(i + 1, j))):
            return True
        same = i < len(docs) and j < len(code) and docs[i] == code[j] != WILD
        return same and fit(i + 1, j + 1)

    return fit(0, 0)


def _words(text: str) -> set[str]:
    return {word for word in re.split(r"[^a-z0-9'-]+", text.replace(WILD, " ")) if len(word) > 3}


def _in_library(message: str) -> bool:
    """Whether a library prints the message: its text is in the package's source, Python's own
    words for a missing module, or the system's for a failed file operation."""
    if message.startswith("No module named '"):
        with pytest.raises(ModuleNotFoundError) as raised:
            __import__("rewardforge_has_no_such_module")
        return str(raised.value).startswith("No module named '")
    if any(os.strerror(code).lower() in message.lower() for code in errno.errorcode):
        return True
    for text, package in FROM_LIBRARIES.items():
        if text in message:
            module = __import__(package)
            sources = Path(module.__file__).parent.rglob("*.py")
            return any(text in path.read_text(encoding="utf-8") for path in sources)
    return False


@pytest.fixture(scope="module")
def both() -> tuple[dict[str, str], list[str]]:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    return code_messages(), doc_messages()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return printable_texts()


@pytest.mark.parametrize(
    ("docs", "code", "expected"),
    [
        ("\x00--lr must be above 0\x00", "--\x00 must be above 0, got \x00", True),
        ("\x00: no such file", "\x00: no such file", True),
        ("\x00a response is empty\x00", "a response is empty", True),
        ("\x00--lr must be at least 1\x00", "--\x00 must be above 0, got \x00", False),
        ("\x00no such folder\x00", "no such file", False),
        ("\x00anything at all\x00", "--\x00 must be above 0, got \x00", False),
    ],
)
def test_the_matching_is_neither_blind_nor_literal(docs, code, expected):
    assert fits(docs, code) is expected


def test_every_listed_message_is_one_the_code_can_print(both, texts):
    code, docs = both
    missing = []
    for message in docs:
        pattern = WILD + _normal(message, "…") + WILD  # the docs may quote part of a message
        if not any(fits(pattern, printed) for printed in [*code, *texts]) and not _in_library(
            message
        ):
            missing.append(message)
    assert not missing, f"troubleshooting.md lists messages nothing prints: {missing}"
    assert len(docs) > 150  # the extraction found the tables


def test_every_message_the_code_raises_is_listed(both):
    code, docs = both
    patterns = [WILD + _normal(message, "…") + WILD for message in docs]
    unlisted = [
        f"{where}: {printed.replace(WILD, '…')}"
        for printed, where in code.items()
        if not any(fits(pattern, printed) for pattern in patterns)
    ]
    assert not unlisted, "troubleshooting.md misses these messages:\n" + "\n".join(unlisted)
    assert len(code) > 150  # the extraction found the raises
