"""PPO against GRPO and RLOO on this machine: time and peak memory for the same generation budget,
and held-out reward gained against KL spent.

    .venv/bin/python bench/ppo_vs_grpo.py [--reward-model runs/rm] [--steps 8] [--seeds 0 1 2]

Each run is `rewardforge rlhf --algo ALGO` in a process of its own (its peak RSS from the OS):
SmolLM2-135M-Instruct as the policy, 16 bundled HH-RLHF questions to train on and 8 held-out,
2 prompts x 4 completions of at most 32 tokens a step for every algorithm, the same learning rate
and KL weight. The reward model is the README's default run (`rewardforge train --output
runs/rm`: MiniLM on the bundled pairs), trained first when `--reward-model` does not exist; it
cannot read SmolLM2's tokens, so PPO's critic is SmolLM2's backbone with a new head. Prints one
Markdown row per run and the mean per algorithm.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rewardforge.data.sample import sample_paths

COMMAND = str(Path(sys.executable).parent / "rewardforge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reward-model", type=Path, default=Path("runs/rm"))
    parser.add_argument("--work-dir", type=Path, default=Path("runs/ppo-bench"))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--algos", nargs="+", default=["grpo", "rloo", "ppo"])
    parser.add_argument("--lr", type=float, default=1e-5)
    args = parser.parse_args()
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    if not args.reward_model.exists():
        run([COMMAND, "train", "--output", str(args.reward_model)])
    prompts, held_out = write_prompts(work)
    print("| algo | seed | seconds | peak RSS (GiB) | held-out before | after | gain | last KL |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    results: dict[str, list[dict]] = {}
    for seed in args.seeds:
        for algo in args.algos:
            output = work / f"{algo}-{seed}"
            seconds, peak = run(
                [COMMAND, "rlhf", "--algo", algo, "--reward-model", str(args.reward_model)]
                + ["--policy", "smollm2-135m", "--prompts", str(prompts)]
                + ["--eval-prompts", str(held_out), "--output", str(output)]
                + ["--max-steps", str(args.steps), "--batch-prompts", "2", "--generations", "4"]
                + ["--max-new-tokens", "32", "--lr", str(args.lr), "--seed", str(seed)]
            )
            metrics = json.loads((output / "metrics.json").read_text())
            row = {"seconds": seconds, "peak": peak, **metrics}
            results.setdefault(algo, []).append(row)
            print(markdown(algo, str(seed), row), flush=True)
    for algo, rows in results.items():
        mean = {key: sum(row[key] for row in rows) / len(rows) for key in rows[0] if key in NUMBERS}
        print(markdown(algo, "mean", mean))


NUMBERS = ("seconds", "peak", "heldout_reward_before", "heldout_reward_after", "last_kl")


def markdown(algo: str, seed: str, row: dict) -> str:
    before, after = row["heldout_reward_before"], row["heldout_reward_after"]
    return (
        f"| {algo} | {seed} | {row['seconds']:.0f} | {row['peak']:.2f} | {before:.4f} | "
        f"{after:.4f} | {after - before:+.4f} | {row['last_kl']:.4f} |"
    )


def run(command: list[str]) -> tuple[float, float]:
    """Run `command`; its wall seconds and peak RSS in GiB."""
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return time.perf_counter() - started, usage.ru_maxrss / 2**20


def write_prompts(work: Path) -> tuple[Path, Path]:
    """16 training and 8 held-out questions: the first human turn of bundled HH-RLHF rows."""
    train_file, dev_file = sample_paths()
    train_rows = Path(train_file).read_text("utf-8").splitlines()[:16]
    dev_rows = Path(dev_file).read_text("utf-8").splitlines()[100:108]
    paths = []
    for name, rows in (("prompts.jsonl", train_rows), ("held_out.jsonl", dev_rows)):
        questions = [first_question(json.loads(line)["chosen"]) for line in rows]
        path = work / name
        path.write_text("".join(json.dumps({"prompt": q}) + "\n" for q in questions), "utf-8")
        paths.append(path)
    return paths[0], paths[1]


def first_question(transcript: str) -> str:
    return transcript.split("\n\nHuman: ", 1)[1].partition("\n\nAssistant: ")[0].strip()


if __name__ == "__main__":
    main()
