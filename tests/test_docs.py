"""The docs stay true to the CLI: every `rewardforge COMMAND` they show exists, every flag after it
is one of that command's, every other `--flag` they name belongs to some command (or to another
tool, listed below), and every relative link resolves, down to the heading it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from rewardforge.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    ROOT / "README.md",
    ROOT / "README.zh-CN.md",
    ROOT / "BENCHMARKS.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
# Flags of other tools that the docs show beside ours (flags with an underscore or a dot are never
# ours: typer spells ours with hyphens; OpenRLHF's are `--reward.remote_url`).
FOREIGN_FLAGS = {
    "--cpu": "accelerate launch",
    "--dataset": "rewardbench",
    "--no-deps": "pip install",
    "--check": "ruff format",
    "--head": "ray start",
    "--address": "ray start",
    "--runner": "vllm serve",
    "--convert": "vllm serve",
    "--max-model-len": "vllm serve",
    "--pooler-config": "vllm serve",
    "--repo-type": "hf download",
    "--local-dir": "hf download",
}
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
INVOCATION = re.compile(r"(?:^|[\s/(])rewardforge(?:\.cli)?\s+([a-z][a-z-]*)(.*)$")
FLAG = re.compile(r"(?<![\w-])(--[a-z](?:[a-z0-9_.-]*[a-z0-9_-])?)")
SCRIPT = re.compile(r"((?:bench|examples)/\w+\.(?:py|sh))(.*)$")
# An inline span that is a command: it starts with the program, after environment assignments.
COMMAND_SPAN = re.compile(
    r"^(?:[A-Z_]+=\S*\s+)*(?:\S*/)?(?:rewardforge|accelerate|python|bash)\b|^(?:bench|examples)/"
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def cli_flags() -> dict[str, set[str]]:
    """Each command's flags, as click knows them."""
    group = typer.main.get_command(app)
    return {
        name: {flag for param in command.params for flag in (*param.opts, *param.secondary_opts)}
        | {"--help"}
        for name, command in group.commands.items()
    }


def code_lines(text: str) -> list[str]:
    """Shell lines (continuations joined) of the fenced blocks that are not Python, and the
    inline code spans that are commands (a quoted message may say "rewardforge does not ...")."""
    lines = []
    for language, body in FENCE.findall(text):
        if language in ("python", "yaml", "json"):
            continue
        lines += body.replace("\\\n", " ").splitlines()
    return lines + [span for span in INLINE_CODE.findall(text) if COMMAND_SPAN.match(span)]


def invocations(text: str) -> list[tuple[str, list[str]]]:
    """(command, flags) of every `rewardforge COMMAND ...` the text shows."""
    found = []
    for line in code_lines(text):
        match = INVOCATION.search(line)
        if match is None or match.group(1) == "import":
            continue
        rest = re.split(r"\s(?:\||&&|;|#|>)\s?", match.group(2))[0]
        found.append((match.group(1), FLAG.findall(rest)))
    return found


def script_calls(text: str) -> list[tuple[str, list[str]]]:
    """(script, flags) of every `bench/` or `examples/` script call the text shows."""
    calls = []
    for line in code_lines(text):
        match = SCRIPT.search(line)
        if match is not None:
            calls.append((match.group(1), FLAG.findall(match.group(2))))
    return calls


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.fixture(scope="module")
def flags() -> dict[str, set[str]]:
    return cli_flags()


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_commands_and_their_flags_exist(doc, flags):
    shown = invocations(doc.read_text(encoding="utf-8"))
    assert shown or doc.name not in ("README.md", "README.zh-CN.md"), (
        f"{doc.name} shows no rewardforge command"
    )
    for command, given in shown:
        assert command in flags, f"{doc.name}: `rewardforge {command}` is not a command"
        unknown = [flag for flag in given if flag not in flags[command]]
        assert unknown == [], f"{doc.name}: `rewardforge {command}` has no {unknown}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_flag_named_is_a_flag(doc, flags):
    text = doc.read_text(encoding="utf-8")
    every = set().union(*flags.values())
    of_scripts = {flag for _, given in script_calls(text) for flag in given}
    named = {flag for flag in FLAG.findall(text) if "_" not in flag and "." not in flag}
    ours = named - of_scripts - set(FOREIGN_FLAGS)
    unknown = sorted(flag for flag in ours if flag not in every)
    assert unknown == [], f"{doc.name} names flags no command has: {unknown}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_relative_links_resolve(doc):
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # a URL
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        assert resolved.exists(), f"{doc.name}: link to {target} goes nowhere"
        if anchor and resolved.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", resolved.read_text(encoding="utf-8"), re.M)
            assert anchor in {slug(h) for h in headings}, f"{doc.name}: no heading #{anchor}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_scripts_take_the_flags_shown(doc):
    for script, given in script_calls(doc.read_text(encoding="utf-8")):
        source = (ROOT / script).read_text(encoding="utf-8")
        for called in re.findall(r"bench/\w+\.py", source):  # a shell script passes flags on
            source += (ROOT / called).read_text(encoding="utf-8")
        unknown = [flag for flag in given if f'"{flag}"' not in source]
        assert unknown == [], f"{doc.name}: {script} has no {unknown}"


def test_the_checks_catch_a_renamed_flag(flags):
    text = "```bash\nrewardforge train --data x.jsonl --learning-rate 1e-5\n```\n"
    assert invocations(text) == [("train", ["--data", "--learning-rate"])]
    assert "--learning-rate" not in flags["train"]
