"""`score` with answers to one prompt read together (the prompt fed once) against each answer
read alone, on a best-of-N style corpus.

    .venv/bin/python bench/score_sharing.py [--model runs/smollm-rm] [--prompts 32] [--answers 8]

The corpus: `--prompts` questions of the bundled HH-RLHF pairs (first turn), each with `--answers`
answers (the chosen and rejected answers of that pair and the next ones), as `best-of-n` writes
them. A decoder reward model (`--model`; without one, SmolLM2-135M trained for one step on 16
pairs with `rewardforge train`, enough for timing) scores the rows with `RewardModel.score` as
it is, then with every answer its own group (as `score` read rows before). Reports tokens fed,
seconds (best of `--repeats`), rows/s and the largest reward difference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rewardforge import RewardModel
from rewardforge.data.sample import sample_paths

COMMAND = str(Path(sys.executable).parent / "rewardforge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("runs/smollm-rm"))
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--answers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if not args.model.exists():  # one step on a few pairs: enough for timing
        train, dev = (Path(path) for path in sample_paths()[:2])
        few = args.model.with_name(args.model.name + "-data")
        few.mkdir(parents=True, exist_ok=True)
        for name, source, count in (("train", train, 16), ("dev", dev, 8)):
            lines = source.read_text("utf-8").splitlines(True)[:count]
            (few / f"{name}.jsonl").write_text("".join(lines), "utf-8")
        subprocess.run(
            [COMMAND, "train", "--model", "smollm2-135m", "--max-steps", "1"]
            + ["--data", str(few / "train.jsonl"), "--eval-data", str(few / "dev.jsonl")]
            + ["--output", str(args.model)],
            check=True,
        )
    prompts, responses = corpus(args.prompts, args.answers)
    model = RewardModel.load(args.model, device="cpu")
    together = model._prompt_groups

    def alone(encoded):
        return [[index] for index in range(len(encoded))]

    results = {}
    for name, grouping in (
        ("answers to a prompt together", together),
        ("each answer alone", alone),
    ):
        model._prompt_groups = grouping
        seconds = []
        for _ in range(args.repeats):
            before = model.tokens.fed
            started = time.perf_counter()
            rewards = model.score(prompts, responses)
            seconds.append(time.perf_counter() - started)
            fed = model.tokens.fed - before
        results[name] = (fed, min(seconds), rewards)
    (_, _, shared), (_, _, single) = results.values()
    largest = max(abs(a - b) for a, b in zip(shared, single))
    print(f"{args.prompts} prompts x {args.answers} answers = {len(prompts)} rows, {args.model}")
    print("| reading | tokens fed | seconds | rows/s |")
    print("| --- | --- | --- | --- |")
    for name, (fed, seconds, _) in results.items():
        print(f"| {name} | {fed:,} | {seconds:.1f} | {len(prompts) / seconds:.1f} |")
    print(f"largest reward difference: {largest:.2e}")


def corpus(count: int, answers: int) -> tuple[list[str], list[str]]:
    pairs = [json.loads(line) for line in Path(sample_paths()[0]).read_text("utf-8").splitlines()]
    turns = [(first_turn(p["chosen"]), first_turn(p["rejected"])) for p in pairs]
    prompts, responses = [], []
    for index in range(count):
        question = turns[index][0][0]
        for offset in range(answers // 2):
            (_, chosen), (_, rejected) = turns[index + offset]
            prompts += [question, question]
            responses += [chosen, rejected]
    return prompts, responses


def first_turn(transcript: str) -> tuple[str, str]:
    human = transcript.split("\n\nHuman: ", 1)[1]
    question, _, rest = human.partition("\n\nAssistant: ")
    return question.strip(), rest.split("\n\nHuman: ", 1)[0].strip()


if __name__ == "__main__":
    main()
